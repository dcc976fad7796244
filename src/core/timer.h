/*
 * timer.h - a binary min-heap of deadlines with O(log n) cancel by handle.
 *
 * Deadlines are doubles in seconds on CLOCK_MONOTONIC (the scheduler's
 * clock; see core_monotime()).  Entries with equal deadlines pop in the
 * order they were added.  A handle names one armed timer: it carries a slot
 * index and that slot's generation, so a handle whose timer already fired
 * or was cancelled is simply stale (cancel returns ENOENT, nothing else
 * happens).  Storage is a few growable arrays with a free list of slots:
 * once grown, adding and cancelling timers allocates nothing.
 */
#ifndef FIBERS_TIMER_H
#define FIBERS_TIMER_H

#include <stddef.h>
#include <stdint.h>

/* Handles are (generation << TIMER_SLOT_BITS) | slot and stay below 2^53,
 * so they survive a round trip through a Lua number on every version. */
#define TIMER_SLOT_BITS 26
#define TIMER_GEN_BITS  27
#define TIMER_MAX_SLOTS ((uint32_t)1 << TIMER_SLOT_BITS)
#define TIMER_SLOT(h)   ((uint32_t)((h) & (TIMER_MAX_SLOTS - 1)))

struct timer_ent {
	double deadline;
	uint64_t seq;           /* tie-break: insertion order */
	uint32_t slot;
};

struct timer_heap {
	struct timer_ent *heap; /* heap[0] is the earliest */
	size_t n;               /* armed timers */
	uint32_t *pos;          /* slot -> heap index, or TIMER_FREE */
	uint32_t *gen;          /* slot -> current generation (>= 1) */
	uint32_t *freelist;     /* stack of free slots */
	size_t nfree;
	size_t nslots;          /* slots ever handed out */
	size_t cap;             /* capacity of all arrays */
	uint64_t seq;
};

/* Initialise an empty heap (allocates nothing yet). */
void timer_init(struct timer_heap *t);
/* Free every array of the heap; the heap must be re-initialised to reuse. */
void timer_fini(struct timer_heap *t);
/* Arm a timer due at `deadline`; stores its handle.  0 or ENOMEM/ENOSPC. */
int timer_add(struct timer_heap *t, double deadline, uint64_t *handle);
/* Disarm the timer named by handle: 0, or ENOENT if stale/never armed. */
int timer_cancel(struct timer_heap *t, uint64_t handle);
/* Earliest deadline: 0 and *deadline set, or ENOENT when empty. */
int timer_next(const struct timer_heap *t, double *deadline);
/* Pop the earliest timer if its deadline <= now: returns 1 and its (now
 * stale) handle, else 0. */
int timer_pop_due(struct timer_heap *t, double now, uint64_t *handle);
/* Number of armed timers. */
size_t timer_count(const struct timer_heap *t);
/* Disarm every timer (all handles become stale); keeps the storage. */
void timer_clear(struct timer_heap *t);

#endif
