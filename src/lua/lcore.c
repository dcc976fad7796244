/*
 * lcore.c - the `fibers.core` loader: gathers the private sub-modules of
 * the bindings into one table.  Adding a binding = one line in `subs`.
 */
#include <errno.h>
#include <string.h>

#include "lbind.h"

static const struct {
	const char *name;
	lua_CFunction open;
} subs[] = {
	{ "sys", fl_open_sys },
	{ "sched", fl_open_sched },
	{ "signal", fl_open_signal },
	{ "stream", fl_open_stream },
	{ "file", fl_open_file },
	{ "socket", fl_open_socket },
	{ "proc", fl_open_proc },
	{ "cgroup", fl_open_cgroup },
};

int fl_pusherr(lua_State *L, int err)
{
	lua_pushnil(L);
	lua_pushstring(L, strerror(err));
	lua_pushinteger(L, err);
	return 3;
}

int luaopen_fibers_core(lua_State *L)
{
	lua_createtable(L, 0, (int)(sizeof subs / sizeof subs[0]));
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
		lua_pushcfunction(L, subs[i].open);
		lua_call(L, 0, 1);
		lua_setfield(L, -2, subs[i].name);
	}
	return 1;
}

void fl_preload(lua_State *L)
{
	fl_getpreload(L);
	lua_pushcfunction(L, luaopen_fibers_core);
	lua_setfield(L, -2, "fibers.core");
	lua_pop(L, 1);
}
