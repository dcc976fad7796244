/*
 * lsys.c - `fibers.core`.sys: small OS helpers the Lua layer needs that fit
 * no other binding (clocks, ...).  Misuse raises; OS failure returns
 * nil, message, errno.
 */
#include "core.h"
#include "lbind.h"

/* sys.monotime() -> seconds on CLOCK_MONOTONIC (fresh read) */
static int l_monotime(lua_State *L)
{
	lua_pushnumber(L, core_monotime());
	return 1;
}

/* sys.realtime() -> seconds since the epoch (CLOCK_REALTIME, fresh read) */
static int l_realtime(lua_State *L)
{
	lua_pushnumber(L, core_realtime());
	return 1;
}

static const luaL_Reg sys_funcs[] = {
	{ "monotime", l_monotime },
	{ "realtime", l_realtime },
	{ NULL, NULL },
};

int fl_open_sys(lua_State *L)
{
	luaL_newlib(L, sys_funcs);
	return 1;
}
