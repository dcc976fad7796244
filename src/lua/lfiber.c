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
 * or, beyond three, in the array _v - or, when _n is negative (-n - 1),
 * the n values already pushed onto the suspended coroutine's stack; dead
 * (finished); _exit (scope fibers: the exit handler runs instead of the
 * unscoped handler).
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

/* Push a coroutine for a new fiber: one from the pool (Lua 5.4) or a new
 * one; returns it. */
static lua_State *new_co(lua_State *L, int si)
{
	struct sched *s = lua_touserdata(L, si);
	if (s->npool > 0) {
		lua_getiuservalue(L, si, UV_POOL);
		lua_rawgeti(L, -1, s->npool);
		lua_pushnil(L);
		lua_rawseti(L, -3, s->npool);
		s->npool--;
		lua_remove(L, -2);
	} else {
#ifdef FL_FREC
		fl_frec_clear_space(lua_newthread(L));
#else
		lua_newthread(L);
#endif
	}
	return lua_tothread(L, -1);
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
	co = new_co(L, si);
	fl_setk(L, fi, kt, K_CO);
	lua_xmove(L, co, 1);                    /* the function */
	lua_pushnil(L);
	fl_setk(L, fi, kt, K_F);
	return co;
}

/* Put coroutine co (at index ci), whose function returned, in the pool
 * for a later fiber (Lua 5.4, where a coroutine that returned can start a
 * new function), its hook cleared; 1 if it was pooled. */
static int pool_put(lua_State *L, int si, int ci, lua_State *co)
{
#if LUA_VERSION_NUM >= 504
	struct sched *s = lua_touserdata(L, si);
	if (s->npool >= FL_POOL_MAX || lua_status(co) != LUA_OK || lua_gettop(co) != 0)
		return 0;
	lua_sethook(co, NULL, 0, 0);
	lua_getiuservalue(L, si, UV_POOL);
	lua_pushvalue(L, ci);
	lua_rawseti(L, -2, ++s->npool);
	lua_pop(L, 1);
	return 1;
#else
	(void)L, (void)si, (void)ci, (void)co;
	return 0;
#endif
}

/* Keep the coroutine of fiber fi, whose function returned, for a later
 * fiber (pool_put); the dead fiber's co is set to nil, so it no longer
 * reaches it. */
static void recycle(lua_State *L, int si, int kt, int fi, lua_State *co)
{
	fl_getk(L, fi, kt, K_CO);
	if (pool_put(L, si, lua_gettop(L), co)) {
		lua_pushnil(L);
		fl_setk(L, fi, kt, K_CO);
	}
	lua_pop(L, 1);
}

/* A scope fiber of scope S (its field _exit) returned: scope.lua's exit
 * handler then only runs fiber_done(S) - S._nf minus one, waking the
 * scope's idle waiters at zero.  While other fibers remain (_nf > 1)
 * that is one decrement, done here; returns 0 when the handler must run. */
static int scope_quick_exit(lua_State *L, int kt, int S)
{
	int done = 0;
	if (lua_type(L, S) == LUA_TTABLE && fl_getk(L, S, kt, K_NF) == LUA_TNUMBER) {
		lua_Integer n = lua_tointeger(L, -1);
		if (n > 1) {
			lua_pushinteger(L, n - 1);
			fl_setk(L, S, kt, K_NF);
			done = 1;
		}
	}
	lua_pop(L, 1);
	return done;
}

/* scope_quick_exit for the scope fiber fi. */
static int quick_exit(lua_State *L, int kt, int fi)
{
	fl_getk(L, fi, kt, K_EXIT);
	int done = scope_quick_exit(L, kt, lua_gettop(L));
	lua_pop(L, 1);
	return done;
}

static void finish(lua_State *L, int si, int kt, int fi, lua_State *co, int st);
static void settle(lua_State *L, int si, int kt, int fi, lua_State *co, int st, int nres);
static void resume_on(lua_State *L, int si, int kt, int fi, int nargs, int onco);

/* Resume fiber fi with the nargs values on top of L's stack (popped). */
static void resume_with(lua_State *L, int si, int kt, int fi, int nargs)
{
	resume_on(L, si, kt, fi, nargs, 0);
}

static void resume_co(lua_State *L, int si, int kt, int fi, lua_State *co, int nargs, int onco,
		      int rec);

/* Resume fiber fi with the nargs values on top of L's stack (popped),
 * or (onco) already on top of its coroutine's stack. */
static void resume_on(lua_State *L, int si, int kt, int fi, int nargs, int onco)
{
	lua_State *co = fiber_co(L, si, kt, fi);
	if (!co || co == L)
		luaL_error(L, "fibers: resume of a fiber without a suspended coroutine");
	resume_co(L, si, kt, fi, co, nargs, onco, 0);
}

#ifdef FL_FREC
/* Push the fiber of record index i and (kt 0) the keys table; returns
 * the fiber's index, *kt that of the keys. */
static int push_rec_fiber(lua_State *L, int si, int *kt, unsigned i)
{
	if (!*kt) {
		lua_getiuservalue(L, si, UV_KEYS);
		*kt = lua_gettop(L);
	}
	lua_getiuservalue(L, si, UV_FIBERS);
	lua_rawgeti(L, -1, i);
	lua_remove(L, -2);
	return lua_gettop(L);
}

/* A fiber record's resume (lfrec.c): co is suspended in a yield with the
 * values on its stack, its record already updated; without hooks or a
 * nested lazy run, resume_co's work is not needed. */
void fl_frec_resume(lua_State *L, struct sched *sd, int si, int kt, struct frec *r)
{
	int top = lua_gettop(L), nv = r->nv;
	lua_State *co = r->co;
	/* (the fiber may make records: sd->frecs may move, r with it) */
	unsigned i = (unsigned)(r - sd->frecs);
	if (lua_status(co) != LUA_YIELD || sd->has_enter || sd->has_leave || sd->lazy) {
		int fi = push_rec_fiber(L, si, &kt, i);
		resume_co(L, si, kt, fi, co, nv, 1, 1);
		lua_settop(L, top);
		return;
	}
	/* The running fiber is UV_FIBERS[cur_rec] (fl_push_cur): no Lua
	 * value is touched to switch to it. */
	unsigned prev = sd->cur_rec;
	sd->cur_rec = i;
	int nres = 0;
	int st = fl_resume(co, L, nv, &nres);
	sd->cur_rec = prev;
	if (st == LUA_YIELD) {
		if (nres)
			lua_pop(co, nres);
		return;
	}
	int fi = push_rec_fiber(L, si, &kt, i);
	settle(L, si, kt, fi, co, st, nres);
	lua_settop(L, top);
}
#endif

/* resume_on for fiber fi whose coroutine is co; rec: the resume of its
 * fiber record (fl_frec_resume), whose state is already set. */
static void resume_co(lua_State *L, int si, int kt, int fi, lua_State *co, int nargs, int onco,
		      int rec)
{
	struct sched *sd = lua_touserdata(L, si);
#ifdef FL_FREC
	struct frec *r = rec ? NULL : fl_frec_of(sd, co);
	if (r) {
		r->waiting = 0;         /* whatever resumes it ends its block */
		r->handoff = 0;
		r->nv = nargs;
	}
#else
	(void)rec;
#endif
	if (lua_status(co) == LUA_OK && lua_gettop(co) == (onco ? nargs : 0)) {
		lua_pop(onco ? co : L, nargs);
		lua_pushliteral(L, "cannot resume dead coroutine");
		finish(L, si, kt, fi, co, LUA_ERRRUN);
		return;
	}
	if (!lua_checkstack(co, nargs + LUA_MINSTACK))
		luaL_error(L, "fibers: too many resume values");
	if (!onco)
		lua_xmove(L, co, nargs);
	lua_getiuservalue(L, si, UV_CUR);      /* prev, kept until restored */
	lua_pushvalue(L, fi);
	lua_setiuservalue(L, si, UV_CUR);
	int was_lazy = sd->lazy;        /* (a nested run: see fl_lazy_run) */
	sd->lazy = 0;
#ifdef FL_FREC
	unsigned was_rec = sd->cur_rec; /* (the same) */
	sd->cur_rec = 0;
#endif
	if (sd->has_enter && push_handler(L, si, UV_ENTER, fi))
		lua_call(L, 1, 0);
	int nres = 0;
	int st = fl_resume(co, L, nargs, &nres);
	sd->lazy = was_lazy;
#ifdef FL_FREC
	sd->cur_rec = was_rec;
#endif
	lua_setiuservalue(L, si, UV_CUR);      /* restore prev */
	if (sd->has_leave && push_handler(L, si, UV_LEAVE, fi))
		lua_call(L, 1, 0);
	settle(L, si, kt, fi, co, st, nres);
}

/* After the resume of fiber fi (coroutine co) ended with st: a yield
 * leaves it suspended (the nres yielded values dropped); a return or an
 * error (its value moved to L) finishes it. */
static void settle(lua_State *L, int si, int kt, int fi, lua_State *co, int st, int nres)
{
	if (st == LUA_YIELD) {
		lua_pop(co, nres);
		return;
	}
	if (st == LUA_OK)
		lua_settop(co, 0);
	else
		lua_xmove(co, L, 1);            /* the error value */
	finish(L, si, kt, fi, co, st);
}

/* Fiber fi, running co, returned (st LUA_OK) or raised (the error value
 * on top of the stack, popped): mark it dead, recycle its coroutine, run
 * the exit or unscoped handler. */
static void finish(lua_State *L, int si, int kt, int fi, lua_State *co, int st)
{
	lua_pushboolean(L, 1);
	fl_setk(L, fi, kt, K_DEAD);
#ifdef FL_FREC
	fl_frec_release(L, si, co);
#else
	fl_fast_susp_drop(L, si, fi);
#endif
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

/* Lazy scope fibers.  A fiber spawned by spawn_in with nothing to
 * inherit (no tag, no resume hooks) is queued as a three-slot record -
 * marker, function, scope (spawn_lazy) - and has neither a table nor
 * a coroutine until it runs.  While it runs, s->lazy is set, UV_CUR holds
 * its scope and UV_LAZY its coroutine; its fiber table is made
 * (materialise) the first time anything asks for the running fiber
 * (runtime.current_fiber, the C channel and sleep paths), or when it
 * yields or raises.  A fiber that returns without that - short fibers -
 * costs a queue record, a pooled coroutine and its scope's count. */
static char LAZY_WITH_SCOPE, LAZY_BARE;

/* Push a new fiber table { [key k] = the value at vi, scope = S,
 * _exit = S } (S: index of the scope) sized for nrec fields. */
static void fiber_table(lua_State *L, int kt, int si, int k, int vi, int S, int nrec)
{
	lua_createtable(L, 0, nrec);
	int t = lua_gettop(L);
	lua_pushvalue(L, vi);
	fl_setk(L, t, kt, k);
	lua_pushvalue(L, S);
	fl_setk(L, t, kt, K_SCOPE);
	lua_pushvalue(L, S);
	fl_setk(L, t, kt, K_EXIT);
	lua_getiuservalue(L, si, UV_FIBER_MT);
	lua_setmetatable(L, t);
}

/* Turn the running lazy fiber into its fiber table: pushes it and makes
 * it UV_CUR.  ci: index of its coroutine, or 0 to take it from UV_LAZY. */
static void materialise(lua_State *L, int si, int kt, int ci)
{
	lua_getiuservalue(L, si, UV_CUR);       /* the scope */
	int S = lua_gettop(L);
	if (!ci) {
		lua_getiuservalue(L, si, UV_LAZY);
		ci = S + 1;
	}
	fiber_table(L, kt, si, K_CO, ci, S, 4);
	lua_pushvalue(L, -1);
	lua_setiuservalue(L, si, UV_CUR);
	((struct sched *)lua_touserdata(L, si))->lazy = 0;
	lua_replace(L, S);
	lua_settop(L, S);
}

int fl_push_cur(lua_State *L, int si)
{
#ifdef FL_FREC
	struct sched *s = lua_touserdata(L, si);
	if (s->cur_rec) {
		lua_getiuservalue(L, si, UV_FIBERS);
		int t = lua_rawgeti(L, -1, s->cur_rec);
		lua_remove(L, -2);
		return t;
	}
#endif
	return lua_getiuservalue(L, si, UV_CUR);
}

void fl_push_current(lua_State *L, int si)
{
	if (((struct sched *)lua_touserdata(L, si))->lazy) {
		lua_getiuservalue(L, si, UV_KEYS);
		materialise(L, si, lua_gettop(L), 0);
		lua_remove(L, -2);
	} else {
		fl_push_cur(L, si);
	}
}

int fl_can_block(lua_State *L, int si, int kt)
{
#if LUA_VERSION_NUM >= 503
	if (!lua_isyieldable(L))
		return 0;
#elif defined(FL_PUC51)
	lua_Debug ar;
	for (int lv = 1; lua_getstack(L, lv, &ar); lv++) {
		if (!lua_getinfo(L, "Sn", &ar))
			break;
		if (ar.what[0] == 'C' || (ar.namewhat && (!strcmp(ar.namewhat, "metamethod")
							   || !strcmp(ar.namewhat, "for iterator"))))
			return 0;
	}
#endif
	int top = lua_gettop(L);
	fl_push_current(L, si);
	int own = lua_type(L, -1) == LUA_TTABLE && fl_getk(L, top + 1, kt, K_CO) == LUA_TTHREAD
		  && lua_tothread(L, -1) == L;
	lua_settop(L, top);
	return own;
}

int fl_push_ok_scope(lua_State *L, int si, int kt)
{
	int t = fl_push_cur(L, si);
	int sc = lua_gettop(L);
	if (t == LUA_TTABLE && !((struct sched *)lua_touserdata(L, si))->lazy) {
		fl_getk(L, sc, kt, K_SCOPE);    /* (a lazy fiber: UV_CUR is it) */
		lua_replace(L, sc);
	}
	if (lua_type(L, sc) != LUA_TTABLE || fl_getk(L, sc, kt, K_STATUS) != LUA_TNIL) {
		lua_settop(L, sc - 1);
		return 0;
	}
	lua_pop(L, 1);
	return 1;
}

int fl_is_lazy_marker(const void *p)
{
	return p == &LAZY_WITH_SCOPE || p == &LAZY_BARE;
}

void fl_lazy_run(lua_State *L, int si, int kt, int q, lua_Integer i, const void *marker)
{
	struct sched *s = lua_touserdata(L, si);
	int base = lua_gettop(L);
	lua_rawgeti(L, q, i + 1);               /* fn */
	lua_rawgeti(L, q, i + 2);               /* S */
	lua_pushnil(L);
	lua_rawseti(L, q, i + 1);
	lua_pushnil(L);
	lua_rawseti(L, q, i + 2);
	int fn = base + 1, S = base + 2;
	int nargs = marker == &LAZY_WITH_SCOPE;
	lua_State *co = new_co(L, si);
	int ci = lua_gettop(L);
	lua_pushvalue(L, fn);
	lua_xmove(L, co, 1);
	if (s->has_enter || s->has_leave || s->lazy) {
		/* the hooks are given fiber tables; so is a nested run */
		fiber_table(L, kt, si, K_CO, ci, S, 4);
		int t = lua_gettop(L);
		if (nargs)
			lua_pushvalue(L, S);
		resume_with(L, si, kt, t, nargs);
		lua_settop(L, base);
		return;
	}
	lua_getiuservalue(L, si, UV_CUR);       /* prev, kept until restored */
	int prev = lua_gettop(L);
	lua_pushvalue(L, S);
	lua_setiuservalue(L, si, UV_CUR);
	lua_pushvalue(L, ci);
	lua_setiuservalue(L, si, UV_LAZY);
	if (nargs) {
		lua_pushvalue(L, S);
		lua_xmove(L, co, 1);
	}
	s->lazy = 1;
#ifdef FL_FREC
	unsigned was_rec = s->cur_rec;  /* (a nested run) */
	s->cur_rec = 0;
#endif
	int nres = 0;
	int st = fl_resume(co, L, nargs, &nres);
#ifdef FL_FREC
	s->cur_rec = was_rec;
#endif
	if (s->lazy) {
		if (st == LUA_OK && scope_quick_exit(L, kt, S)) {
			s->lazy = 0;
			lua_pushvalue(L, prev);
			lua_setiuservalue(L, si, UV_CUR);
			lua_settop(co, 0);
			pool_put(L, si, ci, co);
			lua_settop(L, base);
			return;
		}
		materialise(L, si, kt, ci);
	} else {
		lua_getiuservalue(L, si, UV_CUR);  /* made while it ran */
	}
	int fi = lua_gettop(L);
	lua_pushvalue(L, prev);
	lua_setiuservalue(L, si, UV_CUR);
	settle(L, si, kt, fi, co, st, nres);
	lua_settop(L, base);
}

/* Queue a lazy fiber of scope S (at index S) running fn (at fn). */
static void spawn_lazy(lua_State *L, struct sched *s, int si, int S, int fn, int with_scope)
{
	lua_getiuservalue(L, si, s->nextq);
	lua_pushlightuserdata(L, with_scope ? &LAZY_WITH_SCOPE : &LAZY_BARE);
	lua_rawseti(L, -2, ++s->next_n);
	lua_pushvalue(L, fn);
	lua_rawseti(L, -2, ++s->next_n);
	lua_pushvalue(L, S);
	lua_rawseti(L, -2, ++s->next_n);
	lua_pop(L, 1);
	s->next_extra += 2;
}

/* Run the fiber at index fi now with its pending resume values: _n of
 * them in _1.._3 / _v, or -_n - 1 already on its coroutine's stack (see
 * fl_fiber_resume). */
void fl_fiber_run(lua_State *L, int si, int kt, int fi)
{
	lua_Integer n = 0;
	if (fl_getk(L, fi, kt, K_N) != LUA_TNIL) {
		n = lua_tointeger(L, -1);
		lua_pushnil(L);
		fl_setk(L, fi, kt, K_N);
	}
	lua_pop(L, 1);
	if (n < 0) {
		resume_on(L, si, kt, fi, (int)(-n - 1), 1);
		return;
	}
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
	fl_push_current(L, lua_upvalueindex(1));
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
	/* A coroutine suspended in a yield takes the values on its own stack
	 * now (what lua_resume would do when it runs): _n = -n - 1. */
	fl_getk(L, fi, kt, K_CO);
	lua_State *co = lua_tothread(L, -1);
	lua_pop(L, 1);
#ifdef FL_FREC
	struct frec *r = co ? fl_frec_of(s, co) : NULL;
	if (r) {
		if (r->queued)
			luaL_error(L, "fibers: fiber resumed twice before it ran");
		r->waiting = 0;         /* its fast-path block is over */
	}
#else
	fl_fast_susp_disarm(L, si, fi);
#endif
	if (co && co != L && lua_status(co) == LUA_YIELD && n < 1000000
	    && lua_checkstack(co, n + LUA_MINSTACK)) {
		luaL_checkstack(L, n, NULL);
		for (int i = 0; i < n; i++)
			lua_pushvalue(L, first + i);
		lua_xmove(L, co, n);
		lua_pushinteger(L, -(lua_Integer)n - 1);
		fl_setk(L, fi, kt, K_N);
		lua_pushvalue(L, fi);
		fl_sched_push(L, s, si);
		return;
	}
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

/* fiber:scheduled() -> true while it was resumed and has not run yet. */
static int f_scheduled(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	int si = push_sched(L);
	int on = fl_getk(L, 1, si + 1, K_N) != LUA_TNIL;
#ifdef FL_FREC
	if (!on) {
		fl_getk(L, 1, si + 1, K_CO);
		lua_State *co = lua_tothread(L, -1);
		struct frec *r = co ? fl_frec_of(lua_touserdata(L, si), co) : NULL;
		on = r && r->queued;
	}
#endif
	lua_pushboolean(L, on);
	return 1;
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

/* Queue a fiber of scope S (at index S) calling fn (at fn) with S
 * (with_scope) or nothing, inheriting the running fiber's tag.  With no
 * tag to inherit and no resume hooks it is a lazy record (see
 * fl_lazy_run); else a table whose coroutine is made when it first runs
 * (fiber_co).  Leaves the stack as it was. */
static void spawn_core(lua_State *L, int si, int kt, int S, int fn, int with_scope)
{
	struct sched *s = lua_touserdata(L, si);
	int top = lua_gettop(L);
	int tv = 0;                             /* the tag to inherit, if any */
	if (!s->lazy) {                         /* (a lazy fiber has no tag) */
		if (fl_push_cur(L, si) != LUA_TNIL
		    && fl_getk(L, lua_gettop(L), kt, K_TAG) != LUA_TNIL)
			tv = lua_gettop(L);
		else
			lua_settop(L, top);
	}
	if (!tv && !s->has_enter && !s->has_leave) {
		spawn_lazy(L, s, si, S, fn, with_scope);
		return;
	}
	/* 4: a parked fn() fiber keeps 4 hash slots */
	fiber_table(L, kt, si, K_F, fn, S, with_scope ? 5 : 4);
	int t = lua_gettop(L);
	lua_pushinteger(L, with_scope ? 1 : 0);
	fl_setk(L, t, kt, K_N);
	if (with_scope) {
		lua_pushvalue(L, S);
		fl_setk(L, t, kt, K_1);
	}
	if (tv) {
		lua_pushvalue(L, tv);
		fl_setk(L, t, kt, K_TAG);
	}
	lua_pushvalue(L, t);
	fl_sched_push(L, s, si);
	lua_settop(L, top);
}

/* spawn_in(S, with_scope, fn): a fiber of scope S calling fn(S)
 * (with_scope) or fn(), queued for the next turn (spawn_core). */
static int f_spawn_in(lua_State *L)
{
	luaL_checktype(L, 3, LUA_TFUNCTION);
	int with_scope = lua_toboolean(L, 2);
	lua_settop(L, 3);
	int si = push_sched(L);
	spawn_core(L, si, si + 1, 1, 3, with_scope);
	return 0;
}

/* Scope:spawn(fn, ...) -> true | false, reason (scope.lua installs it).
 * The fast case - no extra arguments, the scope open (none of _status,
 * _js, _closed set) - is the admission, S._nf + 1 and spawn_core here;
 * anything else calls the Lua form given to set("spawn", f). */
static int f_scope_spawn(lua_State *L)
{
	int n = lua_gettop(L);
	if (lua_type(L, 2) != LUA_TFUNCTION)
		return luaL_error(L, "spawn: expected function, got %s",
				  n < 2 ? "nil" : luaL_typename(L, 2));
	if (n == 2 && lua_type(L, 1) == LUA_TTABLE) {
		int si = push_sched(L), kt = si + 1;
		int open = fl_getk(L, 1, kt, K_STATUS) == LUA_TNIL
			&& fl_getk(L, 1, kt, K_JS) == LUA_TNIL
			&& fl_getk(L, 1, kt, K_CLOSED) == LUA_TNIL
			&& fl_getk(L, 1, kt, K_NF) == LUA_TNUMBER;
		if (open) {
			lua_Integer nf = lua_tointeger(L, -1);
			lua_pushinteger(L, nf + 1);
			fl_setk(L, 1, kt, K_NF);
			spawn_core(L, si, kt, 1, 2, 1);
			lua_pushboolean(L, 1);
			return 1;
		}
		lua_settop(L, n);
	}
	lua_getiuservalue(L, lua_upvalueindex(1), UV_SPAWN);
	lua_insert(L, 1);
	lua_call(L, n, LUA_MULTRET);
	return lua_gettop(L);
}

/* set(name, value): install a hook/handler ("enter", "leave", "exit",
 * "unscoped") or the general Scope:spawn ("spawn"); nil clears. */
static int f_set(lua_State *L)
{
	static const char *const names[] = { "enter", "leave", "exit", "unscoped", "spawn", NULL };
	static const int uvs[] = { UV_ENTER, UV_LEAVE, UV_EXIT, UV_UNSCOPED, UV_SPAWN };
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
	{ "scheduled", f_scheduled },
	{ "run", f_run },
	{ "run_now", f_run_now },
	{ "spawn_in", f_spawn_in },
	{ "scope_spawn", f_scope_spawn },
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
