## tests/tests.mk - the test harness (Automake TAP driver, the environment
## every test runs in), the tree-wide checks, and the hardening targets of
## doc/quality.md §3 (the fault tests themselves are in tests/bats/; the
## item -> test map is doc/faults.md):
##   make check-valgrind  the C unit tests under valgrind (memcheck, full leak
##                        check, any error fails); not in a sanitizer build
##   make lint            cppcheck + clang-tidy on src/ with the checked-in
##                        configuration (.clang-tidy, build-aux/cppcheck.supp)
## plus, in a sanitizer build, LeakSanitizer for the C unit tests (.t).

## ---- the harness -------------------------------------------------------------
TEST_EXTENSIONS = .t .lua .bats .sh
TAP_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
T_LOG_DRIVER = $(TAP_DRIVER)
LUA_LOG_DRIVER = $(TAP_DRIVER)
BATS_LOG_DRIVER = $(TAP_DRIVER)
SH_LOG_DRIVER = $(TAP_DRIVER)
if SANITIZERS
LUA_RUNNER = $(abs_top_builddir)/tests/host/flua
else
LUA_RUNNER = $(LUA)
endif
## Every test runs under a hard time limit, so a hang fails one test instead
## of stalling the whole suite (and CI).
TEST_TIMEOUT = timeout -k 10 600
T_LOG_COMPILER = $(TEST_TIMEOUT)
LUA_LOG_COMPILER = $(TEST_TIMEOUT) $(LUA_RUNNER)
BATS_LOG_COMPILER = $(TEST_TIMEOUT) $(BATS) --tap
SH_LOG_COMPILER = $(TEST_TIMEOUT) $(SHELL)
## Build-tree paths; nothing from the caller's LUA_PATH/LUA_CPATH leaks in.
AM_TESTS_ENVIRONMENT = \
	LUA_PATH='$(abs_top_srcdir)/lib/?.lua;$(abs_top_srcdir)/lib/?/init.lua;$(abs_top_srcdir)/tests/lua/lib/?.lua'; \
	LUA_CPATH='$(abs_top_builddir)/?.so'; \
	LUA_RUNNER='$(LUA_RUNNER)'; \
	top_srcdir='$(abs_top_srcdir)'; top_builddir='$(abs_top_builddir)'; \
	export LUA_PATH LUA_CPATH LUA_RUNNER top_srcdir top_builddir;
if SANITIZERS
AM_TESTS_ENVIRONMENT += \
	ASAN_OPTIONS='detect_leaks=0:abort_on_error=0'; \
	UBSAN_OPTIONS='print_stacktrace=1:halt_on_error=1'; \
	export ASAN_OPTIONS UBSAN_OPTIONS;
endif
## ---- tree-wide checks: references inside the repository, plain requires ----
TESTS += tests/refs.sh
EXTRA_DIST += tests/refs.sh

## ---- lint configuration ---------------------------------------------------------
EXTRA_DIST += .clang-tidy build-aux/cppcheck.supp

## ---- sanitizers: leak checking for the C unit tests ---------------------------
## The Lua hosts (flua, fibersd) keep detect_leaks=0 (AM_TESTS_ENVIRONMENT):
## fibersd exits through os.exit without closing its Lua state (the kernel
## reclaims; closing would run every task's __gc at shutdown) and tests compare
## their stderr, which a leak report would change.  The unit tests close
## everything they open, so leaks there are real.
if SANITIZERS
T_LOG_COMPILER += env ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 LSAN_OPTIONS=exitcode=23
endif

## ---- valgrind ------------------------------------------------------------------
VALGRIND = valgrind
VALGRIND_FLAGS = --quiet --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite,indirect --track-fds=no
## proc.t is left out: its clone mode reports exec failures through memory
## shared by clone(CLONE_VM), which valgrind emulates as a fork (the report
## never reaches the parent), and valgrind lacks pidfd_send_signal (424);
## proc_reap.t and the Lua-level exec tests cover the same code otherwise.
HARDENING_UNIT_TESTS = $(filter-out tests/unit/proc.t,$(filter %.t,$(TESTS)))
check-valgrind:
if SANITIZERS
	@echo "check-valgrind: not in a sanitizer build (ASan and valgrind exclude each other)" >&2; exit 1
else
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(HARDENING_UNIT_TESTS)' \
		T_LOG_COMPILER='$(TEST_TIMEOUT) $(VALGRIND) $(VALGRIND_FLAGS)'
endif
.PHONY: check-valgrind

## ---- lint ----------------------------------------------------------------------
CPPCHECK = cppcheck
CLANG_TIDY = clang-tidy
HARDENING_LINT_SRC = $(wildcard $(srcdir)/src/core/*.c $(srcdir)/src/lua/*.c \
	$(srcdir)/src/fibersd/*.c $(srcdir)/src/fibersctl/*.c)
HARDENING_LINT_INC = -DHAVE_CONFIG_H -I$(top_builddir) -I$(srcdir)/src/core -I$(srcdir)/src/lua \
	-I$(srcdir)/src/fibersd -I$(srcdir)/src/fibersctl
lint: lint-cppcheck lint-clang-tidy
lint-cppcheck:
	$(CPPCHECK) --quiet --error-exitcode=1 --std=c11 --enable=warning,performance,portability \
		--inline-suppr --suppressions-list=$(srcdir)/build-aux/cppcheck.supp \
		-D__linux__ -D__GNUC__ -DLUA_VERSION_NUM=504 $(HARDENING_LINT_INC) $(HARDENING_LINT_SRC)
## (one clang-tidy per file, LINT_JOBS at a time; any finding fails)
LINT_JOBS = 2
lint-clang-tidy:
	@out=$$(printf '%s\n' $(HARDENING_LINT_SRC) | xargs -P$(LINT_JOBS) -I{} $(CLANG_TIDY) --quiet \
		--config-file=$(srcdir)/.clang-tidy {} -- -std=gnu11 $(HARDENING_LINT_INC) $(LUA_CFLAGS) \
		$(JANSSON_CFLAGS) $(INIH_CFLAGS) $(SYSTEMD_CFLAGS) 2>&1 | \
		grep -v '^[0-9]* warnings\? generated\.$$'); \
	if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; echo "clang-tidy: clean"
.PHONY: lint lint-cppcheck lint-clang-tidy


## ---- the real-systemd stage of .ci/run (root only; not part of make check) ----
## tests/systemd/stage.sh: a packager's tree checked as a system service
## inside a throw-away systemd (tests/systemd/with-systemd.sh).
EXTRA_DIST += tests/systemd/stage.sh tests/systemd/guest.sh tests/systemd/with-systemd.sh
