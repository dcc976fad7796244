/*
 * compat.h - the one place where the bindings bridge Lua API versions.
 *
 * The bindings are written against the Lua 5.4 C API.  This header makes
 * the same sources compile against Lua 5.1, 5.2, 5.3 and LuaJIT 2.1 (whose
 * API is 5.1 plus a few 5.2 functions).  Every bridge is a macro or a static
 * inline function so nothing is exported; nothing here changes behaviour on
 * 5.4, where the header only includes lua.h and lauxlib.h.
 *
 * Bridged:
 *   5.1/JIT  LUA_OK, lua_absindex, lua_rawlen, luaL_len, luaL_newlib,
 *            luaL_setfuncs, luaL_setmetatable, luaL_testudata,
 *            luaL_getsubtable, luaL_tolstring
 *   <5.3     lua_rawgeti/lua_getfield returning the pushed value's type,
 *            lua_isinteger (an integral float counts: 5.1/5.2 have no
 *            integer subtype), lua_stringtonumber
 *   <5.4     lua_newuserdatauv/lua_getiuservalue/lua_setiuservalue: the
 *            n user values live in one table set as the userdata's
 *            uservalue (5.2/5.3) or environment (5.1)
 *   all      fl_getpreload (package.preload; a registry table only since
 *            5.3), fl_resume (the 5.4 four-argument lua_resume).
 * `__close` metamethods are set on every version; only 5.4 calls them,
 * and the bindings also close on `__gc` and explicit close().
 */
#ifndef FIBERS_COMPAT_H
#define FIBERS_COMPAT_H

#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#ifndef LUA_VERSION_NUM
#define LUA_VERSION_NUM 501
#endif

/* FL_PUC51: PUC Lua 5.1, which (unlike LuaJIT) cannot yield across pcall.
 * LuaJIT's headers are told apart by luajit.h beside lua.h. */
#if LUA_VERSION_NUM == 501
#if defined(__has_include)
#if !__has_include(<luajit.h>)
#define FL_PUC51 1
#endif
#endif
#endif

/* ---- 5.1 and LuaJIT ------------------------------------------------------ */
#if LUA_VERSION_NUM < 502

#ifndef LUA_OK
#define LUA_OK 0
#endif

#define lua_absindex fl_compat_absindex
static inline int fl_compat_absindex(lua_State *L, int idx)
{
	return (idx > 0 || idx <= LUA_REGISTRYINDEX) ? idx : lua_gettop(L) + idx + 1;
}

#define lua_rawlen(L, i) lua_objlen((L), (i))

#define luaL_len fl_compat_len
static inline lua_Integer fl_compat_len(lua_State *L, int idx)
{
	lua_Integer n;
	idx = lua_absindex(L, idx);
	if (luaL_callmeta(L, idx, "__len")) {
		if (!lua_isnumber(L, -1))
			luaL_error(L, "object length is not a number");
		n = lua_tointeger(L, -1);
		lua_pop(L, 1);
		return n;
	}
	return (lua_Integer)lua_objlen(L, idx);
}

#define luaL_setfuncs fl_compat_setfuncs
static inline void fl_compat_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
	luaL_checkstack(L, nup + 1, "too many upvalues");
	for (; l->name; l++) {
		for (int i = 0; i < nup; i++)
			lua_pushvalue(L, -nup);
		lua_pushcclosure(L, l->func, nup);
		lua_setfield(L, -(nup + 2), l->name);
	}
	lua_pop(L, nup);
}

#ifndef luaL_newlibtable
#define luaL_newlibtable(L, l) lua_createtable((L), 0, (int)(sizeof(l) / sizeof((l)[0]) - 1))
#endif
#ifndef luaL_newlib
#define luaL_newlib(L, l) (luaL_newlibtable((L), (l)), luaL_setfuncs((L), (l), 0))
#endif

#define luaL_setmetatable fl_compat_setmetatable
static inline void fl_compat_setmetatable(lua_State *L, const char *tname)
{
	luaL_getmetatable(L, tname);
	lua_setmetatable(L, -2);
}

#define luaL_testudata fl_compat_testudata
static inline void *fl_compat_testudata(lua_State *L, int idx, const char *tname)
{
	void *p = lua_touserdata(L, idx);
	if (p == NULL || !lua_getmetatable(L, idx))
		return NULL;
	luaL_getmetatable(L, tname);
	if (!lua_rawequal(L, -1, -2))
		p = NULL;
	lua_pop(L, 2);
	return p;
}

#define luaL_getsubtable fl_compat_getsubtable
static inline int fl_compat_getsubtable(lua_State *L, int idx, const char *fname)
{
	idx = lua_absindex(L, idx);
	lua_getfield(L, idx, fname);
	if (lua_type(L, -1) == LUA_TTABLE)
		return 1;
	lua_pop(L, 1);
	lua_newtable(L);
	lua_pushvalue(L, -1);
	lua_setfield(L, idx, fname);
	return 0;
}

#define luaL_tolstring fl_compat_tolstring
static inline const char *fl_compat_tolstring(lua_State *L, int idx, size_t *len)
{
	if (!luaL_callmeta(L, idx, "__tostring")) {
		switch (lua_type(L, idx)) {
		case LUA_TNUMBER:
		case LUA_TSTRING:
			lua_pushvalue(L, idx);
			break;
		case LUA_TBOOLEAN:
			lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
			break;
		case LUA_TNIL:
			lua_pushliteral(L, "nil");
			break;
		default:
			lua_pushfstring(L, "%s: %p", luaL_typename(L, idx), lua_topointer(L, idx));
			break;
		}
	} else if (!lua_isstring(L, -1)) {
		luaL_error(L, "'__tostring' must return a string");
	}
	return lua_tolstring(L, -1, len);
}

#endif /* < 5.2 */

/* ---- 5.1, LuaJIT and 5.2 --------------------------------------------------- */
#if LUA_VERSION_NUM < 503

/* 5.3 made these return the type of the value they push.  A function-like
 * macro does not expand recursively, so the inner call is the real one. */
#define lua_rawgeti(L, i, n) (lua_rawgeti((L), (i), (n)), lua_type((L), -1))
#define lua_getfield(L, i, k) (lua_getfield((L), (i), (k)), lua_type((L), -1))

#define lua_isinteger fl_compat_isinteger
static inline int fl_compat_isinteger(lua_State *L, int idx)
{
	if (lua_type(L, idx) != LUA_TNUMBER)
		return 0;
	lua_Number n = lua_tonumber(L, idx);
	return n == (lua_Number)(lua_Integer)n;
}

#define lua_stringtonumber fl_compat_stringtonumber
static inline size_t fl_compat_stringtonumber(lua_State *L, const char *s)
{
	lua_pushstring(L, s);
	if (lua_isnumber(L, -1)) {
		lua_Number n = lua_tonumber(L, -1);
		lua_pop(L, 1);
		lua_pushnumber(L, n);
		return strlen(s) + 1;
	}
	lua_pop(L, 1);
	return 0;
}

#endif /* < 5.3 */

/* ---- everything before 5.4: n user values in one table ---------------------- */
#if LUA_VERSION_NUM < 504

#if LUA_VERSION_NUM < 502
#define fl_compat_getuv(L, i) lua_getfenv((L), (i))
#define fl_compat_setuv(L, i) lua_setfenv((L), (i))
#else
#define fl_compat_getuv(L, i) lua_getuservalue((L), (i))
#define fl_compat_setuv(L, i) lua_setuservalue((L), (i))
#endif

#define lua_newuserdatauv fl_compat_newuserdatauv
static inline void *fl_compat_newuserdatauv(lua_State *L, size_t sz, int nuv)
{
	void *p = lua_newuserdata(L, sz);
	lua_createtable(L, nuv > 0 ? nuv : 0, 0);
	fl_compat_setuv(L, -2);
	return p;
}

#define lua_getiuservalue fl_compat_getiuservalue
static inline int fl_compat_getiuservalue(lua_State *L, int idx, int n)
{
	fl_compat_getuv(L, idx);
	if (lua_type(L, -1) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_pushnil(L);
		return LUA_TNONE;
	}
	lua_rawgeti(L, -1, n);
	lua_remove(L, -2);
	return lua_type(L, -1);
}

#define lua_setiuservalue fl_compat_setiuservalue
static inline int fl_compat_setiuservalue(lua_State *L, int idx, int n)
{
	idx = lua_absindex(L, idx);
	fl_compat_getuv(L, idx);
	if (lua_type(L, -1) != LUA_TTABLE) {
		lua_pop(L, 2);
		return 0;
	}
	lua_insert(L, -2);
	lua_rawseti(L, -2, n);
	lua_pop(L, 1);
	return 1;
}

#endif /* < 5.4 */

/* Push package.preload (the table `require` consults first). */
static inline void fl_getpreload(lua_State *L)
{
#if LUA_VERSION_NUM >= 503
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
#else
	luaL_getsubtable(L, LUA_REGISTRYINDEX, "_LOADED");
	luaL_getsubtable(L, -1, "package");
	luaL_getsubtable(L, -1, "preload");
	lua_replace(L, -3);
	lua_pop(L, 1);
#endif
}

/* lua_resume with the 5.4 signature: *nres receives the number of values
 * the coroutine yielded or returned (left on its stack). */
static inline int fl_resume(lua_State *L, lua_State *from, int narg, int *nres)
{
#if LUA_VERSION_NUM >= 504
	return lua_resume(L, from, narg, nres);
#elif LUA_VERSION_NUM >= 502
	int st = lua_resume(L, from, narg);
	*nres = lua_gettop(L);
	return st;
#else
	(void)from;
	int st = lua_resume(L, narg);
	*nres = lua_gettop(L);
	return st;
#endif
}

#endif
