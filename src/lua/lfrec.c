/*
 * lfrec.c - fiber records (Lua 5.4): the state of the fast paths of
 * ch:get/ch:put and sleep in C structs, so that a channel hand-off reads
 * no Lua table field (doc/decisions.md, "Fiber records").
 *
 * A coroutine running a fiber of a scope that blocked in a fast path has
 * a record (struct frec) in its scheduler's array s->frecs; the
 * coroutine's extra space (lua_getextraspace) holds the record's index,
 * and the record holds the coroutine back (r->co), which validates the
 * index - a coroutine the runtime did not bind (a nested coroutine, whose
 * extra space is a copy of the main thread's) has no record.  UV_FIBERS
 * holds the fiber (and through fiber.co its coroutine) at the record's
 * index from the fiber's first fast block until it finishes, or until
 * sched:clear() (fibers.run's teardown) drops every record: a bound
 * fiber stays alive that long, as a blocked fiber is kept by its scope's
 * cancel queue anyway.  So queues may name a record by its index:
 *   - a channel queue entry is (index, block number r->gen) in the
 *     queue's C ring, or the coroutine in its table part, live while the
 *     record waits in that slot (r->wq, r->wpos; lchan.c);
 *   - the scope's cancel queue entry (co, CANCEL) is live while the
 *     record waits and r->reg_q is that queue; it stays registered
 *     between blocks (one entry per fiber however often it blocks);
 *   - a sleep's timer task is co: it completes block sleep_gen;
 *   - a completed record takes the next run-queue position, its table
 *     slot left unwritten (struct sched.rr), and is resumed with the
 *     r->nv values that the completion pushed onto co's stack (token,
 *     values...; a channel hand-off: just a get's value, r->handoff).
 * s->frecs may move when a record is made (a fiber runs in between):
 * keep indices, not pointers, across anything that runs Lua code.
 * Completing a record is Susp:complete for it: it stops waiting, the
 * token and values go onto the coroutine's stack and the record is
 * queued; nothing runs synchronously.
 *
 * r->ok_epoch == s->epoch says the fiber's scope was ok when last
 * checked and nothing that could change that happened since: the
 * epoch is bumped (invalidate, from scope.lua) whenever a scope turns
 * not ok or a fiber changes scope.
 */
#include <stdlib.h>
#include <string.h>

#include "lbind.h"
#include "lsched.h"

#ifdef FL_FREC

_Static_assert(LUA_EXTRASPACE >= sizeof(unsigned), "extra space holds a record index");

static void set_index(lua_State *co, unsigned i)
{
	memcpy(lua_getextraspace(co), &i, sizeof i);
}

void fl_frec_clear_space(lua_State *co)
{
	set_index(co, 0);
}

/* Free slot i (its coroutine is unbound or gone). */
static void free_slot(struct sched *s, unsigned i)
{
	struct frec *r = &s->frecs[i];
	r->co = NULL;
	r->waiting = r->queued = 0;
	r->reg_q = NULL;
	r->next_free = s->free_frec;
	s->free_frec = i;
}

static unsigned alloc_slot(lua_State *L, struct sched *s)
{
	unsigned i = s->free_frec;
	if (i) {
		s->free_frec = s->frecs[i].next_free;
	} else {
		if (s->nfrec == 0)
			s->nfrec = 1;           /* slot 0: no record */
		if (s->nfrec >= s->capfrec) {
			unsigned cap = s->capfrec ? 2 * s->capfrec : 64;
			struct frec *a = realloc(s->frecs, cap * sizeof *a);
			if (!a)
				luaL_error(L, "fibers: out of memory");
			s->frecs = a;
			s->capfrec = cap;
		}
		i = s->nfrec++;
	}
	memset(&s->frecs[i], 0, sizeof s->frecs[i]);
	return i;
}

struct frec *fl_frec_bind(lua_State *L, int si, int fi)
{
	struct sched *s = lua_touserdata(L, si);
	struct frec *r = fl_frec_of(s, L);
	if (r)
		return r;
	unsigned i = alloc_slot(L, s);
	r = &s->frecs[i];
	r->co = L;
	set_index(L, i);
	lua_getiuservalue(L, si, UV_FIBERS);
	lua_pushvalue(L, fi);
	lua_rawseti(L, -2, i);
	lua_pop(L, 1);
	return r;
}

void fl_frec_release(lua_State *L, int si, lua_State *co)
{
	struct sched *s = lua_touserdata(L, si);
	struct frec *r = fl_frec_of(s, co);
	if (!r)
		return;
	unsigned i = (unsigned)(r - s->frecs);
	lua_getiuservalue(L, si, UV_FIBERS);
	lua_pushnil(L);
	lua_rawseti(L, -2, i);
	lua_pop(L, 1);
	free_slot(s, i);
	set_index(co, 0);
}

/* Queue record r for the next turn: it takes the next position of the
 * queue, whose table slot stays unwritten (struct sched.rr). */
static void queue(lua_State *L, struct sched *s, struct frec *r)
{
	struct fl_rqrecs *f = &s->rr[s->nextq - UV_QA];
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 64;
		void *e = realloc(f->e, cap * sizeof f->e[0]);
		if (!e)
			luaL_error(L, "fibers: out of memory");
		f->e = e;
		f->cap = cap;
	}
	f->e[f->n].pos = ++s->next_n;
	f->e[f->n].idx = (unsigned)(r - s->frecs);
	f->n++;
	r->queued = 1;
}

void fl_frec_complete(lua_State *L, int si, struct frec *r, int first, int n)
{
	lua_State *co = r->co;
	r->waiting = 0;
	if (!lua_checkstack(co, n + LUA_MINSTACK))
		luaL_error(L, "fibers: too many resume values");
	for (int i = 0; i < n; i++)
		lua_pushvalue(L, first + i);
	lua_xmove(L, co, n);
	r->nv = n;
	r->handoff = 0;
	queue(L, lua_touserdata(L, si), r);
}

void fl_frec_wake(lua_State *L, struct sched *s, struct frec *r, int vi)
{
	r->waiting = 0;
	if (vi) {
		if (!lua_checkstack(r->co, 1))
			luaL_error(L, "fibers: stack overflow");
		lua_pushvalue(L, vi);
		lua_xmove(L, r->co, 1);
	}
	r->nv = vi ? 1 : 0;
	r->handoff = 1;
	queue(L, s, r);
}

void fl_frec_run(lua_State *L, struct sched *s, int si, int kt, struct frec *r, int timer)
{
	lua_State *co = r->co;
	if (!co)
		return;                 /* released since (sched:clear) */
	if (r->queued) {
		r->queued = 0;
	} else if (timer && r->waiting && r->sleep_gen == r->gen) {
		/* its sleep's timer fired: complete with token 1, run now */
		r->waiting = 0;
		lua_pushinteger(co, 1);
		r->nv = 1;
		r->handoff = 0;
	} else {
		return;                 /* stale: a timer of a finished wait */
	}
	fl_frec_resume(L, s, si, kt, r);
}

void fl_frec_reset_all(lua_State *L, struct sched *s, int si)
{
	unsigned cur = s->cur_rec;      /* (called from a fiber: it stays) */
	for (unsigned i = 1; i < s->nfrec; i++)
		if (s->frecs[i].co && i != cur)
			free_slot(s, i);
	for (int k = 0; k < 2; k++)
		s->rr[k].n = s->rr[k].head = 0;
	if (!cur) {             /* the array keeps no high-water mark past this */
		free(s->frecs);
		s->frecs = NULL;
		s->nfrec = s->capfrec = s->free_frec = 0;
	}
	lua_newtable(L);
	if (cur) {
		lua_getiuservalue(L, si, UV_FIBERS);
		lua_rawgeti(L, -1, cur);
		lua_rawseti(L, -3, cur);
		lua_pop(L, 1);
	}
	lua_setiuservalue(L, si, UV_FIBERS);
}

void fl_frec_free_all(struct sched *s)
{
	for (int k = 0; k < 2; k++) {
		free(s->rr[k].e);
		memset(&s->rr[k], 0, sizeof s->rr[k]);
	}
	free(s->frecs);
	s->frecs = NULL;
	s->nfrec = s->capfrec = s->free_frec = 0;
}

#endif
