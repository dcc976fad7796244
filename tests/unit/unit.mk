## tests/unit/unit.mk - the C unit tests (TAP programs, tap.h).
UNIT_CORE_TESTS = \
	tests/unit/buf.t tests/unit/cgroup.t tests/unit/loop.t tests/unit/poller.t \
	tests/unit/proc.t tests/unit/proc_reap.t tests/unit/resolver.t tests/unit/signal.t \
	tests/unit/stream.t tests/unit/timer.t
check_PROGRAMS += $(UNIT_CORE_TESTS) tests/unit/config.t tests/unit/fdtask.t tests/unit/json.t
TESTS += $(UNIT_CORE_TESTS) tests/unit/config.t tests/unit/fdtask.t tests/unit/json.t

## The core's tests link libfiberscore only.
tests_unit_buf_t_SOURCES = tests/unit/buf.c tests/unit/tap.h
tests_unit_buf_t_LDADD = libfiberscore.la
tests_unit_cgroup_t_SOURCES = tests/unit/cgroup.c tests/unit/proc_test.h tests/unit/tap.h
tests_unit_cgroup_t_LDADD = libfiberscore.la
tests_unit_loop_t_SOURCES = tests/unit/loop.c tests/unit/tap.h
tests_unit_loop_t_LDADD = libfiberscore.la
tests_unit_poller_t_SOURCES = tests/unit/poller.c tests/unit/tap.h
tests_unit_poller_t_LDADD = libfiberscore.la
tests_unit_proc_t_SOURCES = tests/unit/proc.c tests/unit/proc_test.h tests/unit/tap.h
tests_unit_proc_t_LDADD = libfiberscore.la
tests_unit_proc_reap_t_SOURCES = tests/unit/proc_reap.c tests/unit/proc_test.h tests/unit/tap.h
tests_unit_proc_reap_t_LDADD = libfiberscore.la
tests_unit_resolver_t_SOURCES = tests/unit/resolver.c tests/unit/tap.h
tests_unit_resolver_t_LDADD = libfiberscore.la
tests_unit_signal_t_SOURCES = tests/unit/signal.c tests/unit/tap.h
tests_unit_signal_t_LDADD = libfiberscore.la
tests_unit_stream_t_SOURCES = tests/unit/stream.c tests/unit/tap.h
tests_unit_stream_t_LDADD = libfiberscore.la
tests_unit_timer_t_SOURCES = tests/unit/timer.c tests/unit/tap.h
tests_unit_timer_t_LDADD = libfiberscore.la

## The daemon's: the config parser alone, the `_fibersd` module embedded
## in a Lua state, and the control sub-module's JSON.
tests_unit_config_t_SOURCES = tests/unit/config.c tests/unit/tap.h src/fibersd/config.c src/fibersd/fibersd.h
tests_unit_config_t_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/fibersd $(fibersd_dirs_CPPFLAGS)
tests_unit_config_t_CFLAGS = $(AM_CFLAGS) $(LUA_CFLAGS) $(INIH_CFLAGS)
tests_unit_config_t_LDADD = $(LUA_LIBS) $(INIH_LIBS) -lm
tests_unit_fdtask_t_SOURCES = tests/unit/fdtask.c tests/unit/tap.h
tests_unit_fdtask_t_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/fibersd
tests_unit_fdtask_t_CFLAGS = $(AM_CFLAGS) $(LUA_CFLAGS)
tests_unit_fdtask_t_LDADD = libfibersdhost.la $(LUA_LIBS) $(INIH_LIBS) $(JANSSON_LIBS) $(SYSTEMD_LIBS) -lm
tests_unit_json_t_SOURCES = tests/unit/json.c tests/unit/tap.h
tests_unit_json_t_CFLAGS = $(AM_CFLAGS) $(LUA_CFLAGS) -I$(top_srcdir)/src/fibersd
tests_unit_json_t_LDADD = libfibersdcontrol.la $(LUA_LIBS) -lm
