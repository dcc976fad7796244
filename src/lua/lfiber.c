/*
 * lfiber.c - the hot half of lib/fibers/runtime.lua in C: resuming a
 * fiber's coroutine (the scheduler's task interface for fibers), the
 * running fiber, fiber:resume(...) and spawning a scope fiber.
 *
 * Fibers stay Lua tables (upper layers keep free fields on them: scope,
 * tag, dead, _exit ...); their metatable is runtime.lua's Fiber, which
 * sched:_fibers() records so that the scheduler's turn resumes queued
 * fibers here without a Lua frame, a method lookup or coroutine.resume.
 * Fields used (runtime.lua documents them): co (the coroutine); _n, the
 * number of pending resume values (nil = not scheduled), held in _1.._3
 * or, beyond three, in the array _v; dead (finished); _exit (scope
 * fibers: the exit handler runs instead of the unscoped handler).
 *
 * Semantics are exactly those of the Lua Fiber:run/resume they replace:
 * hooks run around each resume, the running fiber is restored after it,
 * a fiber that yields anything is suspended, one that returns or raises
 * is marked dead and handed to the exit or unscoped handler.
 */
#include <string.h>

#include "lbind.h"
#include "lsched.h"

static const char *const VKEYS[3] = { "_1", "_2", "_3" };

/* Push t[k] (raw) and return its type; t is an absolute index. */
static int rawgetf(lua_State *L, int t, const char *k)
{
	lua_pushstring(L, k);
	lua_rawget(L, t);
	return lua_type(L, -1);
}

/* t[k] = top of the stack (raw), popping it; t is an absolute index. */
static void rawsetf(lua_State *L, int t, const char *k)
{
	lua_pushstring(L, k);
	lua_insert(L, -2);
	lua_rawset(L, t);
}

/* True if the value at idx is a fiber of the scheduler at index si. */
int fl_is_fiber(lua_State *L, int si, int idx)
{
	idx = lua_absindex(L, idx);
	if (!lua_getmetatable(L, idx))
		return 0;
	lua_getiuservalue(L, si, UV_FIBER_MT);
	int eq = lua_rawequal(L, -1, -2);
	lua_pop(L, 2);
	return eq;
}

/* Push the handler in user value uv and the fiber at fi; 0 (nothing
 * pushed) when no handler is set. */
static int push_handler(lua_State *L, int si, int uv, int fi)
{
	if (lua_getiuservalue(L, si, uv) == LUA_TNIL) {
		lua_pop(L, 1);
		return 0;
	}
	lua_pushvalue(L, fi);
	return 1;
}

/* Resume fiber fi with the nargs values on top of L's stack (popped). */
static void resume_with(lua_State *L, int si, int fi, int nargs)
{
	rawgetf(L, fi, "co");
	lua_State *co = lua_tothread(L, -1);
	lua_pop(L, 1);
	if (!co || co == L)
		luaL_error(L, "fibers: resume of a fiber without a suspended coroutine");
	int st, nres = 0;
	if (lua_status(co) == LUA_OK && lua_gettop(co) == 0) {
		lua_pop(L, nargs);
		lua_pushliteral(L, "cannot resume dead coroutine");
		st = LUA_ERRRUN;
	} else {
		if (!lua_checkstack(co, nargs + LUA_MINSTACK))
			luaL_error(L, "fibers: too many resume values");
		lua_xmove(L, co, nargs);
		lua_getiuservalue(L, si, UV_CUR);      /* prev, kept until restored */
		lua_pushvalue(L, fi);
		lua_setiuservalue(L, si, UV_CUR);
		if (push_handler(L, si, UV_ENTER, fi))
			lua_call(L, 1, 0);
		st = fl_resume(co, L, nargs, &nres);
		lua_setiuservalue(L, si, UV_CUR);      /* restore prev */
		if (push_handler(L, si, UV_LEAVE, fi))
			lua_call(L, 1, 0);
		if (st == LUA_YIELD) {
			lua_pop(co, nres);
			return;
		}
		if (st == LUA_OK)
			lua_settop(co, 0);
		else
			lua_xmove(co, L, 1);            /* the error value */
	}
	lua_pushboolean(L, 1);
	rawsetf(L, fi, "dead");
	int scoped = rawgetf(L, fi, "_exit") != LUA_TNIL;
	lua_pop(L, 1);
	if (st == LUA_OK) {
		if (scoped && push_handler(L, si, UV_EXIT, fi)) {
			lua_pushboolean(L, 1);
			lua_call(L, 2, 0);
		}
		return;
	}
	int err = lua_gettop(L);
	if (scoped && push_handler(L, si, UV_EXIT, fi)) {
		lua_pushboolean(L, 0);
		lua_pushvalue(L, err);
		lua_call(L, 3, 0);
	} else if (push_handler(L, si, UV_UNSCOPED, fi)) {
		lua_pushvalue(L, err);
		lua_call(L, 2, 0);
	}
	lua_pop(L, 1);
}

/* Run the fiber at index fi now with its pending resume values. */
void fl_fiber_run(lua_State *L, int si, int fi)
{
	lua_Integer n = 0;
	if (rawgetf(L, fi, "_n") != LUA_TNIL) {
		n = lua_tointeger(L, -1);
		lua_pushnil(L);
		rawsetf(L, fi, "_n");
	}
	lua_pop(L, 1);
	if (n < 0)
		n = 0;
	if (n > 0 && n <= 3) {
		luaL_checkstack(L, (int)n + 4, NULL);
		for (int i = 0; i < n; i++) {
			rawgetf(L, fi, VKEYS[i]);
			lua_pushnil(L);
			rawsetf(L, fi, VKEYS[i]);
		}
	} else if (n > 3) {
		rawgetf(L, fi, "_v");
		lua_pushnil(L);
		rawsetf(L, fi, "_v");
		int v = lua_gettop(L);
		if (n > 1000000 || !lua_checkstack(L, (int)n + 4))
			luaL_error(L, "fibers: too many resume values");
		for (lua_Integer i = 1; i <= n; i++)
			lua_rawgeti(L, v, i);
		lua_remove(L, v);
	}
	resume_with(L, si, fi, (int)n);
}

/* The scheduler upvalue of the closures below, pushed; returns its index. */
static int push_sched(lua_State *L)
{
	lua_pushvalue(L, lua_upvalueindex(1));
	return lua_gettop(L);
}

/* current() -> the running fiber, or nil outside fibers. */
static int f_current(lua_State *L)
{
	int si = push_sched(L);
	lua_getiuservalue(L, si, UV_CUR);
	return 1;
}

/* Schedule fiber fi with the n values at first..first+n-1 (fiber:resume);
 * si is the scheduler's index.  Raises on a double resume or a finished
 * fiber. */
void fl_fiber_resume(lua_State *L, int si, int fi, int first, int n)
{
	struct sched *s = lua_touserdata(L, si);
	if (rawgetf(L, fi, "_n") != LUA_TNIL)
		luaL_error(L, "fibers: fiber resumed twice before it ran");
	rawgetf(L, fi, "dead");
	if (lua_toboolean(L, -1))
		luaL_error(L, "fibers: resume of a finished fiber");
	lua_pop(L, 2);
	if (n <= 3) {
		for (int i = 0; i < n; i++) {
			lua_pushvalue(L, first + i);
			rawsetf(L, fi, VKEYS[i]);
		}
	} else {
		lua_createtable(L, n, 0);
		for (int i = 0; i < n; i++) {
			lua_pushvalue(L, first + i);
			lua_rawseti(L, -2, i + 1);
		}
		rawsetf(L, fi, "_v");
	}
	lua_pushinteger(L, n);
	rawsetf(L, fi, "_n");
	lua_pushvalue(L, fi);
	fl_sched_push(L, s, si);
}

/* fiber:resume(...): schedule the fiber with these values (never runs it). */
static int f_resume(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	int n = lua_gettop(L) - 1;
	int si = push_sched(L);
	fl_fiber_resume(L, si, 1, 2, n);
	return 0;
}

/* fiber:run(): the task interface (resume with the pending values). */
static int f_run(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	int si = push_sched(L);
	fl_fiber_run(L, si, 1);
	return 0;
}

/* run_now(fiber, ...): resume the fiber right now with these values;
 * only from scheduler context (a task, not inside a fiber). */
static int f_run_now(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	int n = lua_gettop(L) - 1;
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);                       /* sched, fiber, values... */
	resume_with(L, 1, 2, n);
	return 0;
}

/* spawn_in(S, with_scope, fn) -> fiber: a fiber of scope S calling fn(S)
 * (with_scope) or fn(), queued for the next turn, inheriting the running
 * fiber's tag. */
static int f_spawn_in(lua_State *L)
{
	luaL_checktype(L, 3, LUA_TFUNCTION);
	int with_scope = lua_toboolean(L, 2);
	lua_settop(L, 3);
	int si = push_sched(L);
	struct sched *s = lua_touserdata(L, si);
	lua_createtable(L, 0, 5);
	int t = lua_gettop(L);
	lua_State *co = lua_newthread(L);
	lua_pushvalue(L, 3);
	lua_xmove(L, co, 1);
	rawsetf(L, t, "co");
	lua_pushvalue(L, 1);
	rawsetf(L, t, "scope");
	lua_pushvalue(L, 1);
	rawsetf(L, t, "_exit");
	lua_pushinteger(L, with_scope ? 1 : 0);
	rawsetf(L, t, "_n");
	if (with_scope) {
		lua_pushvalue(L, 1);
		rawsetf(L, t, "_1");
	}
	if (lua_getiuservalue(L, si, UV_CUR) != LUA_TNIL) {
		int cur = lua_gettop(L);
		if (rawgetf(L, cur, "tag") != LUA_TNIL)
			rawsetf(L, t, "tag");
		else
			lua_pop(L, 1);
	}
	lua_pop(L, 1);
	lua_getiuservalue(L, si, UV_FIBER_MT);
	lua_setmetatable(L, t);
	lua_pushvalue(L, t);
	fl_sched_push(L, s, si);
	return 1;
}

/* set(name, value): install a hook/handler ("enter", "leave", "exit",
 * "unscoped"); nil clears. */
static int f_set(lua_State *L)
{
	static const char *const names[] = { "enter", "leave", "exit", "unscoped", NULL };
	static const int uvs[] = { UV_ENTER, UV_LEAVE, UV_EXIT, UV_UNSCOPED };
	int i = luaL_checkoption(L, 1, NULL, names);
	lua_settop(L, 2);
	int si = push_sched(L);
	lua_pushvalue(L, 2);
	lua_setiuservalue(L, si, uvs[i]);
	return 0;
}

static const luaL_Reg fiber_funcs[] = {
	{ "current", f_current },
	{ "resume", f_resume },
	{ "run", f_run },
	{ "run_now", f_run_now },
	{ "spawn_in", f_spawn_in },
	{ "set", f_set },
	{ NULL, NULL },
};

/* sched:_fibers(Fiber) -> table of the C fiber functions. */
int fl_sched_fibers(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TUSERDATA);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 2);
	lua_pushvalue(L, 2);
	lua_setiuservalue(L, 1, UV_FIBER_MT);
	lua_newtable(L);
	lua_pushvalue(L, 1);
	luaL_setfuncs(L, fiber_funcs, 1);
	return 1;
}
