## tests/lua/lua-all.mk - portability (library.md §15): the C module built
## against every installed Lua, the Lua suite run under each, and the
## fallback backends.  The work is done by tests/lua/lua-all.sh.
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
libfiberslua_la_SOURCES += src/lua/compat.h
dist_luafibers_DATA += lib/fibers/compat.lua
EXTRA_DIST += tests/lua/lua-all.sh

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

clean-local: clean-lua-all
clean-lua-all:
	rm -rf lua-all
.PHONY: check-backends clean-lua-all
