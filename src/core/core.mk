## src/core/core.mk - libfiberscore: the plain C runtime (no Lua): clock,
## loop, timers, pollers, signals, byte buffers, streams, processes, cgroups,
## the name resolver's helper threads.
noinst_LTLIBRARIES += libfiberscore.la
libfiberscore_la_SOURCES = \
	src/core/buf.c src/core/buf.h \
	src/core/cgroup.c src/core/cgroup.h \
	src/core/clock.c src/core/core.h \
	src/core/loop.c src/core/loop.h \
	src/core/poller.h src/core/poller_epoll.c src/core/poller_poll.c \
	src/core/proc.c src/core/proc.h src/core/proc_names.c src/core/proc_pidfd.c \
	src/core/proc_sigchld.c \
	src/core/resolver.c src/core/resolver.h \
	src/core/sigwatch.c src/core/sigwatch.h \
	src/core/stream.c src/core/stream.h \
	src/core/timer.c src/core/timer.h
libfiberscore_la_CFLAGS = $(AM_CFLAGS) -fPIC
libfiberscore_la_LIBADD = -lm
