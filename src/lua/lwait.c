/*
 * lwait.c - suspensions and wait queues in C: the pieces of fibers.op
 * that every blocking primitive touches (doc/library.md §4, §0.8).
 *
 * Suspensions stay fibers.op's tables { fiber, waiting, cleanups } with
 * its Susp metatable (UV_SUSP_MT); fl_new_susp builds one and
 * fl_complete is Susp:complete - clear `waiting`, then resume the fiber
 * with (token, values...), which only schedules it.  The C fast paths
 * (ch:get/ch:put, sleep) reuse one suspension per fiber (fl_fast_susp,
 * kept in a small cache keyed by the fiber; Lua 5.1-5.3 and LuaJIT); its
 * x[4] is the cancel queue (of the fiber's scope) where its (suspension,
 * CANCEL) entry is, and stays between blocks: a fiber that moved to
 * another scope registers again.
 *
 * A wait queue (op._waitq: scope cancel/fault/idle waiters, cond,
 * waitgroup) is a userdata (struct waitq) whose user value holds the
 * entries as (suspension, token) pairs in slots 1..n.  Entries whose
 * suspension stopped waiting are dropped from the tail at each push
 * (except a fast-path suspension's registered entry, kept for its
 * fiber's next block until the fiber finishes) and from the whole queue
 * when a push finds n >= lim, lim then becoming twice the live size (at
 * least 32): memory stays proportional to live waiters.  An entry that
 * leaves a queue clears its suspension's x[4] if it names that queue.  wake completes every
 * still-waiting entry in FIFO order and empties the queue.
 *
 * Lua 5.4: an entry may also be a fiber record's coroutine (lfrec.c),
 * registered with CANCEL in its scope's cancel queue: live while the
 * record waits and names this queue (r->reg_q), kept at the tail trim
 * while it names it, and it stops naming it when the entry leaves.
 */
#include <stdint.h>
#include <string.h>

#include "lbind.h"
#include "lsched.h"

struct waitq {
	lua_Integer n, lim;
};

#define UP_SCHED lua_upvalueindex(1)

/* Push a new waiting suspension { fiber at f, true }; returns its index. */
static int new_susp(lua_State *L, int si, int f, int narr)
{
	lua_createtable(L, narr, 0);
	int s = lua_gettop(L);
	lua_pushvalue(L, f);
	lua_rawseti(L, s, 1);
	lua_pushboolean(L, 1);
	lua_rawseti(L, s, 2);
	lua_getiuservalue(L, si, UV_SUSP_MT);
	lua_setmetatable(L, s);
	return s;
}

int fl_new_susp(lua_State *L, int si, int f)
{
	return new_susp(L, si, f, 2);
}

static int susp_flag(lua_State *L, int idx, int k);

#ifndef FL_FREC
/* The fast-path suspension cache (Lua 5.1-5.3, LuaJIT; 5.4 has fiber
 * records instead, lfrec.c). */
static unsigned scache_slot(const void *p)
{
	uintptr_t x = (uintptr_t)p;
	return (unsigned)((x >> 4) ^ (x >> 10)) & (FL_SCACHE - 1);
}

static void unregister(lua_State *L, int idx);

int fl_fast_susp(lua_State *L, int si, int f)
{
	struct sched *sd = lua_touserdata(L, si);
	const void *p = lua_topointer(L, f);
	unsigned slot = scache_slot(p);
	lua_getiuservalue(L, si, UV_SCACHE);
	int c = lua_gettop(L);
	if (lua_rawgeti(L, c, slot + 1) == LUA_TTABLE) {
		int s = c + 1;
		if (sd->sc_fiber[slot] == p && !susp_flag(L, s, 2)
		    && lua_rawgeti(L, s, 3) == LUA_TNIL) {
			lua_pop(L, 1);
			lua_pushboolean(L, 1);
			lua_rawseti(L, s, 2);
			lua_remove(L, c);
			return lua_gettop(L);
		}
		lua_settop(L, s);
		unregister(L, s);       /* evicted: never reused, an ordinary entry */
	}
	lua_settop(L, c);
	new_susp(L, si, f, 4);
	lua_pushvalue(L, -1);
	lua_rawseti(L, c, slot + 1);
	sd->sc_fiber[slot] = p;
	lua_remove(L, c);
	return lua_gettop(L);
}

/* If fiber fi has a suspension in the cache: push the cache and it and
 * return its slot + 1; else push nothing and return 0. */
static unsigned push_cached(lua_State *L, int si, int fi)
{
	struct sched *sd = lua_touserdata(L, si);
	const void *p = lua_topointer(L, fi);
	unsigned slot = scache_slot(p);
	if (sd->sc_fiber[slot] != p)
		return 0;
	lua_getiuservalue(L, si, UV_SCACHE);
	lua_rawgeti(L, -1, slot + 1);
	return slot + 1;
}

void fl_fast_susp_drop(lua_State *L, int si, int fi)
{
	unsigned k = push_cached(L, si, fi);
	if (!k)
		return;
	((struct sched *)lua_touserdata(L, si))->sc_fiber[k - 1] = NULL;
	unregister(L, lua_gettop(L));
	lua_pop(L, 1);
	lua_pushnil(L);
	lua_rawseti(L, -2, k);
	lua_pop(L, 1);
}

void fl_fast_susp_disarm(lua_State *L, int si, int fi)
{
	if (!push_cached(L, si, fi))
		return;
	if (susp_flag(L, lua_gettop(L), 2)) {
		lua_pushboolean(L, 0);
		lua_rawseti(L, -2, 2);
	}
	lua_pop(L, 2);
}
#endif

/* x[k] of the suspension at idx as a boolean (false if not a table). */
static int susp_flag(lua_State *L, int idx, int k)
{
	if (lua_type(L, idx) != LUA_TTABLE)
		return 0;
	lua_rawgeti(L, idx, k);
	int v = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return v;
}

/* True if the suspension at idx is a fast-path one registered in the
 * wait queue at qi (x[4] is that queue): its entry there stays for its
 * fiber's next block. */
static int registered_in(lua_State *L, int idx, int qi)
{
	if (lua_type(L, idx) != LUA_TTABLE)
		return 0;
	lua_rawgeti(L, idx, 4);
	int v = lua_rawequal(L, -1, qi);
	lua_pop(L, 1);
	return v;
}

#ifndef FL_FREC
/* The fast-path suspension at idx is no longer registered anywhere (it
 * left the cache): its next block, if any, registers again. */
static void unregister(lua_State *L, int idx)
{
	if (susp_flag(L, idx, 4)) {
		lua_pushnil(L);
		lua_rawseti(L, idx, 4);
	}
}
#endif

/* An entry (suspension at idx) leaves the wait queue at qi: if it was a
 * fast-path suspension's registration there (x[4]), forget that. */
static void unregister_from(lua_State *L, int idx, int qi)
{
	if (registered_in(L, idx, qi)) {
		lua_pushnil(L);
		lua_rawseti(L, idx, 4);
	}
}

#ifdef FL_FREC
/* The fiber record of the entry at idx if it is a coroutine (lfrec.c). */
static struct frec *entry_frec(lua_State *L, int idx)
{
	if (lua_type(L, idx) != LUA_TTHREAD)
		return NULL;
	return fl_frec_of(lua_touserdata(L, UP_SCHED), lua_tothread(L, idx));
}
#endif

/* Wait queue q's entry at idx: 1 if it must stay at a tail trim (its
 * suspension waits, or it is a fast-path registration kept between
 * blocks), 0 if not. */
static int entry_kept(lua_State *L, int idx, const struct waitq *q, int qi)
{
#ifdef FL_FREC
	if (lua_type(L, idx) == LUA_TTHREAD) {
		struct frec *r = entry_frec(L, idx);
		return r && r->reg_q == q;
	}
#endif
	(void)q;
	return fl_waiting(L, idx) || registered_in(L, idx, qi);
}

/* Wait queue q's entry at idx: 1 if it is live (its suspension waits). */
static int entry_live(lua_State *L, int idx, const struct waitq *q)
{
#ifdef FL_FREC
	if (lua_type(L, idx) == LUA_TTHREAD) {
		struct frec *r = entry_frec(L, idx);
		return r && r->waiting && r->reg_q == q;
	}
#endif
	(void)q;
	return fl_waiting(L, idx);
}

/* The entry at idx leaves wait queue q (at qi): it is no longer a
 * registration there. */
static void entry_leaves(lua_State *L, int idx, const struct waitq *q, int qi)
{
#ifdef FL_FREC
	if (lua_type(L, idx) == LUA_TTHREAD) {
		struct frec *r = entry_frec(L, idx);
		if (r && r->reg_q == q)
			r->reg_q = NULL;
		return;
	}
#endif
	(void)q;
	unregister_from(L, idx, qi);
}

/* Susp:complete for the waiting suspension at s with the token at s + 1
 * and nv values after it.  Leaves the stack as it was. */
void fl_complete(lua_State *L, int si, int kt, int s, int nv)
{
#ifdef FL_FREC
	if (lua_type(L, s) == LUA_TTHREAD) {
		struct frec *r = fl_frec_of(lua_touserdata(L, si), lua_tothread(L, s));
		if (r)
			fl_frec_complete(L, si, r, s + 1, 1 + nv);
		return;
	}
#endif
	lua_pushboolean(L, 0);
	lua_rawseti(L, s, 2);
	lua_rawgeti(L, s, 1);
	fl_fiber_resume(L, si, kt, lua_gettop(L), s + 1, 1 + nv);
	lua_pop(L, 1);
}

/* The wait queue at idx, or NULL if it is not one. */
struct waitq *fl_towaitq(lua_State *L, int idx)
{
	struct waitq *q = lua_touserdata(L, idx);
	struct sched *s = lua_touserdata(L, UP_SCHED);
	return q && fl_has_mt(L, idx, s->waitq_mt) ? q : NULL;
}

static struct waitq *check_waitq(lua_State *L, int idx)
{
	struct waitq *q = fl_towaitq(L, idx);
	if (!q)
		luaL_argerror(L, idx, "wait queue expected");
	return q;
}

/* True if the suspension at idx is still waiting (x[2]). */
int fl_waiting(lua_State *L, int idx)
{
	return susp_flag(L, idx, 2);
}

int fl_registered_in(lua_State *L, int idx, int qi)
{
	return registered_in(L, idx, qi);
}

/* Append (suspension at s, token at tok) to the wait queue q at qi. */

void fl_waitq_push(lua_State *L, struct waitq *q, int qi, int s, int tok, int keep)
{
	lua_getiuservalue(L, qi, 1);
	int e = lua_gettop(L);
	lua_Integer n = q->n;
	/* Stale entries at the tail go first (FIFO order is kept): a fiber
	 * that blocks again and again replaces its own old entry instead of
	 * growing the queue to the next compaction.  A fast-path
	 * suspension's entry (x[4]) stays: its fiber's next block reuses it
	 * (one per fiber; compaction drops it while idle). */
	while (n > 0) {
		lua_rawgeti(L, e, n - 1);
		int live = entry_kept(L, lua_gettop(L), q, qi);
		lua_pop(L, 1);
		if (live)
			break;
		lua_pushnil(L);
		lua_rawseti(L, e, n - 1);
		lua_pushnil(L);
		lua_rawseti(L, e, n);
		n -= 2;
	}
	if (n >= q->lim) {
		lua_Integer j = 0;
		for (lua_Integer i = 1; i <= n; i += 2) {
			lua_rawgeti(L, e, i);
			if (entry_live(L, lua_gettop(L), q)) {
				lua_rawseti(L, e, j + 1);
				lua_rawgeti(L, e, i + 1);
				lua_rawseti(L, e, j + 2);
				j += 2;
			} else {
				entry_leaves(L, lua_gettop(L), q, qi);
				lua_pop(L, 1);
			}
		}
		for (lua_Integer i = j + 1; i <= n; i++) {
			lua_pushnil(L);
			lua_rawseti(L, e, i);
		}
		n = j;
		q->lim = j * 2 > 32 ? j * 2 : 32;
	}
	lua_pushvalue(L, s);
	lua_rawseti(L, e, n + 1);
	lua_pushvalue(L, tok);
	lua_rawseti(L, e, n + 2);
	q->n = n + 2;
	lua_pop(L, 1);
	if (keep) {
		lua_pushvalue(L, qi);           /* x[4]: registered there */
		lua_rawseti(L, s, 4);
	}
}

/* waitq() -> a new empty wait queue */
static int w_new(lua_State *L)
{
	struct waitq *q = lua_newuserdatauv(L, sizeof *q, 1);
	q->n = 0;
	q->lim = 32;
	lua_newtable(L);
	lua_setiuservalue(L, -2, 1);
	lua_getiuservalue(L, UP_SCHED, UV_WAITQ_MT);
	lua_setmetatable(L, -2);
	return 1;
}

/* waitq_push(q, suspension, token) */
static int w_push(lua_State *L)
{
	struct waitq *q = check_waitq(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 3);
	fl_waitq_push(L, q, 1, 2, 3, 0);
	return 0;
}

/* waitq_wake(q, ...): complete every still-waiting entry (FIFO) with
 * (token, ...) and empty q. */
static int w_wake(lua_State *L)
{
	struct waitq *q = check_waitq(L, 1);
	int nv = lua_gettop(L) - 1;
	lua_Integer n = q->n;
	q->n = 0;
	if (n == 0)
		return 0;
	lua_pushvalue(L, UP_SCHED);
	int si = lua_gettop(L);
	lua_getiuservalue(L, si, UV_KEYS);
	lua_getiuservalue(L, 1, 1);
	int e = si + 2;
	luaL_checkstack(L, nv + 8, NULL);
	for (lua_Integer i = 1; i <= n; i += 2) {
		lua_rawgeti(L, e, i);                   /* s */
		int s = lua_gettop(L);
		lua_rawgeti(L, e, i + 1);               /* tok */
		lua_pushnil(L);
		lua_rawseti(L, e, i);
		lua_pushnil(L);
		lua_rawseti(L, e, i + 1);
		int live = entry_live(L, s, q);
		entry_leaves(L, s, q, 1);
		if (live) {
			for (int k = 0; k < nv; k++)
				lua_pushvalue(L, 2 + k);
			fl_complete(L, si, si + 1, s, nv);
		}
		lua_settop(L, e);
	}
	return 0;
}

/* waitq_len(q) -> number of slots in use (2 per entry, stale ones included) */
static int w_len(lua_State *L)
{
	struct waitq *q = check_waitq(L, 1);
	lua_pushinteger(L, q->n);
	return 1;
}

/* The wait-queue functions of the sched:_fast() table. */
const luaL_Reg fl_wait_funcs[] = {
	{ "waitq", w_new },
	{ "waitq_push", w_push },
	{ "waitq_wake", w_wake },
	{ "waitq_len", w_len },
	{ NULL, NULL },
};
