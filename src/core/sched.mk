## src/core/sched.mk - the scheduler core (loop, timers, poller, signals),
## its binding (core.sched) and its unit tests.
libfiberscore_la_SOURCES += src/core/timer.h src/core/timer.c \
	src/core/poller.h src/core/poller_epoll.c src/core/poller_poll.c \
	src/core/loop.h src/core/loop.c
libfiberscore_la_LIBADD = -lm
libfiberslua_la_SOURCES += src/lua/lsched.c
