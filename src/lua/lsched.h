/*
 * lsched.h - private to the scheduler binding (lsched.c) and the fiber
 * runner (lfiber.c): the scheduler userdata and its user values.
 *
 * A scheduler is a full userdata (struct sched) with NUV user values:
 *   UV_QA, UV_QB   the two run-queue tables (array part only)
 *   UV_TIMERS      timer slot -> task     UV_FDS  fd-wait slot -> task
 *   UV_FIBER_MT    the metatable of fibers (runtime.lua's Fiber): queued
 *                  tasks with it are resumed by lfiber.c directly
 *   UV_CUR         the running fiber (nil outside fibers)
 *   UV_ENTER, UV_LEAVE   resume hooks (runtime.set_resume_hook)
 *   UV_EXIT        exit handler for fibers with an `_exit` field
 *   UV_UNSCOPED    handler for errors escaping other fibers
 *   UV_KEYS        the field names used from C, interned once (K_*):
 *                  pushing a literal key costs a string-cache lookup
 *   UV_POOL        coroutines of fibers that returned, for reuse by new
 *                  fibers (Lua 5.4; at most FL_POOL_MAX, struct sched.npool)
 *   UV_SUSP_MT     fibers.op's suspension metatable: a suspension queued
 *                  as a task (a C sleep's timer) completes itself with
 *                  token 1 when run (fl_susp_fire)
 *   UV_CHAN_MT     the metatable of channels (lchan.c)
 *   UV_WAITQ_MT    the metatable of wait queues (lwait.c)
 *   UV_CHAN_GET, UV_CHAN_PUT   the general (Lua) ch:get / ch:put
 *   UV_LAZY        the coroutine of the running lazy fiber (lfiber.c)
 *   UV_SPAWN       the general (Lua) Scope:spawn (lfiber.c f_scope_spawn)
 *   UV_SCACHE      slot -> the reusable fast-path suspension of the fiber
 *                  in struct sched.sc_fiber[slot] (lwait.c fl_fast_susp;
 *                  Lua 5.1-5.3)
 *   UV_FIBERS      fiber record index -> its fiber (lfrec.c; Lua 5.4),
 *                  which keeps the fiber while it is bound
 */
#ifndef FIBERS_LSCHED_H
#define FIBERS_LSCHED_H

#include <stddef.h>
#include <stdint.h>

#include "compat.h"

#define UV_QA        1
#define UV_QB        2
#define UV_TIMERS    3
#define UV_FDS       4
#define UV_FIBER_MT  5
#define UV_CUR       6
#define UV_ENTER     7
#define UV_LEAVE     8
#define UV_EXIT      9
#define UV_UNSCOPED  10
#define UV_KEYS      11
#define UV_POOL      12
#define UV_SUSP_MT   13
#define UV_CHAN_MT   14
#define UV_WAITQ_MT  15
#define UV_CHAN_GET  16
#define UV_CHAN_PUT  17
#define UV_LAZY      18
#define UV_SPAWN     19
#define UV_SCACHE    20
#define UV_FIBERS    21
#define NUV          21
#define FL_POOL_MAX  256
/* Slots of the fast-path suspension cache (a power of two). */
#define FL_SCACHE    64
/* A run queue that held more slots than this in a turn is replaced by a
 * new table after it (its array part would stay that large). */
#define FL_QUEUE_KEEP 4096

/* Indices into the UV_KEYS table, and their names (FL_KEY_NAMES). */
enum { K_CO = 1, K_N, K_1, K_2, K_3, K_V, K_DEAD, K_EXIT, K_SCOPE, K_STATUS,
       K_CW, K_TAG, K_F, K_NF, K_JS, K_CLOSED, K_K, K_FLAT, K_TRY, K_WF,
       K_CH, K_A, K_BLOCK, NKEYS = K_BLOCK };
#define FL_KEY_NAMES { "co", "_n", "_1", "_2", "_3", "_v", "dead", "_exit", \
		       "scope", "_status", "_cw", "tag", "_f", "_nf", "_js", "_closed", \
		       "k", "flat", "try", "wf", "ch", "a", "block" }

/* Push t[key k] (raw; t absolute, kt = the keys table); returns the type. */
static inline int fl_getk(lua_State *L, int t, int kt, int k)
{
	lua_rawgeti(L, kt, k);
	lua_rawget(L, t);
	return lua_type(L, -1);
}

/* t[key k] = the value on top of the stack (raw), popping it. */
static inline void fl_setk(lua_State *L, int t, int kt, int k)
{
	lua_rawgeti(L, kt, k);
	lua_insert(L, -2);
	lua_rawset(L, t);
}

struct loop;
struct frec;

#if LUA_VERSION_NUM >= 504
/* Fiber records (lfrec.c): the C half of ch:get/ch:put/sleep on Lua 5.4. */
#define FL_FREC 1
struct frec {
	lua_State *co;          /* its coroutine (NULL: a free slot) */
	lua_Integer gen;        /* the current block (numbered in the scheduler) */
	lua_Integer sleep_gen;  /* gen of the block that armed a timer */
	const void *reg_q;      /* the wait queue holding (co, CANCEL), or NULL */
	const void *wq;         /* the channel queue it waits in (lchan.c) */
	lua_Integer wpos;       /* and the slot of its entry there */
	unsigned ok_epoch;      /* == sched.epoch: the fiber's scope is ok */
	unsigned reg_epoch;     /* == sched.epoch: reg_q is that scope's */
	unsigned next_free;     /* free list link (a free slot) */
	int nv;                 /* queued: values waiting on co's stack */
	unsigned char waiting;  /* blocked in a fast path, not completed */
	unsigned char queued;   /* completed, in the run queue */
	unsigned char handoff;  /* completed by a channel hand-off: no token,
				 * just a get's value on its stack */
};
#endif

struct sched {
	struct loop *loop;
	int nextq;              /* UV_QA or UV_QB: queue for the next turn */
	lua_Integer next_n;
	int curq;               /* the queue being run */
	lua_Integer cur_i, cur_n;
	int in_turn;
	int stopping;
	int npool;              /* coroutines in UV_POOL */
	int has_enter, has_leave;       /* UV_ENTER / UV_LEAVE set */
	int lazy;               /* a lazy fiber runs: UV_CUR is its scope */
	unsigned rng;           /* xorshift state: choice start arms (lperform.c) */
#ifndef FL_FREC
	/* fl_fast_susp's direct-mapped cache: the fiber (lua_topointer) whose
	 * suspension is in UV_SCACHE[slot + 1]; anchored there through the
	 * suspension's x[1], so a pointer seen here is that fiber's. */
	const void *sc_fiber[FL_SCACHE];
#endif
	lua_Integer next_extra; /* next-turn queue slots that are not tasks
				 * (the 2 extra slots of each lazy record) */
	/* lua_topointer of the metatables in UV_FIBER_MT, UV_SUSP_MT and
	 * UV_WAITQ_MT (anchored there): identity checks without fetching the
	 * user value (channels are checked by size and first word). */
	const void *fiber_mt, *susp_mt, *waitq_mt;
#ifdef FL_FREC
	/* The fiber records queued in run queue UV_QA + k, in order: their
	 * positions in it (slots left unwritten in the table) and indices. */
	struct fl_rqrecs {
		struct { lua_Integer pos; unsigned idx; } *e;
		size_t n, head, cap;
	} rr[2];
	struct frec *frecs;     /* slots 1..nfrec - 1 (0: none) */
	unsigned cur_rec;       /* the running fiber is UV_FIBERS[cur_rec]
				 * (resumed by its record; UV_CUR not set) */
	unsigned nfrec, capfrec, free_frec;
	unsigned epoch;         /* bumped when a scope turns not ok or a fiber
				 * changes scope (fl_frec_invalidate) */
	lua_Integer gen_next;
#endif
};

/* True if the value at idx has the metatable whose pointer is mt. */
static inline int fl_has_mt(lua_State *L, int idx, const void *mt)
{
	if (!mt || !lua_getmetatable(L, idx))
		return 0;
	int ok = lua_topointer(L, -1) == mt;
	lua_pop(L, 1);
	return ok;
}

/* Pop the value on top of the stack into the next-turn queue of the
 * scheduler s at stack index si. */
void fl_sched_push(lua_State *L, struct sched *s, int si);

/* Run the fiber at index fi now with its pending resume values (the
 * scheduler's task interface); si is the scheduler's stack index, kt its
 * keys table's. */
void fl_fiber_run(lua_State *L, int si, int kt, int fi);

/* Schedule fiber fi with the n values at first..first+n-1 (fiber:resume);
 * si is the scheduler's index.  Raises on a double resume or a finished
 * fiber. */
void fl_fiber_resume(lua_State *L, int si, int kt, int fi, int first, int n);

/* Push the running fiber (nil outside fibers), making the table of a
 * running lazy fiber first. */
void fl_push_current(lua_State *L, int si);

/* Push UV_CUR as it stands - the running fiber, the scope of a running
 * lazy fiber, or nil - also for a fiber resumed by its record (Lua 5.4:
 * struct sched.cur_rec); returns its type. */
int fl_push_cur(lua_State *L, int si);

/* Push the running fiber's scope and return 1 if there is one and it is
 * ok (no _status); else push nothing and return 0.  A lazy fiber's table
 * is not made for this. */
int fl_push_ok_scope(lua_State *L, int si, int kt);

/* 1 if a perform may block here: L is the running fiber's own coroutine
 * (not one created inside the fiber) and can yield (Lua 5.3+: not across
 * a C call; PUC 5.1: no C frame, metamethod or iterator on its stack).
 * Else 0: the fast paths take the general form, which raises.  kt: the
 * keys (UV_KEYS) at an absolute index.  Leaves the stack as it was. */
int fl_can_block(lua_State *L, int si, int kt);

/* True if p is the light userdata marking a lazy fiber record in a run
 * queue: the marker, then the function and the scope (3 slots). */
int fl_is_lazy_marker(const void *p);

/* Run the lazy fiber record after slot i of queue q (its function and
 * scope; both slots cleared) now; marker is the record's first slot. */
void fl_lazy_run(lua_State *L, int si, int kt, int q, lua_Integer i, const void *marker);

struct waitq;

/* lwait.c: push a new waiting suspension { fiber at f, true } (si: the
 * scheduler); returns its index. */
int fl_new_susp(lua_State *L, int si, int f);

/* lwait.c: the reusable suspension of the running fiber at f for the C
 * fast paths (ch:get/ch:put, sleep: one registration each besides the
 * scope's cancel queue), re-armed (waiting) if it is idle - completed,
 * no cleanups - else a new one, kept in a 64-slot cache keyed by the
 * fiber (struct sched.sc_fiber, UV_SCACHE; no field on the fiber, whose
 * table stays at four hash slots); returns its index.  Safe to reuse
 * because those paths leave no live reference to it behind: the channel
 * or the timer consumed its entry, or its scope turned not ok (no fast
 * path again); its cancel-queue entry may stay (x[4], see
 * fl_cancel_waiter_once) and is right again for the next block. */
int fl_fast_susp(lua_State *L, int si, int f);

/* lwait.c: fiber fi finished: its cached fast-path suspension, if any,
 * leaves the cache and its cancel-queue entry becomes an ordinary stale
 * one (the next push may trim it). */
void fl_fast_susp_drop(lua_State *L, int si, int fi);

/* lwait.c: fiber fi is resumed by something else than its cached
 * fast-path suspension: that suspension stops waiting (its block is
 * over; its queue entries become stale). */
void fl_fast_susp_disarm(lua_State *L, int si, int fi);

/* lwait.c: Susp:complete for the waiting suspension at s, token at s + 1
 * and nv values after it; leaves the stack as it was. */
void fl_complete(lua_State *L, int si, int kt, int s, int nv);

/* lwait.c: true if the suspension at idx is still waiting (x[2]). */
int fl_waiting(lua_State *L, int idx);

/* lwait.c: the wait queue at idx or NULL (only in sched:_fast closures). */
struct waitq *fl_towaitq(lua_State *L, int idx);

/* lwait.c: append (suspension at s, token at tok) to the queue q at qi.
 * keep (a suspension from fl_fast_susp): mark it registered (x[4]), so
 * the entry stays between its fiber's blocks. */
void fl_waitq_push(lua_State *L, struct waitq *q, int qi, int s, int tok, int keep);

/* lwait.c: true if the fast-path suspension at idx still has its entry
 * in the wait queue at qi (its scope's cancel queue) from an earlier
 * block (x[4] is that queue; a fiber may have moved to another scope). */
int fl_registered_in(lua_State *L, int idx, int qi);

/* lwait.c: waitq, waitq_push, waitq_wake, waitq_len for sched:_fast(). */
extern const luaL_Reg fl_wait_funcs[];

#if LUA_VERSION_NUM >= 503
/* lperform.c: continuation returning the values above slot ctx, and a
 * call of the function below the nargs values on top whose results
 * (above slot base) are returned, also after a yield. */
int fl_ret_k(lua_State *L, int status, lua_KContext ctx);
int fl_call_ret(lua_State *L, int nargs, int base);
#endif

/* lchan.c: try a get on the channel at ci (a value, a channel checked by
 * the caller): 1 with the value pushed, or 0.  For closures whose first
 * upvalue is the scheduler (as every sched:_fast() function). */
int fl_chan_try_get(lua_State *L, int ci);

/* lchan.c: register the suspension at s with CANCEL in the cancel queue
 * of the scope at sc (fibers.op's protocol for scope-aware performs);
 * CANCEL is upvalue 3 of the calling closure (a sched:_fast() one).
 * keep: s comes from fl_fast_susp - nothing to do if it is still
 * registered in that queue (fl_registered_in), else it is marked so
 * (fl_waitq_push). */
void fl_cancel_waiter(lua_State *L, int kt, int sc, int s, int keep);

/* lchan.c: true if the value at idx is a channel. */
int fl_is_chan(lua_State *L, int idx);

/* lchan.c: try(op) of a channel's get op: ready, value (op.ch). */
int fl_op_get_try(lua_State *L);

/* lperform.c: try(op) of sleep_op(dt): op.a <= 0. */
int fl_sleep_try_dt(lua_State *L);

/* lperform.c: make_perform(Op, general, TASK_ERR) -> fibers.perform in
 * C (Lua 5.3+); a sched:_fast() function. */
int fl_make_perform(lua_State *L);

/* lperform.c: make_choice(Op, general) -> op.choice in C. */
int fl_make_choice(lua_State *L);

/* sched:_fast(Susp, CANCEL) -> the C channel and sleep functions. */
int fl_sched_fast(lua_State *L);

/* Add a timer due at t whose task is the value on top of the stack
 * (popped); returns its handle.  Raises if the timer cannot be added. */
lua_Integer fl_sched_timer(lua_State *L, struct sched *s, int si, double t);

/* Run the suspension at index sp as a task: if still waiting, complete
 * it with token 1 - resuming its fiber now when it is not scheduled yet
 * (a sleeper due at t has run when run(t) returns). */
void fl_susp_fire(lua_State *L, int si, int kt, int sp);

/* sched:_fibers(Fiber) -> table of the C fiber functions. */
int fl_sched_fibers(lua_State *L);

#ifdef FL_FREC
/* lfrec.c (see there).  The record of coroutine co, or NULL. */
static inline struct frec *fl_frec_of(struct sched *s, lua_State *co)
{
	unsigned i;
	memcpy(&i, lua_getextraspace(co), sizeof i);
	if (i == 0 || i >= s->nfrec || s->frecs[i].co != co)
		return NULL;
	return &s->frecs[i];
}

/* The running coroutine's record if its fiber may take a fast path with
 * no scope check: the scope was ok and nothing changed since. */
static inline struct frec *fl_frec_ready(lua_State *L, struct sched *s)
{
	struct frec *r = fl_frec_of(s, L);
	return r && r->ok_epoch == s->epoch ? r : NULL;
}

/* lchan.c: the running fiber's scope was just found ok: the running
 * coroutine's record caches that (ok_epoch), bound now if the coroutine
 * is its fiber's own and has none (not for a lazy fiber's first run).
 * Returns the record or NULL.  For sched:_fast() closures. */
struct frec *fl_frec_note_ok(lua_State *L, struct sched *s);

/* The record of the running coroutine L, whose fiber is at fi: made
 * (and the fiber kept in UV_FIBERS) if it has none. */
struct frec *fl_frec_bind(lua_State *L, int si, int fi);

/* A fiber finished on co: free its record. */
void fl_frec_release(lua_State *L, int si, lua_State *co);

/* Complete the waiting record r with the n values at first..
 * (token, values...): onto its stack, the record queued. */
void fl_frec_complete(lua_State *L, int si, struct frec *r, int first, int n);

/* Complete the waiting record r with token 1 and (vi != 0) the value at
 * vi: a channel hand-off. */
void fl_frec_wake(lua_State *L, struct sched *s, struct frec *r, int vi);

/* Run record r as a task: queued (completed) - resume it; else, for its
 * sleep's timer (timer), complete its sleep and resume it now. */
void fl_frec_run(lua_State *L, struct sched *s, int si, int kt, struct frec *r, int timer);

/* Zero the extra space of a coroutine made for a fiber. */
void fl_frec_clear_space(lua_State *co);

/* sched:clear(): every record is freed (UV_FIBERS emptied). */
void fl_frec_reset_all(lua_State *L, struct sched *s, int si);
void fl_frec_free_all(struct sched *s);

/* lfiber.c: resume the fiber of record r (kt: the keys table's index, or
 * 0 if not fetched): its coroutine has the r->nv resume values on top. */
void fl_frec_resume(lua_State *L, struct sched *sd, int si, int kt, struct frec *r);
#endif

#endif
