## src/core/cgroup.mk - the cgroup v2 mechanism (fibersd's containment),
## its Lua binding (core.cgroup) and its unit test (root + cgroup v2, else
## it skips with the reason).
libfiberscore_la_SOURCES += src/core/cgroup.h src/core/cgroup.c
libfiberslua_la_SOURCES += src/lua/lcgroup.c

check_PROGRAMS += tests/unit/cgroup.t
tests_unit_cgroup_t_SOURCES = tests/unit/cgroup.c tests/unit/proc_test.h tests/unit/tap.h
tests_unit_cgroup_t_LDADD = libfiberscore.la
TESTS += tests/unit/cgroup.t

## Lua: cgroup placement of fibers.exec (Command field, host defaults)
TESTS += tests/lua/exec_cgroup.lua
EXTRA_DIST += tests/lua/exec_cgroup.lua
