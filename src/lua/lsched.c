/*
 * lsched.c - `fibers.core`.sched: the scheduler object behind
 * lib/fibers/runtime.lua (the "Runtime contract" of the project brief).
 *
 * The C loop (src/core/loop.c) owns timers, fd waits and the clock; this
 * binding owns the Lua side: task values.  A scheduler is a full userdata
 * with four user values:
 *   1, 2  the two run-queue tables (array part only): one collects the
 *         tasks scheduled for the next turn while the other is being run;
 *         they swap at each turn, so scheduling never allocates once the
 *         arrays have grown;
 *   3     timer slot -> task        4   fd-wait slot -> task
 * A task is a function (called with no arguments) or any value with a
 * `run` method (called as task:run()).  The binding knows nothing about
 * fibers or Ops: runtime.lua resumes coroutines inside its tasks.
 *
 * Turn: loop_poll (timeout 0 if anything is runnable, else until the next
 * deadline, else forever), move fired waits' tasks to the queue, then run
 * exactly the tasks queued at that point, FIFO.  If a task raises, the
 * error propagates out of run()/main() and the tasks it had not reached
 * yet are kept, ahead of the rest, for the next turn.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "lbind.h"
#include "loop.h"

#include "lsched.h"

#define DEADLOCK_MSG "fibers: deadlock: every fiber is blocked and no timer or I/O can wake one"

/* self at index 1; the metatable is upvalue 1 of every method. */
static struct sched *self(lua_State *L)
{
	struct sched *s = lua_touserdata(L, 1);
	if (s && lua_getmetatable(L, 1)) {
		int ok = lua_rawequal(L, -1, lua_upvalueindex(1));
		lua_pop(L, 1);
		if (ok && s->loop)
			return s;
	}
	luaL_error(L, "fibers: scheduler method called without a live scheduler");
	return NULL;
}

static void check_task(lua_State *L, int idx)
{
	int t = lua_type(L, idx);
	if (t != LUA_TFUNCTION && t != LUA_TTABLE && t != LUA_TUSERDATA)
		luaL_error(L, "fibers: a task must be a function or have a run method (got %s)",
			   luaL_typename(L, idx));
}

/* Append the value on top of the stack to the next-turn queue (pops it);
 * si is the scheduler's stack index. */
void fl_sched_push(lua_State *L, struct sched *s, int si)
{
	lua_getiuservalue(L, si, s->nextq);
	lua_insert(L, -2);
	lua_rawseti(L, -2, ++s->next_n);
	lua_pop(L, 1);
}

/* sched:schedule(task): run task in the next turn (FIFO). */
static int s_schedule(lua_State *L)
{
	struct sched *s = self(L);
	check_task(L, 2);
	lua_settop(L, 2);
	fl_sched_push(L, s, 1);
	return 0;
}

/* sched:schedule_at_time(t, task) -> handle: schedule task when now >= t. */
static int s_schedule_at_time(lua_State *L)
{
	struct sched *s = self(L);
	double t = luaL_checknumber(L, 2);
	check_task(L, 3);
	if (t != t)
		luaL_argerror(L, 2, "deadline is NaN");
	lua_settop(L, 3);
	lua_pushinteger(L, fl_sched_timer(L, s, 1, t));
	return 1;
}

/* Add a timer due at t whose task is the value on top (popped). */
lua_Integer fl_sched_timer(lua_State *L, struct sched *s, int si, double t)
{
	uint64_t h;
	int err = loop_timer_add(s->loop, t, &h);
	if (err)
		luaL_error(L, "fibers: cannot add timer: %s", strerror(err));
	lua_getiuservalue(L, si, UV_TIMERS);
	lua_insert(L, -2);
	lua_rawseti(L, -2, (lua_Integer)TIMER_SLOT(h) + 1);
	lua_pop(L, 1);
	return (lua_Integer)h;
}

static uint64_t check_handle(lua_State *L, int idx)
{
	lua_Integer h = luaL_checkinteger(L, idx);
	return h < 0 ? 0 : (uint64_t)h;
}

/* sched:cancel_timer(handle) -> true if it was pending, false if stale. */
static int s_cancel_timer(lua_State *L)
{
	struct sched *s = self(L);
	uint64_t h = check_handle(L, 2);
	int ok = loop_timer_cancel(s->loop, h) == 0;
	if (ok) {
		lua_getiuservalue(L, 1, UV_TIMERS);
		lua_pushnil(L);
		lua_rawseti(L, -2, (lua_Integer)TIMER_SLOT(h) + 1);
	}
	lua_pushboolean(L, ok);
	return 1;
}

/* sched:wait_fd(fd, "r"|"w", task) -> handle | nil, msg, errno */
static int s_wait_fd(lua_State *L)
{
	struct sched *s = self(L);
	lua_Integer fd = luaL_checkinteger(L, 2);
	const char *dir = luaL_checkstring(L, 3);
	check_task(L, 4);
	unsigned d;
	if (strcmp(dir, "r") == 0)
		d = POLLER_IN;
	else if (strcmp(dir, "w") == 0)
		d = POLLER_OUT;
	else
		return luaL_argerror(L, 3, "expected \"r\" or \"w\"");
	if (fd < 0 || fd > 0x7fffffff)
		return fl_pusherr(L, EBADF);
	uint64_t h;
	int err = loop_fd_wait(s->loop, (int)fd, d, &h);
	if (err)
		return fl_pusherr(L, err);
	lua_getiuservalue(L, 1, UV_FDS);
	lua_pushvalue(L, 4);
	lua_rawseti(L, -2, (lua_Integer)LOOP_SLOT(h) + 1);
	lua_pushinteger(L, (lua_Integer)h);
	return 1;
}

/* sched:cancel_fd(handle) -> true if it was pending, false if stale. */
static int s_cancel_fd(lua_State *L)
{
	struct sched *s = self(L);
	uint64_t h = check_handle(L, 2);
	int ok = loop_fd_cancel(s->loop, h) == 0;
	if (ok) {
		lua_getiuservalue(L, 1, UV_FDS);
		lua_pushnil(L);
		lua_rawseti(L, -2, (lua_Integer)LOOP_SLOT(h) + 1);
	}
	lua_pushboolean(L, ok);
	return 1;
}

/* sched:forget_fd(fd) -> n: drop every wait on fd (their tasks never run)
 * and forget it in the poller; call before closing an fd that was waited on. */
static int s_forget_fd(lua_State *L)
{
	struct sched *s = self(L);
	lua_Integer fd = luaL_checkinteger(L, 2);
	size_t n = 0;
	if (fd >= 0 && fd <= 0x7fffffff) {
		loop_fd_forget(s->loop, (int)fd);
		const uint32_t *f = loop_fired(s->loop, &n);
		lua_getiuservalue(L, 1, UV_FDS);
		for (size_t i = 0; i < n; i++) {
			lua_pushnil(L);
			lua_rawseti(L, -2, (lua_Integer)LOOP_FIRED_SLOT(f[i]) + 1);
		}
	}
	lua_pushinteger(L, (lua_Integer)n);
	return 1;
}

/* sched:set_fd_background(fd, on): waits on fd (a watcher of rare events,
 * such as signals) do not hold the virtual clock still unless fd is ready. */
static int s_set_fd_background(lua_State *L)
{
	struct sched *s = self(L);
	lua_Integer fd = luaL_checkinteger(L, 2);
	if (fd < 0 || fd > 0x7fffffff)
		return luaL_argerror(L, 2, "bad fd");
	int err = loop_fd_background(s->loop, (int)fd, lua_toboolean(L, 3));
	if (err)
		return luaL_error(L, "fibers: set_fd_background: %s", strerror(err));
	return 0;
}

/* Move the tasks of fired waits to the next-turn queue. */
static void collect_fired(lua_State *L, struct sched *s)
{
	size_t n;
	const uint32_t *f = loop_fired(s->loop, &n);
	if (n == 0)
		return;
	lua_getiuservalue(L, 1, s->nextq);
	int q = lua_gettop(L);
	lua_getiuservalue(L, 1, UV_TIMERS);
	lua_getiuservalue(L, 1, UV_FDS);
	for (size_t i = 0; i < n; i++) {
		int tbl = (f[i] & LOOP_FIRED_FD) ? q + 2 : q + 1;
		lua_Integer key = (lua_Integer)LOOP_FIRED_SLOT(f[i]) + 1;
		if (lua_rawgeti(L, tbl, key) == LUA_TNIL) {
			lua_pop(L, 1);
			continue;
		}
		lua_rawseti(L, q, ++s->next_n);
		lua_pushnil(L);
		lua_rawseti(L, tbl, key);
	}
	lua_pop(L, 3);
}

/* One turn; runs unprotected (the callers wrap it in lua_pcall). */
static void turn(lua_State *L, struct sched *s, enum loop_wait mode, int have_now, double now)
{
	if (s->next_n > 0)
		mode = LOOP_NOWAIT;
	int err = loop_poll(s->loop, mode, have_now, now);
	if (err == EDEADLK)
		luaL_error(L, DEADLOCK_MSG);
	else if (err)
		luaL_error(L, "fibers: poller wait failed: %s", strerror(err));
	collect_fired(L, s);
	s->curq = s->nextq;
	s->cur_n = s->next_n;
	s->cur_i = 0;
	s->nextq = s->curq == UV_QA ? UV_QB : UV_QA;
	s->next_n = 0;
	s->next_extra = 0;
	/* The keys and the queue table, fetched for the first task that is
	 * not a fiber record (kt 0 until then). */
	int base = lua_gettop(L), kt = 0, q = 0;
#ifdef FL_FREC
	struct fl_rqrecs *rr = &s->rr[s->curq - UV_QA];
#endif
	while (s->cur_i < s->cur_n) {
		lua_Integer i = ++s->cur_i;
#ifdef FL_FREC
		if (rr->head < rr->n && rr->e[rr->head].pos == i) {
			struct frec *r = &s->frecs[rr->e[rr->head++].idx];
			fl_frec_run(L, s, 1, kt, r, 0);    /* a fiber record */
			continue;
		}
#endif
		if (!q) {
			lua_getiuservalue(L, 1, UV_KEYS);
			kt = base + 1;
			lua_getiuservalue(L, 1, s->curq);
			q = base + 2;
		}
		int t = lua_rawgeti(L, q, i);
		if (t == LUA_TLIGHTUSERDATA) {          /* a lazy fiber record */
			const void *m = lua_touserdata(L, -1);
			lua_pushnil(L);
			lua_rawseti(L, q, i);
			lua_pop(L, 1);
			if (!fl_is_lazy_marker(m))
				luaL_error(L, "fibers: corrupt run queue");
			s->cur_i += 2;
			fl_lazy_run(L, 1, kt, q, i, m);
			continue;
		}
		lua_pushnil(L);
		lua_rawseti(L, q, i);
		if (t == LUA_TFUNCTION) {
			lua_call(L, 0, 0);
			continue;
		}
#ifdef FL_FREC
		if (t == LUA_TTHREAD) {                 /* a sleep's timer (lfrec.c) */
			struct frec *r = fl_frec_of(s, lua_tothread(L, -1));
			lua_pop(L, 1);
			if (r)
				fl_frec_run(L, s, 1, kt, r, 1);
			continue;
		}
#endif
		if (t == LUA_TTABLE && lua_getmetatable(L, -1)) {
			const void *mt = lua_topointer(L, -1);
			lua_pop(L, 1);
			if (mt == s->fiber_mt || mt == s->susp_mt) {
				if (mt == s->fiber_mt)
					fl_fiber_run(L, 1, kt, lua_gettop(L));
				else
					fl_susp_fire(L, 1, kt, lua_gettop(L));
				lua_pop(L, 1);
				continue;
			}
		}
		if (lua_getfield(L, -1, "run") == LUA_TNIL)
			luaL_error(L, "fibers: a task must be a function or have a run method");
		lua_insert(L, -2);
		lua_call(L, 1, 0);
	}
	lua_settop(L, base);
	if (s->cur_n > FL_QUEUE_KEEP) {
		/* a burst grew this queue's array: do not keep it */
		lua_newtable(L);
		lua_setiuservalue(L, 1, s->curq);
	}
#ifdef FL_FREC
	rr->n = rr->head = 0;
	if (rr->cap > FL_QUEUE_KEEP) {
		free(rr->e);
		rr->e = NULL;
		rr->cap = 0;
	}
#endif
	s->cur_i = s->cur_n = 0;
}

#ifdef FL_FREC
/* salvage for the queued fiber records: those of the current queue the
 * turn had not reached (left positions from cur_i + 1) come first, then
 * those of the next queue, positions renumbered the same way. */
static void salvage_records(lua_State *L, struct sched *s, lua_Integer left)
{
	struct fl_rqrecs *c = &s->rr[s->curq - UV_QA], *x = &s->rr[s->nextq - UV_QA];
	size_t n = 0;
	for (size_t k = c->head; k < c->n; k++) {
		c->e[n] = c->e[k];
		c->e[n++].pos -= s->cur_i;
	}
	if (n + x->n > c->cap) {
		void *e = realloc(c->e, (n + x->n) * sizeof c->e[0]);
		if (!e)
			luaL_error(L, "fibers: out of memory");
		c->e = e;
		c->cap = n + x->n;
	}
	for (size_t k = 0; k < x->n; k++) {
		c->e[n] = x->e[k];
		c->e[n++].pos += left;
	}
	c->n = n;
	c->head = 0;
	x->n = x->head = 0;
}
#endif

/* After a task raised: put the tasks the turn had not reached in front of
 * those already queued for the next turn.  Keeps the stack balanced. */
static void salvage(lua_State *L, struct sched *s)
{
	lua_Integer left = s->cur_n - s->cur_i;
	if (left <= 0) {
		s->cur_i = s->cur_n = 0;
		return;
	}
	lua_getiuservalue(L, 1, s->curq);
	lua_getiuservalue(L, 1, s->nextq);
	int cur = lua_gettop(L) - 1, nxt = cur + 1;
#ifdef FL_FREC
	salvage_records(L, s, left);
#endif
	for (lua_Integer k = 1; k <= left; k++) {       /* compact to 1..left */
		lua_rawgeti(L, cur, s->cur_i + k);
		/* (a lazy marker, not a stale one in a record's slot) */
		if (lua_type(L, -1) == LUA_TLIGHTUSERDATA
		    && fl_is_lazy_marker(lua_touserdata(L, -1)))
			s->next_extra += 2;
		lua_pushnil(L);
		lua_rawseti(L, cur, s->cur_i + k);
		lua_rawseti(L, cur, k);
	}
	for (lua_Integer k = 1; k <= s->next_n; k++) {  /* then the queued ones */
		lua_rawgeti(L, nxt, k);
		lua_rawseti(L, cur, left + k);
		lua_pushnil(L);
		lua_rawseti(L, nxt, k);
	}
	lua_pop(L, 2);
	s->next_n += left;
	s->nextq = s->curq;
	s->cur_i = s->cur_n = 0;
}

static int run_inner(lua_State *L)
{
	struct sched *s = lua_touserdata(L, 1);
	int have_now = !lua_isnoneornil(L, 2);
	turn(L, s, LOOP_NOWAIT, have_now, have_now ? lua_tonumber(L, 2) : 0);
	return 0;
}

static int main_inner(lua_State *L)
{
	struct sched *s = lua_touserdata(L, 1);
	while (!s->stopping)
		turn(L, s, LOOP_BLOCK, 0, 0);
	return 0;
}

static int protected_turns(lua_State *L, struct sched *s, lua_CFunction f)
{
	if (s->in_turn)
		return luaL_error(L, "fibers: scheduler is already running (run/main called from a task)");
	s->in_turn = 1;
	lua_pushcfunction(L, f);
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 2);
	int status = lua_pcall(L, 2, 0, 0);
	s->in_turn = 0;
	if (status != LUA_OK) {
		salvage(L, s);
		return lua_error(L);
	}
	return 0;
}

/* sched:run(now?): one turn that never blocks; `now` = synthetic time. */
static int s_run(lua_State *L)
{
	struct sched *s = self(L);
	if (!lua_isnoneornil(L, 2))
		luaL_checknumber(L, 2);
	lua_settop(L, 2);
	return protected_turns(L, s, run_inner);
}

/* sched:main(): turns until stop(); raises on deadlock. */
static int s_main(lua_State *L)
{
	struct sched *s = self(L);
	lua_settop(L, 1);
	lua_pushnil(L);
	s->stopping = 0;
	return protected_turns(L, s, main_inner);
}

/* sched:stop(): make main() return after the current turn. */
static int s_stop(lua_State *L)
{
	self(L)->stopping = 1;
	return 0;
}

/* sched:now() -> the cached turn time. */
static int s_now(lua_State *L)
{
	lua_pushnumber(L, loop_now(self(L)->loop));
	return 1;
}

/* sched:next_wake_time() -> now() if runnable, else the next deadline, else math.huge. */
static int s_next_wake_time(lua_State *L)
{
	struct sched *s = self(L);
	double d;
	if (s->next_n > 0)
		d = loop_now(s->loop);
	else if (loop_next_deadline(s->loop, &d) != 0)
		d = HUGE_VAL;
	lua_pushnumber(L, d);
	return 1;
}

/* sched:clear(): drop every queued task, timer and fd wait. */
static int s_clear(lua_State *L)
{
	struct sched *s = self(L);
	loop_clear(s->loop);
	for (int i = 1; i <= UV_FDS; i++) {
		lua_newtable(L);
		lua_setiuservalue(L, 1, i);
	}
	s->next_n = 0;
	s->next_extra = 0;
	s->cur_n = s->cur_i;    /* a turn in progress stops after this task */
#ifdef FL_FREC
	fl_frec_reset_all(L, s, 1);
#endif
	return 0;
}

/* sched:counts() -> runnable, timers, fd_waits */
static int s_counts(lua_State *L)
{
	struct sched *s = self(L);
	lua_pushinteger(L, (lua_Integer)(s->next_n - s->next_extra));
	lua_pushinteger(L, (lua_Integer)loop_timer_count(s->loop));
	lua_pushinteger(L, (lua_Integer)loop_fd_count(s->loop));
	return 3;
}

/* sched:backend() -> "epoll" | "poll" */
static int s_backend(lua_State *L)
{
	lua_pushstring(L, loop_backend(self(L)->loop));
	return 1;
}

static int s_gc(lua_State *L)
{
	struct sched *s = lua_touserdata(L, 1);
	if (s->loop) {
		loop_free(s->loop);
		s->loop = NULL;
	}
#ifdef FL_FREC
	fl_frec_free_all(s);
#endif
	return 0;
}

static const luaL_Reg sched_methods[] = {
	{ "schedule", s_schedule },
	{ "schedule_at_time", s_schedule_at_time },
	{ "cancel_timer", s_cancel_timer },
	{ "wait_fd", s_wait_fd },
	{ "cancel_fd", s_cancel_fd },
	{ "forget_fd", s_forget_fd },
	{ "set_fd_background", s_set_fd_background },
	{ "run", s_run },
	{ "main", s_main },
	{ "stop", s_stop },
	{ "now", s_now },
	{ "next_wake_time", s_next_wake_time },
	{ "clear", s_clear },
	{ "counts", s_counts },
	{ "backend", s_backend },
	{ "_fibers", fl_sched_fibers },
	{ "_fast", fl_sched_fast },
	{ NULL, NULL },
};

/* sched.new(backend?) -> scheduler; backend "epoll"|"poll" overrides
 * FIBERS_POLLER.  Raises on a bad backend name. */
static int l_new(lua_State *L)
{
	const struct poller_ops *ops = NULL;
	const char *name = luaL_optstring(L, 1, NULL);
	if (name && !(ops = poller_by_name(name)))
		return luaL_error(L, "fibers: unknown poller backend '%s' (use epoll or poll)", name);
	struct sched *s = lua_newuserdatauv(L, sizeof *s, NUV);
	memset(s, 0, sizeof *s);
	s->nextq = UV_QA;
	s->curq = UV_QB;
	for (int i = 1; i <= UV_FDS; i++) {
		lua_newtable(L);
		lua_setiuservalue(L, -2, i);
	}
	static const char *const keys[] = FL_KEY_NAMES;
	lua_createtable(L, NKEYS, 0);
	for (int i = 0; i < NKEYS; i++) {
		lua_pushstring(L, keys[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setiuservalue(L, -2, UV_KEYS);
	lua_newtable(L);
	lua_setiuservalue(L, -2, UV_POOL);
#ifdef FL_FREC
	lua_newtable(L);
	lua_setiuservalue(L, -2, UV_FIBERS);
	s->epoch = 1;
	/* Coroutines start with a copy of the main thread's extra space, where
	 * fiber records keep their index (lfrec.c): zero it, so that none
	 * starts with a stale or uninitialised one. */
	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
	fl_frec_clear_space(lua_tothread(L, -1));
	lua_pop(L, 1);
#else
	lua_createtable(L, FL_SCACHE, 0);
	lua_setiuservalue(L, -2, UV_SCACHE);
#endif
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_setmetatable(L, -2);
	int err = loop_new(&s->loop, ops);
	if (err == EINVAL)
		return luaL_error(L, "fibers: unknown FIBERS_POLLER value '%s' (use epoll or poll)",
				  getenv("FIBERS_POLLER"));
	if (err)
		return luaL_error(L, "fibers: cannot create the event loop: %s", strerror(err));
	return 1;
}

int fl_open_sched(lua_State *L)
{
	lua_newtable(L);                        /* module */
	luaL_newmetatable(L, "fibers.core.sched");
	lua_newtable(L);                        /* methods */
	lua_pushvalue(L, -2);
	luaL_setfuncs(L, sched_methods, 1);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, s_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushliteral(L, "fibers.scheduler");
	lua_setfield(L, -2, "__name");
	lua_pushcclosure(L, l_new, 1);
	lua_setfield(L, -2, "new");
	return 1;
}
