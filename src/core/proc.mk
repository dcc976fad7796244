## src/core/proc.mk - the process core (spawn, reap, signals), its Lua
## binding (core.proc) and its unit tests.
libfiberscore_la_SOURCES += src/core/proc.h src/core/proc.c \
	src/core/proc_pidfd.c src/core/proc_sigchld.c src/core/proc_names.c
libfiberslua_la_SOURCES += src/lua/lproc.c

check_PROGRAMS += tests/unit/proc.t tests/unit/proc_reap.t
tests_unit_proc_t_SOURCES = tests/unit/proc.c tests/unit/proc_test.h tests/unit/tap.h
tests_unit_proc_t_LDADD = libfiberscore.la
tests_unit_proc_reap_t_SOURCES = tests/unit/proc_reap.c tests/unit/proc_test.h tests/unit/tap.h
tests_unit_proc_reap_t_LDADD = libfiberscore.la
TESTS += tests/unit/proc.t tests/unit/proc_reap.t

## Lua tests of fibers.exec: pidfd backend, then the SIGCHLD backend
TESTS += tests/lua/exec.lua tests/lua/exec_sigchld.sh tests/lua/exec_vfork.sh
EXTRA_DIST += tests/lua/exec.lua tests/lua/exec_sigchld.sh tests/lua/exec_vfork.sh
