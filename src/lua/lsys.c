/*
 * lsys.c - `fibers.core`.sys: small OS helpers the Lua layer needs that fit
 * no other binding (clocks, ...).  Misuse raises; OS failure returns
 * nil, message, errno.
 */
#include "core.h"
#include "lbind.h"

/* sys.monotime() -> seconds on CLOCK_MONOTONIC (fresh read), or the
 * virtual clock while it is on */
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

/* sys.virtual_clock(start) turns the virtual clock on at start seconds,
 * sys.virtual_clock(nil) turns it off; returns whether it was on. */
static int l_virtual_clock(lua_State *L)
{
	int was = core_vclock_on();
	if (lua_isnoneornil(L, 1)) {
		core_vclock_set(0, 0);
	} else {
		double t = luaL_checknumber(L, 1);
		if (t != t)
			return luaL_argerror(L, 1, "start is NaN");
		core_vclock_set(1, t);
	}
	lua_pushboolean(L, was);
	return 1;
}

/* sys.is_virtual() -> true while the virtual clock is on */
static int l_is_virtual(lua_State *L)
{
	lua_pushboolean(L, core_vclock_on());
	return 1;
}

static const luaL_Reg sys_funcs[] = {
	{ "virtual_clock", l_virtual_clock },
	{ "is_virtual", l_is_virtual },
	{ "monotime", l_monotime },
	{ "realtime", l_realtime },
	{ NULL, NULL },
};

int fl_open_sys(lua_State *L)
{
	luaL_newlib(L, sys_funcs);
	return 1;
}
