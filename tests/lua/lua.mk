## tests/lua/lua.mk - the Lua tests (TAP through tests/lua/lib/tap.lua) and
## the portability targets (doc/library.md §15, doc/portability.md), whose
## work tests/lua/lua-all.sh does:
##
##   make check-lua-all    for each of Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT that
##                         is installed (interpreter + pkg-config module):
##                         compile the core + binding sources against its
##                         headers into lua-all/<ver>/fibers/core.so, then run
##                         the Lua tests and the seed examples under it.
##                         LUA_ALL_VERSIONS='5.1 luajit' narrows the set;
##                         LUA_ALL_REQUIRE=yes (CI) fails on a missing one.
##   make check-backends   the same tests once more on the main build with
##                         FIBERS_POLLER=poll FIBERS_PROC=sigchld.
##   make install-lua-all  build (no tests) and install the module for every
##                         other installed version, side by side with the
##                         main (5.4) install: $(libdir)/lua/<v>/fibers/core.so
##                         and the Lua files in $(datadir)/lua/<v>/ (LuaJIT
##                         uses the 5.1 directories; a 5.1 build wins there).
##                         uninstall-lua-all removes them again.
LUA_TESTS = \
	tests/lua/alarm.lua tests/lua/channel.lua tests/lua/compat.lua tests/lua/cond.lua \
	tests/lua/exec.lua tests/lua/exec_cgroup.lua tests/lua/exec_sigchld.sh \
	tests/lua/exec_vfork.sh tests/lua/fastpath.lua tests/lua/fibers.lua \
	tests/lua/fibersd-machine.lua tests/lua/fibersd-methods.lua tests/lua/file.lua \
	tests/lua/io-poll.sh \
	tests/lua/oneshot.lua tests/lua/op.lua tests/lua/regress/001-op-zero-results.lua \
	tests/lua/regress/002-channel-fast-path.lua tests/lua/regress/003-scope-fiber-frames.lua \
	tests/lua/runtime.lua tests/lua/scope.lua tests/lua/signal.lua tests/lua/sleep.lua \
	tests/lua/socket.lua tests/lua/stream.lua tests/lua/tcp.lua tests/lua/testing.lua \
	tests/lua/wait.lua tests/lua/waitgroup.lua
TESTS += $(LUA_TESTS)
EXTRA_DIST += $(LUA_TESTS) tests/lua/lib/fixture.lua tests/lua/lib/tap.lua tests/lua/lua-all.sh

LUA_ALL_VERSIONS = 5.1 5.2 5.3 5.4 luajit
LUA_ALL_TESTS = $(filter tests/lua/% tests/seed/%,$(TESTS))
## Same flags as the main build minus the sanitizers (a stock interpreter
## cannot load an ASan-instrumented module).
lua_all_env = top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' \
	CC='$(CC)' PKG_CONFIG='$(PKG_CONFIG)' SHELL='$(SHELL)' AM_TAP_AWK='$(AWK)' \
	LUA_ALL_CFLAGS='$(DEFS) $(DEFAULT_INCLUDES) $(INCLUDES) $(AM_CPPFLAGS) $(CPPFLAGS) $(filter-out $(SAN_FLAGS),$(AM_CFLAGS) $(CFLAGS))' \
	LUA_ALL_SOURCES='$(filter %.c,$(libfiberscore_la_SOURCES) $(libfiberslua_la_SOURCES))' \
	LUA_ALL_TESTS='$(LUA_ALL_TESTS)'

check-lua-all: all
	@$(lua_all_env) LUA_ALL_VERSIONS='$(LUA_ALL_VERSIONS)' \
	  $(SHELL) $(srcdir)/tests/lua/lua-all.sh

check-backends: all $(check_PROGRAMS)
	@$(lua_all_env) FIBERS_POLLER=poll FIBERS_PROC=sigchld \
	  LUA_ALL_PREBUILT='$(abs_top_builddir)' LUA_ALL_RUNNER='$(LUA_RUNNER)' \
	  LUA_ALL_SUFFIX=-poll-sigchld $(SHELL) $(srcdir)/tests/lua/lua-all.sh

build-lua-all: all
	@$(lua_all_env) LUA_ALL_VERSIONS='$(LUA_ALL_VERSIONS)' LUA_ALL_BUILD_ONLY=yes \
	  $(SHELL) $(srcdir)/tests/lua/lua-all.sh

## For each built version other than 5.4: "version abi" pairs.
lua_all_abis = for d in lua-all/*/fibers/core.so; do \
	  [ -f "$$d" ] || continue; v=$${d\#lua-all/}; v=$${v%%/*}; \
	  case $$v in 5.4) continue ;; \
	  luajit) [ -f lua-all/5.1/fibers/core.so ] && continue; abi=5.1 ;; \
	  *) abi=$$v ;; esac; echo "$$v $$abi"; done

install-lua-all: build-lua-all
	@$(lua_all_abis) | while read v abi; do \
	  cdir='$(DESTDIR)$(libdir)'/lua/$$abi; ldir='$(DESTDIR)$(datadir)'/lua/$$abi; \
	  echo "install-lua-all: Lua $$v -> $$cdir, $$ldir"; \
	  $(MKDIR_P) "$$cdir/fibers" "$$ldir/fibers/io" && \
	  $(INSTALL_PROGRAM) lua-all/$$v/fibers/core.so "$$cdir/fibers/core.so" && \
	  $(INSTALL_DATA) $(addprefix $(srcdir)/,$(dist_lua_DATA)) "$$ldir/" && \
	  $(INSTALL_DATA) $(addprefix $(srcdir)/,$(dist_luafibers_DATA)) "$$ldir/fibers/" && \
	  $(INSTALL_DATA) $(addprefix $(srcdir)/,$(dist_luafibersio_DATA)) "$$ldir/fibers/io/" || exit 1; \
	done

uninstall-lua-all:
	@for abi in 5.1 5.2 5.3; do \
	  rm -f '$(DESTDIR)$(libdir)'/lua/$$abi/fibers/core.so; \
	  for f in $(notdir $(dist_lua_DATA)); do rm -f '$(DESTDIR)$(datadir)'/lua/$$abi/$$f; done; \
	  for f in $(notdir $(dist_luafibers_DATA)); do rm -f '$(DESTDIR)$(datadir)'/lua/$$abi/fibers/$$f; done; \
	  for f in $(notdir $(dist_luafibersio_DATA)); do rm -f '$(DESTDIR)$(datadir)'/lua/$$abi/fibers/io/$$f; done; \
	done

clean-local: clean-lua-all
clean-lua-all:
	rm -rf lua-all
.PHONY: check-backends build-lua-all install-lua-all uninstall-lua-all clean-lua-all
