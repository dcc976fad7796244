/*
 * tests/unit/timer.c - the timer heap: ordering (deadline, then insertion),
 * due popping, O(log n) cancel from anywhere in the heap, stale handles,
 * slot reuse without growth, and a randomised check against a reference.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "timer.h"

static void basics(void)
{
	struct timer_heap t;
	uint64_t ha, hb, hc, hd, h;
	double d;
	timer_init(&t);
	is_int(timer_next(&t, &d), ENOENT, "empty heap has no next deadline");
	is_int(timer_pop_due(&t, 1e9, &h), 0, "nothing to pop from an empty heap");
	timer_add(&t, 3.0, &ha);
	timer_add(&t, 1.0, &hb);
	timer_add(&t, 2.0, &hc);
	timer_add(&t, 1.0, &hd);
	is_int(timer_count(&t), 4, "four timers armed");
	ok(timer_next(&t, &d) == 0 && d == 1.0, "next deadline is the earliest");
	is_int(timer_pop_due(&t, 0.5, &h), 0, "nothing due before the earliest deadline");
	ok(timer_pop_due(&t, 1.0, &h) == 1 && h == hb, "due at exactly its deadline (<=)");
	ok(timer_pop_due(&t, 1.0, &h) == 1 && h == hd, "equal deadlines pop in insertion order");
	is_int(timer_pop_due(&t, 1.0, &h), 0, "the 2.0 timer is not due at 1.0");
	is_int(timer_cancel(&t, hb), ENOENT, "a popped handle is stale");
	is_int(timer_cancel(&t, hc), 0, "cancel a pending timer");
	is_int(timer_cancel(&t, hc), ENOENT, "cancel is idempotent");
	ok(timer_pop_due(&t, 10, &h) == 1 && h == ha, "cancelled timer skipped");
	is_int(timer_count(&t), 0, "heap empty");
	is_int(timer_cancel(&t, 0), ENOENT, "handle 0 is never valid");
	is_int(timer_cancel(&t, (uint64_t)1 << 40), ENOENT, "garbage handle is harmless");

	/* slot reuse: a new timer reuses the slot but not the handle */
	uint64_t h2;
	timer_add(&t, 5.0, &h2);
	ok(TIMER_SLOT(h2) == TIMER_SLOT(ha) || TIMER_SLOT(h2) == TIMER_SLOT(hc) ||
	   TIMER_SLOT(h2) == TIMER_SLOT(hb) || TIMER_SLOT(h2) == TIMER_SLOT(hd),
	   "slots are reused");
	ok(h2 != ha && h2 != hb && h2 != hc && h2 != hd, "a reused slot gets a new handle");
	is_int(timer_cancel(&t, ha), ENOENT, "old handle of a reused slot stays stale");
	is_int(timer_count(&t), 1, "and did not cancel the new timer");
	ok(h2 < ((uint64_t)1 << 53), "handles fit in a double");
	timer_clear(&t);
	is_int(timer_count(&t), 0, "clear disarms everything");
	is_int(timer_cancel(&t, h2), ENOENT, "handles are stale after clear");
	timer_fini(&t);
}

static void no_growth(void)
{
	struct timer_heap t;
	uint64_t hs[1000];
	timer_init(&t);
	for (int i = 0; i < 1000; i++)
		timer_add(&t, (double)(i % 7), &hs[i]);
	size_t cap = t.cap;
	struct timer_ent *heap = t.heap;
	for (int round = 0; round < 100; round++) {
		for (int i = 0; i < 1000; i += 2)
			timer_cancel(&t, hs[i]);
		for (int i = 0; i < 1000; i += 2)
			timer_add(&t, (double)round, &hs[i]);
	}
	ok(t.cap == cap && t.heap == heap, "steady add/cancel does not grow or move the arrays");
	timer_fini(&t);
}

/* Randomised: compare against a brute-force list. */
static void randomised(void)
{
	enum { N = 5000 };
	struct timer_heap t;
	static uint64_t handle[N];
	static double dl[N];
	static int live[N];
	int bad = 0, popped = 0;
	uint64_t h;
	timer_init(&t);
	srand(12345);
	for (int i = 0; i < N; i++) {
		dl[i] = (double)(rand() % 1000);
		timer_add(&t, dl[i], &handle[i]);
		live[i] = 1;
	}
	for (int i = 0; i < N; i += 3) {
		if (timer_cancel(&t, handle[i]) != 0)
			bad++;
		live[i] = 0;
	}
	double last = -1;
	uint64_t lastseq_idx = 0;
	(void)lastseq_idx;
	while (timer_pop_due(&t, 1e9, &h)) {
		int idx = -1;
		for (int i = 0; i < N; i++)
			if (live[i] && handle[i] == h) {
				idx = i;
				break;
			}
		if (idx < 0 || dl[idx] < last) {
			bad++;
			break;
		}
		last = dl[idx];
		live[idx] = 0;
		popped++;
	}
	is_int(bad, 0, "random adds/cancels pop in deadline order, cancelled ones never");
	is_int(popped, N - (N + 2) / 3, "every live timer popped exactly once");
	timer_fini(&t);
}

int main(void)
{
	basics();
	no_growth();
	randomised();
	return done_testing();
}
