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

static const int VKEYS[3] = { K_1, K_2, K_3 };

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

/* The coroutine of fiber fi.  A fiber spawned by spawn_in has none until
 * it first runs (field _f holds its function): it gets one now, from the
 * pool or new, with the function pushed - so fibers waiting to start cost
 * a table, not a coroutine.  NULL if it has neither. */
static lua_State *fiber_co(lua_State *L, int si, int kt, int fi)
{
	fl_getk(L, fi, kt, K_CO);
	lua_State *co = lua_tothread(L, -1);
	lua_pop(L, 1);
	if (co)
		return co;
	if (fl_getk(L, fi, kt, K_F) != LUA_TFUNCTION) {
		lua_pop(L, 1);
		return NULL;
	}
	struct sched *s = lua_touserdata(L, si);
	if (s->npool > 0) {
		lua_getiuservalue(L, si, UV_POOL);
		lua_rawgeti(L, -1, s->npool);
		lua_pushnil(L);
		lua_rawseti(L, -3, s->npool);
		s->npool--;
		lua_remove(L, -2);
	} else {
		lua_newthread(L);
	}
	co = lua_tothread(L, -1);
	fl_setk(L, fi, kt, K_CO);
	lua_xmove(L, co, 1);                    /* the function */
	lua_pushnil(L);
	fl_setk(L, fi, kt, K_F);
	return co;
}

/* Keep the coroutine of fiber fi, whose function returned, for a later
 * fiber (Lua 5.4, where a coroutine that returned can start a new
 * function): its hook is cleared and fi.co set to nil, so the dead fiber
 * no longer reaches it. */
static void recycle(lua_State *L, int si, int kt, int fi, lua_State *co)
{
#if LUA_VERSION_NUM >= 504
	struct sched *s = lua_touserdata(L, si);
	if (s->npool >= FL_POOL_MAX || lua_status(co) != LUA_OK || lua_gettop(co) != 0)
		return;
	lua_sethook(co, NULL, 0, 0);
	lua_getiuservalue(L, si, UV_POOL);
	fl_getk(L, fi, kt, K_CO);
	lua_rawseti(L, -2, ++s->npool);
	lua_pop(L, 1);
	lua_pushnil(L);
	fl_setk(L, fi, kt, K_CO);
#else
	(void)L, (void)si, (void)kt, (void)fi, (void)co;
#endif
}

/* A scope fiber (field _exit = its scope S) returned: scope.lua's exit
 * handler then only runs fiber_done(S) - S._nf minus one, waking the
 * scope's idle waiters at zero.  While other fibers remain (_nf > 1)
 * that is one decrement, done here; returns 0 when the handler must run. */
static int quick_exit(lua_State *L, int kt, int fi)
{
	int done = 0;
	fl_getk(L, fi, kt, K_EXIT);
	int S = lua_gettop(L);
	if (lua_type(L, S) == LUA_TTABLE && fl_getk(L, S, kt, K_NF) == LUA_TNUMBER) {
		lua_Integer n = lua_tointeger(L, -1);
		if (n > 1) {
			lua_pushinteger(L, n - 1);
			fl_setk(L, S, kt, K_NF);
			done = 1;
		}
	}
	lua_settop(L, S - 1);
	return done;
}

/* Resume fiber fi with the nargs values on top of L's stack (popped). */
static void resume_with(lua_State *L, int si, int kt, int fi, int nargs)
{
	lua_State *co = fiber_co(L, si, kt, fi);
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
		struct sched *sd = lua_touserdata(L, si);
		if (sd->has_enter && push_handler(L, si, UV_ENTER, fi))
			lua_call(L, 1, 0);
		st = fl_resume(co, L, nargs, &nres);
		lua_setiuservalue(L, si, UV_CUR);      /* restore prev */
		if (sd->has_leave && push_handler(L, si, UV_LEAVE, fi))
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
	fl_setk(L, fi, kt, K_DEAD);
	int scoped = fl_getk(L, fi, kt, K_EXIT) != LUA_TNIL;
	lua_pop(L, 1);
	if (st == LUA_OK) {
		recycle(L, si, kt, fi, co);
		if (scoped && !quick_exit(L, kt, fi) && push_handler(L, si, UV_EXIT, fi)) {
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
void fl_fiber_run(lua_State *L, int si, int kt, int fi)
{
	lua_Integer n = 0;
	if (fl_getk(L, fi, kt, K_N) != LUA_TNIL) {
		n = lua_tointeger(L, -1);
		lua_pushnil(L);
		fl_setk(L, fi, kt, K_N);
	}
	lua_pop(L, 1);
	if (n < 0)
		n = 0;
	if (n > 0 && n <= 3) {
		luaL_checkstack(L, (int)n + 4, NULL);
		for (int i = 0; i < n; i++) {
			fl_getk(L, fi, kt, VKEYS[i]);
			lua_pushnil(L);
			fl_setk(L, fi, kt, VKEYS[i]);
		}
	} else if (n > 3) {
		fl_getk(L, fi, kt, K_V);
		lua_pushnil(L);
		fl_setk(L, fi, kt, K_V);
		int v = lua_gettop(L);
		if (n > 1000000 || !lua_checkstack(L, (int)n + 4))
			luaL_error(L, "fibers: too many resume values");
		for (lua_Integer i = 1; i <= n; i++)
			lua_rawgeti(L, v, i);
		lua_remove(L, v);
	}
	resume_with(L, si, kt, fi, (int)n);
}

/* Run the suspension at sp as a task (a C sleep's timer fired). */
void fl_susp_fire(lua_State *L, int si, int kt, int sp)
{
	lua_rawgeti(L, sp, 2);
	int waiting = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (!waiting)
		return;
	lua_pushboolean(L, 0);
	lua_rawseti(L, sp, 2);
	lua_rawgeti(L, sp, 1);
	int f = lua_gettop(L);
	int idle = fl_getk(L, f, kt, K_N) == LUA_TNIL;
	fl_getk(L, f, kt, K_DEAD);
	idle = idle && !lua_toboolean(L, -1);
	lua_pop(L, 2);
	lua_pushinteger(L, 1);
	if (idle) {
		resume_with(L, si, kt, f, 1);
	} else {
		fl_fiber_resume(L, si, kt, f, f + 1, 1);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* Push the scheduler upvalue of the closures below and its keys table
 * (at the returned index + 1); returns the scheduler's index. */
static int push_sched(lua_State *L)
{
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_getiuservalue(L, -1, UV_KEYS);
	return lua_gettop(L) - 1;
}

/* current() -> the running fiber, or nil outside fibers. */
static int f_current(lua_State *L)
{
	lua_getiuservalue(L, lua_upvalueindex(1), UV_CUR);
	return 1;
}

/* Schedule fiber fi with the n values at first..first+n-1 (fiber:resume);
 * si is the scheduler's index.  Raises on a double resume or a finished
 * fiber. */
void fl_fiber_resume(lua_State *L, int si, int kt, int fi, int first, int n)
{
	struct sched *s = lua_touserdata(L, si);
	if (fl_getk(L, fi, kt, K_N) != LUA_TNIL)
		luaL_error(L, "fibers: fiber resumed twice before it ran");
	fl_getk(L, fi, kt, K_DEAD);
	if (lua_toboolean(L, -1))
		luaL_error(L, "fibers: resume of a finished fiber");
	lua_pop(L, 2);
	if (n <= 3) {
		for (int i = 0; i < n; i++) {
			lua_pushvalue(L, first + i);
			fl_setk(L, fi, kt, VKEYS[i]);
		}
	} else {
		lua_createtable(L, n, 0);
		for (int i = 0; i < n; i++) {
			lua_pushvalue(L, first + i);
			lua_rawseti(L, -2, i + 1);
		}
		fl_setk(L, fi, kt, K_V);
	}
	lua_pushinteger(L, n);
	fl_setk(L, fi, kt, K_N);
	lua_pushvalue(L, fi);
	fl_sched_push(L, s, si);
}

/* fiber:resume(...): schedule the fiber with these values (never runs it). */
static int f_resume(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	int n = lua_gettop(L) - 1;
	int si = push_sched(L);
	fl_fiber_resume(L, si, si + 1, 1, 2, n);
	return 0;
}

/* fiber:run(): the task interface (resume with the pending values). */
static int f_run(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	int si = push_sched(L);
	fl_fiber_run(L, si, si + 1, 1);
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
	lua_getiuservalue(L, 1, UV_KEYS);
	lua_insert(L, 2);                       /* sched, keys, fiber, values... */
	resume_with(L, 1, 2, 3, n);
	return 0;
}

/* spawn_in(S, with_scope, fn) -> fiber: a fiber of scope S calling fn(S)
 * (with_scope) or fn(), queued for the next turn, inheriting the running
 * fiber's tag.  Its coroutine is made when it first runs (fiber_co). */
static int f_spawn_in(lua_State *L)
{
	luaL_checktype(L, 3, LUA_TFUNCTION);
	int with_scope = lua_toboolean(L, 2);
	lua_settop(L, 3);
	int si = push_sched(L), kt = si + 1;
	struct sched *s = lua_touserdata(L, si);
	lua_createtable(L, 0, with_scope ? 5 : 4);   /* 4: a parked fn() fiber keeps 4 hash slots */
	int t = lua_gettop(L);
	lua_pushvalue(L, 3);
	fl_setk(L, t, kt, K_F);
	lua_pushvalue(L, 1);
	fl_setk(L, t, kt, K_SCOPE);
	lua_pushvalue(L, 1);
	fl_setk(L, t, kt, K_EXIT);
	lua_pushinteger(L, with_scope ? 1 : 0);
	fl_setk(L, t, kt, K_N);
	if (with_scope) {
		lua_pushvalue(L, 1);
		fl_setk(L, t, kt, K_1);
	}
	if (lua_getiuservalue(L, si, UV_CUR) != LUA_TNIL) {
		int cur = lua_gettop(L);
		if (fl_getk(L, cur, kt, K_TAG) != LUA_TNIL)
			fl_setk(L, t, kt, K_TAG);
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
	struct sched *s = lua_touserdata(L, si);
	if (uvs[i] == UV_ENTER)
		s->has_enter = !lua_isnil(L, 2);
	else if (uvs[i] == UV_LEAVE)
		s->has_leave = !lua_isnil(L, 2);
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
	((struct sched *)lua_touserdata(L, 1))->fiber_mt = lua_topointer(L, 2);
	lua_newtable(L);
	lua_pushvalue(L, 1);
	luaL_setfuncs(L, fiber_funcs, 1);
	return 1;
}
