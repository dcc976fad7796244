/*
 * lchan.c - the state and hot paths of fibers.channel (doc/library.md §6) in
 * C; lib/fibers/channel.lua builds the Ops and documents the semantics.
 * Also the fast half of fibers.sleep.sleep (sleep_block), which shares
 * the suspension and cancel-queue helpers.
 *
 * A channel is a full userdata (struct chan) with four user values: the
 * buffer (values in slots bh..bt, nil allowed), the get queue (entries of
 * two slots: suspension, token), the put queue (three slots: suspension,
 * token, value) and the channel's get op, built once by channel.lua.
 * Queues keep entries in slots h..t and are compacted - entries whose
 * suspension stopped waiting dropped - whenever they span `lim` slots, so
 * losing registrations never pile up (doc/library.md §0.8).  A channel is
 * recognised by its size and first word (check_chan), not its metatable.
 *
 * Lua 5.4 (FL_FREC): a fiber blocked in ch:get/ch:put is a fiber record
 * (lfrec.c).  Its entry is (index, block number) in the queue's C ring,
 * which holds up to FL_RING entries older than any in the table, or - when
 * the table part is not empty or the ring is full - its coroutine in the
 * entry's first slot (live while r->wq, r->wpos name that slot).  A
 * blocked put keeps its value on its own stack, where the getter takes it
 * (release_putter).  Completing a record is fl_frec_wake/fl_frec_complete.
 *
 * Suspensions are fibers.op's tables { fiber, waiting, cleanups } with
 * its Susp metatable; completing one here is exactly Susp:complete:
 * clear `waiting`, then fiber:resume(token, values...) (lfiber.c), which
 * only schedules.  A value only moves inside a try, into or out of a
 * suspension that is still waiting.
 *
 * ch:get()/ch:put(v) for a fiber of a scope that is ok: try, else
 * register a suspension (5.4: the fiber record) in the channel queue and
 * in the scope's cancel wait queue (lwait.c) and yield (get_step/put_step;
 * 5.4: get_method/put_method with ready_to_block).  On Lua 5.3+ they
 * are the C methods get_method/put_method (a continuation raises on
 * cancellation; anything else calls the general Lua form, a perform);
 * on older Luas the C halves get(ch)/put(ch, v) return 1 (done; get adds
 * the value), 0 (take the general form) or yield and return the resume
 * values (token, values...) to channel.lua's wrappers.
 */
#include <math.h>
#include <string.h>

#include "core.h"
#include "lbind.h"
#include "lsched.h"

#define UV_BUF  1
#define UV_GETQ 2
#define UV_PUTQ 3
#define UV_OP   4
#define NCHUV   4

/* Upvalues of every function here. */
#define UP_SCHED  lua_upvalueindex(1)
#define UP_CANCEL lua_upvalueindex(3)

/* Entries of fiber records held in C, before those in the Lua table. */
#define FL_RING 8

struct queue {
	lua_Integer h, t, lim;          /* the table's entries: slots h..t */
	int stride;
	unsigned rh, rn;                /* the ring's entries: rn from rh */
	struct {
		unsigned idx;           /* a fiber record ... */
		lua_Integer gen;        /* ... waiting in this block */
	} ring[FL_RING];
};

struct chan {
	const char *magic;              /* &chan_magic: a channel (check_chan) */
	struct sched *s;                /* the scheduler of the functions here
					 * (UP_SCHED, which keeps it alive) */
	double size;                    /* capacity; HUGE_VAL = unbounded */
	lua_Integer bh, bt;             /* buffer slots bh..bt */
	struct queue q[2];              /* [0] get (stride 2), [1] put (3) */
};

static const char chan_magic = 0;

/* The channel at idx or NULL: a full userdata of this size starting with
 * &chan_magic (no script can make one; cheaper than its metatable). */
static struct chan *to_chan(lua_State *L, int idx)
{
	struct chan *c = lua_touserdata(L, idx);        /* (NULL if not one) */
	if (!c || lua_rawlen(L, idx) != sizeof(struct chan))
		return NULL;            /* (a light userdata's length is 0) */
	return c->magic == &chan_magic ? c : NULL;
}

static struct chan *check_chan(lua_State *L, int idx)
{
	struct chan *c = to_chan(L, idx);
	if (!c)
		luaL_argerror(L, idx, "channel expected");
	return c;
}

/* new(size) -> channel (size validated by channel.lua). */
static int c_new(lua_State *L)
{
	double size = luaL_checknumber(L, 1);
	struct chan *c = lua_newuserdatauv(L, sizeof *c, NCHUV);
	memset(c, 0, sizeof *c);
	c->magic = &chan_magic;
	c->s = lua_touserdata(L, UP_SCHED);
	c->size = size;
	c->bh = 1;
	for (int i = 0; i < 2; i++) {
		c->q[i].stride = i ? 3 : 2;
		c->q[i].h = 1;
		c->q[i].lim = 16 * c->q[i].stride;
	}
	for (int i = 1; i <= UV_PUTQ; i++) {
		lua_newtable(L);
		lua_setiuservalue(L, -2, i);
	}
	lua_getiuservalue(L, UP_SCHED, UV_CHAN_MT);
	lua_setmetatable(L, -2);
	return 1;
}

/* The record of the fiber whose entry is the thread at idx in slot i of
 * queue q, if that entry is live: the fiber still waits there (its
 * r->wq, r->wpos).  A fiber record's entry is its thread alone, in the
 * entry's first slot (a put's value stays on the putter's stack). */
#ifdef FL_FREC
static struct frec *live_frec(lua_State *L, struct sched *s, int idx,
			      const struct queue *q, lua_Integer i)
{
	struct frec *r = fl_frec_of(s, lua_tothread(L, idx));
	return r && r->waiting && r->wq == q && r->wpos == i ? r : NULL;
}
#endif

/* Drop entries whose suspension stopped waiting; qt at index qi. */
static void compact(lua_State *L, struct sched *s, struct queue *q, int qi)
{
	lua_Integer j = 0;
	for (lua_Integer i = q->h; i <= q->t; i += q->stride) {
		int t = lua_rawgeti(L, qi, i);
		int live;
#ifdef FL_FREC
		if (t == LUA_TTHREAD) {
			struct frec *r = live_frec(L, s, lua_gettop(L), q, i);
			if (r)
				r->wpos = j + 1;
			live = r != NULL;
		} else
#endif
		{
			(void)t;
			(void)s;
			live = fl_waiting(L, -1);
		}
		lua_pop(L, 1);
		if (!live)
			continue;
		for (int k = 0; k < q->stride; k++) {
			lua_rawgeti(L, qi, i + k);
			lua_rawseti(L, qi, j + 1 + k);
		}
		j += q->stride;
	}
	for (lua_Integer i = (j + 1 > q->h ? j + 1 : q->h); i <= q->t; i++) {
		lua_pushnil(L);
		lua_rawseti(L, qi, i);
	}
	q->h = 1;
	q->t = j;
	q->lim = 2 * j > 16 * q->stride ? 2 * j : 16 * q->stride;
}

/* Append the stride values on top of the stack (popped) to queue qn. */
static void push_entry(lua_State *L, struct chan *c, int ci, int qn)
{
	struct queue *q = &c->q[qn];
	lua_getiuservalue(L, ci, UV_GETQ + qn);
	int qi = lua_gettop(L);
	for (int k = q->stride; k >= 1; k--) {
		lua_pushvalue(L, qi - q->stride + k - 1);
		lua_rawseti(L, qi, q->t + k);
	}
	q->t += q->stride;
	if (q->t - q->h + 1 >= q->lim)
		compact(L, lua_touserdata(L, UP_SCHED), q, qi);
	lua_pop(L, q->stride + 1);
}

#ifdef FL_FREC
/* The record of ring entry e of queue q if it still waits in that block. */
#define RING_LIVE(s, e) ((e).idx < (s)->nfrec && (s)->frecs[(e).idx].waiting \
			 && (s)->frecs[(e).idx].gen == (e).gen)

/* Append the entry of the running fiber (record r) to queue qn of the
 * channel at ci: into the ring if the table part is empty and the ring
 * has room (after dropping its stale entries), else its thread into the
 * table. */
static void push_frec_entry(lua_State *L, struct sched *s, struct chan *c, int ci, int qn,
			    struct frec *r)
{
	struct queue *q = &c->q[qn];
	if (q->h > q->t && q->rn == FL_RING) {
		unsigned n = 0;
		for (unsigned k = 0; k < FL_RING; k++) {
			unsigned j = (q->rh + k) % FL_RING;
			if (RING_LIVE(s, q->ring[j]))
				q->ring[(q->rh + n++) % FL_RING] = q->ring[j];
		}
		q->rn = n;
	}
	if (q->h > q->t && q->rn < FL_RING) {
		unsigned j = (q->rh + q->rn++) % FL_RING;
		q->ring[j].idx = (unsigned)(r - s->frecs);
		q->ring[j].gen = r->gen;
		r->wq = NULL;
		return;
	}
	lua_getiuservalue(L, ci, UV_GETQ + qn);
	lua_pushthread(L);
	lua_rawseti(L, -2, q->t + 1);
	r->wq = q;
	r->wpos = q->t + 1;
	q->t += q->stride;
	if (q->t - q->h + 1 >= q->lim)
		compact(L, s, q, lua_gettop(L));
	lua_pop(L, 1);
}
#endif

/* Pop the oldest still-waiting entry of queue qn of the channel at ci.
 * Returns 0 (none; nothing pushed), 1 (a suspension: its stride values
 * pushed) or 2 (a fiber record, *rp; nothing pushed). */
static int pop_entry(lua_State *L, struct sched *s, struct chan *c, int ci, int qn,
		     struct frec **rp)
{
	struct queue *q = &c->q[qn];
#ifdef FL_FREC
	while (q->rn > 0) {
		unsigned j = q->rh;
		q->rh = (j + 1) % FL_RING;
		q->rn--;
		if (RING_LIVE(s, q->ring[j])) {
			*rp = &s->frecs[q->ring[j].idx];
			return 2;
		}
	}
#endif
	if (q->h > q->t)
		return 0;
	lua_getiuservalue(L, ci, UV_GETQ + qn);
	int qi = lua_gettop(L), kind = 0;
	while (q->h < q->t) {
		lua_Integer h = q->h;
		q->h = h + q->stride;
		int t = lua_rawgeti(L, qi, h);
		lua_pushnil(L);
		lua_rawseti(L, qi, h);
#ifdef FL_FREC
		if (t == LUA_TTHREAD) {
			struct frec *r = live_frec(L, s, qi + 1, q, h);
			lua_settop(L, qi);
			if (r) {
				*rp = r;
				kind = 2;
				break;
			}
			continue;
		}
#else
		(void)t;
		(void)rp;
#endif
		for (int k = 1; k < q->stride; k++) {
			lua_rawgeti(L, qi, h + k);
			lua_pushnil(L);
			lua_rawseti(L, qi, h + k);
		}
		if (fl_waiting(L, qi + 1)) {
			kind = 1;
			break;
		}
		lua_settop(L, qi);
	}
	if (q->h > q->t) {
		q->h = 1;
		q->t = 0;
	}
	lua_remove(L, qi);
	return kind;
}

/* Complete the suspension at s (token at s + 1, nv values after it). */
static void complete(lua_State *L, int s, int nv)
{
	lua_pushvalue(L, UP_SCHED);
	int si = lua_gettop(L);
	lua_getiuservalue(L, si, UV_KEYS);
	fl_complete(L, si, si + 1, s, nv);
	lua_pop(L, 2);
}

/* Buffer count, as a double (the capacity may be HUGE_VAL). */
static double count(const struct chan *c)
{
	return (double)(c->bt - c->bh + 1);
}

/* try_put on the channel at ci with the value at vi: 1 if delivered or
 * buffered, 0 if it must block. */
static int try_put(lua_State *L, struct sched *s, struct chan *c, int ci, int vi)
{
	struct frec *r = NULL;
	switch (pop_entry(L, s, c, ci, 0, &r)) {
	case 2:
#ifdef FL_FREC
		fl_frec_wake(L, s, r, vi);
#endif
		return 1;
	case 1: {                                       /* s, tok */
		int sp = lua_gettop(L) - 1;
		lua_pushvalue(L, vi);
		complete(L, sp, 1);
		lua_pop(L, 3);
		return 1;
	}
	}
	if (count(c) < c->size) {
		lua_getiuservalue(L, ci, UV_BUF);
		lua_pushvalue(L, vi);
		lua_rawseti(L, -2, ++c->bt);
		lua_pop(L, 1);
		return 1;
	}
	return 0;
}

/* A putter's entry was popped (kind 1: s, tok, v; kind 2: record r):
 * complete it - the put is done - leaving only its value. */
static void release_putter(lua_State *L, struct sched *s, int kind, struct frec *r)
{
	if (kind == 2) {
#ifdef FL_FREC
		lua_xmove(r->co, L, 1);         /* the value, on top of its stack */
		fl_frec_wake(L, s, r, 0);
#endif
		return;
	}
	int top = lua_gettop(L);
	complete(L, top - 2, 0);
	lua_remove(L, top - 2);
	lua_remove(L, top - 2);
}

/* try_get on the channel at ci: pushes the value and returns 1, or
 * pushes nothing and returns 0. */
static int try_get(lua_State *L, struct sched *s, struct chan *c, int ci)
{
	struct frec *r = NULL;
	int kind;
	if (c->bh <= c->bt) {
		lua_getiuservalue(L, ci, UV_BUF);
		int b = lua_gettop(L);
		lua_rawgeti(L, b, c->bh);                /* the value */
		lua_pushnil(L);
		lua_rawseti(L, b, c->bh);
		if (c->bh == c->bt) {
			c->bh = 1;
			c->bt = 0;
		} else {
			c->bh++;
		}
		if ((kind = pop_entry(L, s, c, ci, 1, &r))) {
			release_putter(L, s, kind, r);     /* its value on top */
			lua_rawseti(L, b, ++c->bt);
		}
		lua_remove(L, b);
		return 1;
	}
	if ((kind = pop_entry(L, s, c, ci, 1, &r))) {
		release_putter(L, s, kind, r);
		return 1;
	}
	return 0;
}

/* try_put(ch, v) -> bool */
static int c_try_put(lua_State *L)
{
	struct chan *c = check_chan(L, 1);
	lua_settop(L, 2);
	lua_pushboolean(L, try_put(L, lua_touserdata(L, UP_SCHED), c, 1, 2));
	return 1;
}

int fl_chan_try_get(lua_State *L, int ci)
{
	return try_get(L, lua_touserdata(L, UP_SCHED), lua_touserdata(L, ci), ci);
}

int fl_is_chan(lua_State *L, int idx)
{
	return to_chan(L, idx) != NULL;
}

/* get_try(op) -> ready, value: the try of a channel's get op (op.ch). */
/* Try a get on the channel at ci and return true, v | false. */
static int ret_try_get(lua_State *L, int ci)
{
	struct chan *c = check_chan(L, ci);
	if (!try_get(L, lua_touserdata(L, UP_SCHED), c, ci)) {
		lua_pushboolean(L, 0);
		return 1;
	}
	lua_pushboolean(L, 1);
	lua_insert(L, -2);
	return 2;
}

int fl_op_get_try(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	lua_getiuservalue(L, UP_SCHED, UV_KEYS);
	fl_getk(L, 1, 2, K_CH);
	return ret_try_get(L, 3);
}

/* try_get(ch) -> true, v | false */
static int c_try_get(lua_State *L)
{
	lua_settop(L, 1);
	return ret_try_get(L, 1);
}

/* block_get(ch, susp, token): queue a waiting getter. */
static int c_block_get(lua_State *L)
{
	struct chan *c = check_chan(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 3);
	push_entry(L, c, 1, 0);
	return 0;
}

/* block_put(ch, susp, token, v): queue a waiting putter. */
static int c_block_put(lua_State *L)
{
	struct chan *c = check_chan(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 4);
	push_entry(L, c, 1, 1);
	return 0;
}

/* Register the suspension at s with CANCEL in the cancel queue of the
 * scope at sc (fibers.op's protocol for scope-aware performs). */
void fl_cancel_waiter(lua_State *L, int kt, int sc, int s, int keep)
{
	fl_getk(L, sc, kt, K_CW);
	struct waitq *q = fl_towaitq(L, -1);
	if (q && !(keep && fl_registered_in(L, s, lua_gettop(L)))) {
		lua_pushvalue(L, UP_CANCEL);
		fl_waitq_push(L, q, lua_gettop(L) - 1, s, lua_gettop(L), keep);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

#ifndef FL_FREC
/* Register the running fiber as a waiter: its fast-path suspension with
 * token 1 (and the value at vi for a put) in channel queue qn and in the
 * scope's (at sc) cancel queue.  Empties the stack; the caller yields. */
static int block(lua_State *L, struct chan *c, int kt, int sc, int qn, int vi)
{
	fl_push_current(L, UP_SCHED);
	int s = fl_fast_susp(L, UP_SCHED, lua_gettop(L));
	lua_pushvalue(L, s);
	lua_pushinteger(L, 1);
	if (vi)
		lua_pushvalue(L, vi);
	push_entry(L, c, 1, qn);
	fl_cancel_waiter(L, kt, sc, s, 1);
	lua_settop(L, 0);
	return 0;
}

/* The fast path of ch:get() / ch:put(v), shared by the C methods (Lua
 * 5.3+) and the C halves behind channel.lua's wrappers (older Luas). */
enum step { STEP_GENERAL, STEP_DONE, STEP_BLOCKED };

/* get: STEP_GENERAL (not a fiber of an ok scope), STEP_DONE (the value
 * on top) or STEP_BLOCKED (registered, stack empty: the caller yields). */
static enum step get_step(lua_State *L, struct chan *c)
{
	lua_settop(L, 1);
	lua_getiuservalue(L, UP_SCHED, UV_KEYS);        /* 2 */
	if (!fl_push_ok_scope(L, UP_SCHED, 2))          /* 3 scope */
		return STEP_GENERAL;
	if (try_get(L, lua_touserdata(L, UP_SCHED), c, 1))
		return STEP_DONE;
	if (!fl_can_block(L, UP_SCHED, 2))
		return STEP_GENERAL;
	block(L, c, 2, 3, 0, 0);
	return STEP_BLOCKED;
}

/* put: as get_step, STEP_DONE with nothing pushed. */
static enum step put_step(lua_State *L, struct chan *c)
{
	lua_settop(L, 2);
	lua_getiuservalue(L, UP_SCHED, UV_KEYS);        /* 3 */
	if (!fl_push_ok_scope(L, UP_SCHED, 3))          /* 4 scope */
		return STEP_GENERAL;
	if (try_put(L, lua_touserdata(L, UP_SCHED), c, 1, 2))
		return STEP_DONE;
	if (!fl_can_block(L, UP_SCHED, 3))
		return STEP_GENERAL;
	block(L, c, 3, 4, 1, 2);
	return STEP_BLOCKED;
}

#endif

#if LUA_VERSION_NUM < 503
/* get(ch) -> 1, v | 0 | (blocks) token, values... */
static int c_get(lua_State *L)
{
	switch (get_step(L, check_chan(L, 1))) {
	case STEP_GENERAL:
		lua_pushinteger(L, 0);
		return 1;
	case STEP_DONE:
		lua_pushinteger(L, 1);
		lua_insert(L, -2);
		return 2;
	default:
		return lua_yield(L, 0);
	}
}

/* put(ch, v) -> 1 | 0 | (blocks) token, values... */
static int c_put(lua_State *L)
{
	switch (put_step(L, check_chan(L, 1))) {
	case STEP_GENERAL:
		lua_pushinteger(L, 0);
		return 1;
	case STEP_DONE:
		lua_pushinteger(L, 1);
		return 1;
	default:
		return lua_yield(L, 0);
	}
}
#endif

#if LUA_VERSION_NUM >= 503
/* Continuation of get_method/put_method after blocking: the stack holds
 * the resume values (token, values...).  Token 1: the channel completed
 * the wait (get returns the value); CANCEL (with the scope): raise as
 * fibers.perform does. */
static int woken_k(lua_State *L, int status, lua_KContext is_get)
{
	(void)status;
	if (lua_type(L, 1) == LUA_TNUMBER && lua_tointeger(L, 1) == 1) {
		if (!is_get)
			return 0;
		lua_settop(L, 2);
		return 1;
	}
	if (lua_rawequal(L, 1, UP_CANCEL) && lua_type(L, 2) == LUA_TTABLE) {
		lua_getfield(L, 2, "_raise");
		lua_pushvalue(L, 2);
		lua_call(L, 1, 0);
	}
	return luaL_error(L, "channel: unexpected wake-up token %s", luaL_typename(L, 1));
}


/* Not a fiber of an ok scope: the general Lua path (set_channel_class),
 * called with the channel (and value) at 1..nargs. */
static int general(lua_State *L, int uv, int nargs)
{
	lua_settop(L, nargs);
	lua_getiuservalue(L, UP_SCHED, uv);
	lua_insert(L, 1);
	return fl_call_ret(L, nargs, 0);
}

#ifdef FL_FREC
/* Lua 5.4: the fast paths on fiber records (lfrec.c). */

struct frec *fl_frec_note_ok(lua_State *L, struct sched *s)
{
	struct frec *r = fl_frec_of(s, L);
	if (!r && !s->lazy) {
		int top = lua_gettop(L);
		if (fl_push_cur(L, UP_SCHED) == LUA_TTABLE) {
			lua_getiuservalue(L, UP_SCHED, UV_KEYS);
			fl_getk(L, top + 1, top + 2, K_CO);
			if (lua_tothread(L, -1) == L)
				r = fl_frec_bind(L, UP_SCHED, top + 1);
		}
		lua_settop(L, top);
	}
	if (r)
		r->ok_epoch = s->epoch;
	return r;
}

/* No ready record: 1 if the running fiber is one of an ok scope (the
 * table fields read; the record of the running coroutine, bound now if
 * it has none, then caches that: fl_frec_note_ok).  Leaves the stack as
 * it was. */
static int slow_ok(lua_State *L, struct sched *s)
{
	int top = lua_gettop(L);
	lua_getiuservalue(L, UP_SCHED, UV_KEYS);
	int ok = fl_push_ok_scope(L, UP_SCHED, top + 1);
	lua_settop(L, top);
	if (ok)
		fl_frec_note_ok(L, s);
	return ok;
}

/* The running fiber's record (r, or NULL if not ready), made ready to
 * block: bound, registered with CANCEL in its scope's cancel queue,
 * ok_epoch current.  NULL if the running coroutine is not the fiber's
 * own (a coroutine nested in it) or cannot yield: the general path,
 * which raises.  Only once the
 * scope was found ok.  Leaves the stack as it was. */
static struct frec *ready_to_block(lua_State *L, struct sched *s, struct frec *r)
{
	if (!lua_isyieldable(L))
		return NULL;
	if (r && r->co == L && r->reg_q && r->reg_epoch == s->epoch)
		return r;                       /* registered with its scope */
	int top = lua_gettop(L), kt = top + 1, sc = top + 2, fi = top + 3;
	lua_getiuservalue(L, UP_SCHED, UV_KEYS);
	if (!fl_push_ok_scope(L, UP_SCHED, kt)) {
		lua_settop(L, top);
		return NULL;
	}
	fl_push_current(L, UP_SCHED);
	fl_getk(L, fi, kt, K_CO);
	if (lua_tothread(L, -1) != L) {
		lua_settop(L, top);
		return NULL;
	}
	lua_pop(L, 1);
	r = fl_frec_bind(L, UP_SCHED, fi);
	fl_getk(L, sc, kt, K_CW);
	struct waitq *q = fl_towaitq(L, -1);
	if (q && r->reg_q != q) {
		lua_pushthread(L);
		lua_pushvalue(L, UP_CANCEL);
		fl_waitq_push(L, q, fi + 1, fi + 2, fi + 3, 0);
		r->reg_q = q;
	}
	r->ok_epoch = r->reg_epoch = s->epoch;
	lua_settop(L, top);
	return r;
}

/* Start block r->gen of the running fiber (record r). */
static void frec_arm(struct sched *s, struct frec *r)
{
	r->gen = ++s->gen_next;
	r->waiting = 1;
}

/* Block the running fiber (record r) in queue qn of the channel at 1.
 * Leaves the stack empty (a get) or holding just the value (a put, at
 * 2: a getter takes it from there); the caller yields. */
static void frec_block(lua_State *L, struct sched *s, struct frec *r, struct chan *c, int qn)
{
	frec_arm(s, r);
	push_frec_entry(L, s, c, 1, qn, r);
	if (qn) {
		lua_settop(L, 2);
		lua_replace(L, 1);
	} else {
		lua_settop(L, 0);
	}
}

/* Continuation of a blocked ch:get: a hand-off left the value alone on
 * the stack (r->handoff); anything else, the resume values. */
static int get_woken_k(lua_State *L, int status, lua_KContext ctx)
{
	struct frec *r = fl_frec_of(lua_touserdata(L, UP_SCHED), L);
	if (r && r->handoff) {
		r->handoff = 0;
		return 1;
	}
	return woken_k(L, status, ctx);
}

/* Continuation of a blocked ch:put: done if a getter took the value
 * (r->handoff); else the resume values (token, values...) are the top
 * r->nv values, above the value. */
static int put_woken_k(lua_State *L, int status, lua_KContext ctx)
{
	struct frec *r = fl_frec_of(lua_touserdata(L, UP_SCHED), L);
	if (r && r->handoff) {
		r->handoff = 0;
		return 0;
	}
	int base = r ? lua_gettop(L) - r->nv : 0;
	if (base > 0) {
		lua_rotate(L, 1, -base);        /* the resume values first */
		lua_settop(L, r->nv);
	}
	return woken_k(L, status, ctx);
}

/* ch:get() on Lua 5.4. */
static int get_method(lua_State *L)
{
	struct chan *c = check_chan(L, 1);
	struct sched *s = c->s;
	if (lua_gettop(L) != 1)
		lua_settop(L, 1);
	struct frec *r = fl_frec_ready(L, s);
	if (!r && !slow_ok(L, s))
		return general(L, UV_CHAN_GET, 1);
	if (try_get(L, s, c, 1))
		return 1;
	if (!(r = ready_to_block(L, s, r)))
		return general(L, UV_CHAN_GET, 1);
	frec_block(L, s, r, c, 0);
	return lua_yieldk(L, 0, 1, get_woken_k);
}

/* ch:put(v) on Lua 5.4. */
static int put_method(lua_State *L)
{
	struct chan *c = check_chan(L, 1);
	struct sched *s = c->s;
	if (lua_gettop(L) != 2)
		lua_settop(L, 2);
	struct frec *r = fl_frec_ready(L, s);
	if (!r && !slow_ok(L, s))
		return general(L, UV_CHAN_PUT, 2);
	if (try_put(L, s, c, 1, 2))
		return 0;
	if (!(r = ready_to_block(L, s, r)))
		return general(L, UV_CHAN_PUT, 2);
	frec_block(L, s, r, c, 1);
	return lua_yieldk(L, 0, 0, put_woken_k);
}
#else
/* ch:get() on Lua 5.3+: the whole fast path in C, the Lua wrapper gone. */
static int get_method(lua_State *L)
{
	switch (get_step(L, check_chan(L, 1))) {
	case STEP_GENERAL:
		return general(L, UV_CHAN_GET, 1);
	case STEP_DONE:
		return 1;
	default:
		return lua_yieldk(L, 0, 1, woken_k);
	}
}

/* ch:put(v) on Lua 5.3+. */
static int put_method(lua_State *L)
{
	switch (put_step(L, check_chan(L, 1))) {
	case STEP_GENERAL:
		return general(L, UV_CHAN_PUT, 2);
	case STEP_DONE:
		return 0;
	default:
		return lua_yieldk(L, 0, 0, woken_k);
	}
}
#endif
#endif

/* buffered(ch) -> number of values buffered */
static int c_buffered(lua_State *L)
{
	struct chan *c = check_chan(L, 1);
	lua_pushinteger(L, c->bt - c->bh + 1);
	return 1;
}

/* capacity(ch) -> the size given to new() */
static int c_capacity(lua_State *L)
{
	struct chan *c = check_chan(L, 1);
	if (c->size == HUGE_VAL || c->size != floor(c->size))
		lua_pushnumber(L, c->size);
	else
		lua_pushinteger(L, (lua_Integer)c->size);
	return 1;
}

/* op(ch) -> the cached get op, or nil */
static int c_op(lua_State *L)
{
	check_chan(L, 1);
	lua_getiuservalue(L, 1, UV_OP);
	return 1;
}

/* set_op(ch, op): cache the get op in the channel */
static int c_set_op(lua_State *L)
{
	check_chan(L, 1);
	lua_settop(L, 2);
	lua_setiuservalue(L, 1, UV_OP);
	return 0;
}

static int c_sleep_block(lua_State *L);
static int c_set_channel_class(lua_State *L);

/* invalidate(): a scope turned not ok or a fiber changed scope (called by
 * scope.lua and exec.lua): fiber records check their scope again. */
static int c_invalidate(lua_State *L)
{
#ifdef FL_FREC
	struct sched *s = lua_touserdata(L, UP_SCHED);
	if (++s->epoch == 0)
		s->epoch = 1;
#else
	(void)L;
#endif
	return 0;
}

static const luaL_Reg chan_funcs[] = {
	{ "op", c_op },
	{ "set_op", c_set_op },
	{ "new", c_new },
	{ "try_put", c_try_put },
	{ "try_get", c_try_get },
	{ "block_put", c_block_put },
	{ "block_get", c_block_get },
#if LUA_VERSION_NUM < 503
	{ "put", c_put },
	{ "get", c_get },
#endif
	{ "buffered", c_buffered },
	{ "capacity", c_capacity },
	{ "sleep_block", c_sleep_block },
	{ "get_try", fl_op_get_try },
	{ "try_dt", fl_sleep_try_dt },
	{ "make_choice", fl_make_choice },
#if LUA_VERSION_NUM >= 503
	{ "make_perform", fl_make_perform },
#endif
	{ "set_channel_class", c_set_channel_class },
	{ "invalidate", c_invalidate },
	{ NULL, NULL },
};

/* sleep_block(dt) -> false | true | handle: the fast half of
 * fibers.sleep.sleep(dt) (dt a number, not NaN, checked by the caller).
 * false: not a fiber of an ok scope (take the general perform); true:
 * dt <= 0, ready at once; else the running fiber is registered - a new
 * suspension as the task of a timer due at now + dt (none for an
 * infinite dt: handle -1) and in the scope's cancel queue - and the
 * caller yields; the timer completes the suspension with token 1 (see
 * fl_susp_fire), the scope with CANCEL, and the caller cancels the
 * timer when woken by anything else. */
#ifdef FL_FREC
static int c_sleep_block(lua_State *L)
{
	double dt = lua_tonumber(L, 1);
	lua_settop(L, 1);
	struct sched *s = lua_touserdata(L, UP_SCHED);
	struct frec *r = fl_frec_ready(L, s);
	if (!r && !slow_ok(L, s)) {
		lua_pushboolean(L, 0);
		return 1;
	}
	if (dt <= 0) {
		lua_pushboolean(L, 1);
		return 1;
	}
	if (!(r = ready_to_block(L, s, r))) {
		lua_pushboolean(L, 0);
		return 1;
	}
	frec_arm(s, r);
	lua_Integer h = -1;
	if (dt != HUGE_VAL) {
		r->sleep_gen = r->gen;
		lua_pushthread(L);
		h = fl_sched_timer(L, s, UP_SCHED, core_monotime() + dt);
	}
	lua_pushinteger(L, h);
	return 1;
}
#else
static int c_sleep_block(lua_State *L)
{
	double dt = lua_tonumber(L, 1);
	lua_settop(L, 1);
	lua_pushvalue(L, UP_SCHED);                     /* 2 */
	lua_getiuservalue(L, 2, UV_KEYS);               /* 3 */
	if (!fl_push_ok_scope(L, 2, 3)) {               /* 4 scope */
		lua_pushboolean(L, 0);
		return 1;
	}
	if (dt <= 0) {
		lua_pushboolean(L, 1);
		return 1;
	}
	if (!fl_can_block(L, 2, 3)) {
		lua_pushboolean(L, 0);
		return 1;
	}
	fl_push_current(L, 2);                          /* 5 fiber */
	int s = fl_fast_susp(L, 2, 5);
	lua_Integer h = -1;
	if (dt != HUGE_VAL) {
		lua_pushvalue(L, s);
		h = fl_sched_timer(L, lua_touserdata(L, 2), 2, core_monotime() + dt);
	}
	fl_cancel_waiter(L, 3, 4, s, 1);
	lua_pushinteger(L, h);
	return 1;
}
#endif

/* set_channel_class(mt, get, put) -> get_method, put_method | nothing:
 * the metatable of new channels and the general Lua forms of ch:get()
 * and ch:put(v) (a perform); on Lua 5.3+ returns C methods that do the
 * fast path themselves and fall back to those. */
static int c_set_channel_class(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	luaL_checktype(L, 3, LUA_TFUNCTION);
	lua_settop(L, 3);
	lua_setiuservalue(L, UP_SCHED, UV_CHAN_PUT);
	lua_setiuservalue(L, UP_SCHED, UV_CHAN_GET);
	lua_setiuservalue(L, UP_SCHED, UV_CHAN_MT);
#if LUA_VERSION_NUM >= 503
	for (int i = 0; i < 2; i++) {
		for (int k = 1; k <= 3; k++)
			lua_pushvalue(L, lua_upvalueindex(k));
		lua_pushcclosure(L, i ? put_method : get_method, 3);
	}
	return 2;
#else
	return 0;
#endif
}

/* sched:_fast(Susp, CANCEL) -> table of the channel and sleep functions
 * (the scheduler and these two are their upvalues). */
int fl_sched_fast(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TUSERDATA);
	luaL_checktype(L, 2, LUA_TTABLE);
	luaL_checkany(L, 3);
	lua_settop(L, 3);
	struct sched *s = lua_touserdata(L, 1);
	lua_pushvalue(L, 2);
	lua_setiuservalue(L, 1, UV_SUSP_MT);
	s->susp_mt = lua_topointer(L, 2);
	lua_createtable(L, 0, 1);
	lua_pushliteral(L, "fibers.waitq");
	lua_setfield(L, -2, "__name");
	s->waitq_mt = lua_topointer(L, -1);
	lua_setiuservalue(L, 1, UV_WAITQ_MT);
	lua_newtable(L);
	lua_insert(L, 1);
	for (int i = 0; i < 4; i++)
		lua_pushvalue(L, 1 + i);                /* table, sched, Susp, CANCEL */
	luaL_setfuncs(L, fl_wait_funcs, 3);
	lua_pop(L, 1);
	luaL_setfuncs(L, chan_funcs, 3);
	return 1;
}
