/*
 * timer.c - the timer heap: a binary min-heap keyed by (deadline, seq) whose
 * entries know their slot, plus a slot table (slot -> heap position and
 * generation) so that cancel is O(log n) and stale handles are harmless.
 * No clock reads and no policy here: the loop decides what "now" is.
 */
#include <errno.h>
#include <stdlib.h>

#include "timer.h"

#define TIMER_FREE UINT32_MAX
#define GEN_MASK   (((uint32_t)1 << TIMER_GEN_BITS) - 1)

void timer_init(struct timer_heap *t)
{
	t->heap = NULL;
	t->pos = NULL;
	t->gen = NULL;
	t->freelist = NULL;
	t->n = t->nfree = t->nslots = t->cap = 0;
	t->seq = 0;
}

void timer_fini(struct timer_heap *t)
{
	free(t->heap);
	free(t->pos);
	free(t->gen);
	free(t->freelist);
	timer_init(t);
}

static int grow(struct timer_heap *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 64;
	if (ncap > TIMER_MAX_SLOTS)
		ncap = TIMER_MAX_SLOTS;
	if (ncap <= t->cap)
		return ENOSPC;
	struct timer_ent *h = realloc(t->heap, ncap * sizeof *h);
	if (!h)
		return ENOMEM;
	t->heap = h;
	uint32_t *p = realloc(t->pos, ncap * sizeof *p);
	if (!p)
		return ENOMEM;
	t->pos = p;
	uint32_t *g = realloc(t->gen, ncap * sizeof *g);
	if (!g)
		return ENOMEM;
	t->gen = g;
	uint32_t *f = realloc(t->freelist, ncap * sizeof *f);
	if (!f)
		return ENOMEM;
	t->freelist = f;
	t->cap = ncap;
	return 0;
}

static int before(const struct timer_ent *a, const struct timer_ent *b)
{
	if (a->deadline != b->deadline)
		return a->deadline < b->deadline;
	return a->seq < b->seq;
}

static void place(struct timer_heap *t, size_t i, struct timer_ent e)
{
	t->heap[i] = e;
	t->pos[e.slot] = (uint32_t)i;
}

static void sift_up(struct timer_heap *t, size_t i)
{
	struct timer_ent e = t->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!before(&e, &t->heap[parent]))
			break;
		place(t, i, t->heap[parent]);
		i = parent;
	}
	place(t, i, e);
}

static void sift_down(struct timer_heap *t, size_t i)
{
	struct timer_ent e = t->heap[i];
	for (;;) {
		size_t l = 2 * i + 1, best;
		if (l >= t->n)
			break;
		best = l;
		if (l + 1 < t->n && before(&t->heap[l + 1], &t->heap[l]))
			best = l + 1;
		if (!before(&t->heap[best], &e))
			break;
		place(t, i, t->heap[best]);
		i = best;
	}
	place(t, i, e);
}

static void release_slot(struct timer_heap *t, uint32_t slot)
{
	t->pos[slot] = TIMER_FREE;
	t->gen[slot] = (t->gen[slot] + 1) & GEN_MASK;
	if (t->gen[slot] == 0)
		t->gen[slot] = 1;
	t->freelist[t->nfree++] = slot;
}

/* Remove the entry at heap index i, restoring the heap property. */
static void remove_at(struct timer_heap *t, size_t i)
{
	t->n--;
	if (i == t->n)
		return;
	place(t, i, t->heap[t->n]);
	if (i > 0 && before(&t->heap[i], &t->heap[(i - 1) / 2]))
		sift_up(t, i);
	else
		sift_down(t, i);
}

int timer_add(struct timer_heap *t, double deadline, uint64_t *handle)
{
	uint32_t slot;
	if (t->nfree > 0) {
		slot = t->freelist[--t->nfree];
	} else {
		if (t->nslots == t->cap) {
			int err = grow(t);
			if (err)
				return err;
		}
		slot = (uint32_t)t->nslots++;
		t->gen[slot] = 1;
	}
	struct timer_ent e = { deadline, t->seq++, slot };
	t->heap[t->n] = e;
	t->pos[slot] = (uint32_t)t->n;
	t->n++;
	sift_up(t, t->n - 1);
	*handle = ((uint64_t)t->gen[slot] << TIMER_SLOT_BITS) | slot;
	return 0;
}

int timer_cancel(struct timer_heap *t, uint64_t handle)
{
	uint32_t slot = TIMER_SLOT(handle);
	uint32_t gen = (uint32_t)(handle >> TIMER_SLOT_BITS);
	if (slot >= t->nslots || t->gen[slot] != gen || t->pos[slot] == TIMER_FREE)
		return ENOENT;
	size_t i = t->pos[slot];
	remove_at(t, i);
	release_slot(t, slot);
	return 0;
}

int timer_next(const struct timer_heap *t, double *deadline)
{
	if (t->n == 0)
		return ENOENT;
	*deadline = t->heap[0].deadline;
	return 0;
}

int timer_pop_due(struct timer_heap *t, double now, uint64_t *handle)
{
	if (t->n == 0 || !(t->heap[0].deadline <= now))
		return 0;
	uint32_t slot = t->heap[0].slot;
	*handle = ((uint64_t)t->gen[slot] << TIMER_SLOT_BITS) | slot;
	remove_at(t, 0);
	release_slot(t, slot);
	return 1;
}

size_t timer_count(const struct timer_heap *t)
{
	return t->n;
}

void timer_clear(struct timer_heap *t)
{
	while (t->n > 0) {
		uint32_t slot = t->heap[t->n - 1].slot;
		t->n--;
		release_slot(t, slot);
	}
}
