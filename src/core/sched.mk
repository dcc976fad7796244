## src/core/sched.mk - the scheduler core (loop, timers, poller, signals),
## its binding (core.sched) and its unit tests.
libfiberscore_la_SOURCES += src/core/timer.h src/core/timer.c \
	src/core/poller.h src/core/poller_epoll.c src/core/poller_poll.c \
	src/core/loop.h src/core/loop.c src/core/sigwatch.h src/core/sigwatch.c
libfiberscore_la_LIBADD = -lm
libfiberslua_la_SOURCES += src/lua/lsched.c src/lua/lfiber.c src/lua/lchan.c src/lua/lperform.c src/lua/lwait.c src/lua/lfrec.c src/lua/lsched.h src/lua/lsignal.c

check_PROGRAMS += tests/unit/timer.t tests/unit/poller.t tests/unit/loop.t
tests_unit_timer_t_SOURCES = tests/unit/timer.c tests/unit/tap.h
tests_unit_timer_t_LDADD = libfiberscore.la
tests_unit_poller_t_SOURCES = tests/unit/poller.c tests/unit/tap.h
tests_unit_poller_t_LDADD = libfiberscore.la
tests_unit_loop_t_SOURCES = tests/unit/loop.c tests/unit/tap.h
tests_unit_loop_t_LDADD = libfiberscore.la
TESTS += tests/unit/timer.t tests/unit/poller.t tests/unit/loop.t

check_PROGRAMS += tests/unit/signal.t
tests_unit_signal_t_SOURCES = tests/unit/signal.c tests/unit/tap.h
tests_unit_signal_t_LDADD = libfiberscore.la
TESTS += tests/unit/signal.t
