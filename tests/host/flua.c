/*
 * flua.c - a minimal stand-alone Lua 5.4 interpreter (like lua.c) with the
 * fibers C core linked in statically and preloaded as `fibers.core`.
 *
 * Why: an ASan-instrumented C module cannot be loaded into the stock
 * lua5.4, so `./configure --enable-sanitizers` runs the Lua tests here.
 * Usage: flua SCRIPT [ARGS...] | flua -e CHUNK.  Errors are reported as lua.c
 * does: "<progname>: <message>" plus a traceback on stderr, exit status 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>

#include "lbind.h"

static const char *progname = "flua";

static int msghandler(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (msg == NULL) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

static int report(lua_State *L, int status)
{
	if (status != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		fprintf(stderr, "%s: %s\n", progname, msg ? msg : "(no message)");
		fflush(stderr);
		lua_pop(L, 1);
	}
	return status;
}

static int docall(lua_State *L, int narg)
{
	int base = lua_gettop(L) - narg;
	lua_pushcfunction(L, msghandler);
	lua_insert(L, base);
	int status = lua_pcall(L, narg, 0, base);
	lua_remove(L, base);
	return status;
}

int main(int argc, char **argv)
{
	if (argc > 0 && argv[0][0]) {
		const char *slash = strrchr(argv[0], '/');
		progname = slash ? slash + 1 : argv[0];
	}
	if (argc < 2) {
		fprintf(stderr, "usage: %s SCRIPT [ARGS...] | %s -e CHUNK\n", progname, progname);
		return 2;
	}
	lua_State *L = luaL_newstate();
	if (L == NULL) {
		fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
		return 1;
	}
	luaL_openlibs(L);
	fl_preload(L);

	int status;
	if (strcmp(argv[1], "-e") == 0) {
		if (argc < 3) {
			fprintf(stderr, "%s: '-e' needs argument\n", progname);
			lua_close(L);
			return 2;
		}
		status = luaL_loadbuffer(L, argv[2], strlen(argv[2]), "=(command line)");
		if (status == LUA_OK)
			status = docall(L, 0);
	} else {
		/* arg table: script at 0, its arguments at 1..n */
		lua_createtable(L, argc - 2, 2);
		for (int i = 0; i < argc; i++) {
			lua_pushstring(L, argv[i]);
			lua_rawseti(L, -2, i - 1);
		}
		lua_setglobal(L, "arg");
		status = luaL_loadfile(L, argv[1]);
		if (status == LUA_OK) {
			for (int i = 2; i < argc; i++)
				lua_pushstring(L, argv[i]);
			status = docall(L, argc - 2);
		}
	}
	report(L, status);
	lua_close(L);
	return status == LUA_OK ? EXIT_SUCCESS : EXIT_FAILURE;
}
