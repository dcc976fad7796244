## tests/hardening.mk - doc/quality.md §3 hardening targets:
##   make check-valgrind  the C unit tests under valgrind (memcheck, full leak
##                        check, any error fails); not in a sanitizer build
##   make lint            cppcheck + clang-tidy on src/ with the checked-in
##                        configuration (.clang-tidy, build-aux/cppcheck.supp)
##   make fuzz-stream     libFuzzer target for the stream line reader
##   make fuzz-smoke      every fuzz target for FUZZ_SMOKE_TIME (30) seconds
##                        from the seed corpus (fuzz/seeds/<target>/): the
##                        bounded run used before releases and by .ci/run
## plus, in a sanitizer build, LeakSanitizer for the C unit tests (.t).

## ---- fault tests (doc/quality.md §3; the item -> test map is doc/faults.md) ----
HARDENING_BATS = tests/bats/090-faults.bats tests/bats/091-attacks.bats
TESTS += $(HARDENING_BATS)
EXTRA_DIST += $(HARDENING_BATS) doc/faults.md

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
EXTRA_DIST += .clang-tidy build-aux/cppcheck.supp

## ---- fuzzing -------------------------------------------------------------------
## (FUZZ_CC, FUZZ_FLAGS, FUZZ_TIME and the control/config targets are in
## src/fibersctl/fibersctl.mk and src/fibersd/fibersd.mk.)
fuzz/stream: $(srcdir)/fuzz/stream.c $(srcdir)/src/core/stream.c $(srcdir)/src/core/buf.c
	$(AM_V_CC)$(MKDIR_P) fuzz && $(FUZZ_CC) $(FUZZ_FLAGS) -I$(top_builddir) -I$(srcdir)/src/core \
		$(srcdir)/fuzz/stream.c $(srcdir)/src/core/stream.c $(srcdir)/src/core/buf.c -o $@
fuzz-stream: fuzz/stream
	$(MKDIR_P) fuzz/corpus-stream && cp $(srcdir)/fuzz/seeds/stream/* fuzz/corpus-stream/
	./fuzz/stream -max_total_time=$(FUZZ_TIME) -max_len=8192 fuzz/corpus-stream
fuzz: fuzz-stream
FUZZ_SMOKE_TIME = 30
fuzz-smoke:
	$(MAKE) $(AM_MAKEFLAGS) fuzz FUZZ_TIME=$(FUZZ_SMOKE_TIME)
.PHONY: fuzz-stream fuzz-smoke
CLEANFILES += fuzz/stream
EXTRA_DIST += fuzz/stream.c fuzz/seeds/stream/mixed fuzz/seeds/stream/terms fuzz/seeds/stream/tiny-pipe fuzz/seeds/stream/empty-find
clean-local: clean-fuzz-stream
clean-fuzz-stream:
	rm -rf fuzz/corpus-stream
.PHONY: clean-fuzz-stream
