/*
 * loop_tap.h - minimal TAP helpers for the scheduler-core unit tests
 * (tests/unit/timer.c, poller.c, loop.c, signal.c): ok/is_int and a plan
 * printed by done_testing().
 */
#ifndef FIBERS_LOOP_TAP_H
#define FIBERS_LOOP_TAP_H

#include <stdio.h>

static int t_n, t_failed;

#define ok(cond, ...)                                               \
	do {                                                        \
		int c_ = (cond) ? 1 : 0;                            \
		printf("%sok %d - ", c_ ? "" : "not ", ++t_n);      \
		printf(__VA_ARGS__);                                \
		printf("\n");                                       \
		if (!c_) {                                          \
			t_failed++;                                 \
			printf("# at %s:%d\n", __FILE__, __LINE__); \
		}                                                   \
		fflush(stdout);                                     \
	} while (0)

#define is_int(got, exp, ...)                                                \
	do {                                                                 \
		long long g_ = (long long)(got), e_ = (long long)(exp);      \
		ok(g_ == e_, __VA_ARGS__);                                   \
		if (g_ != e_)                                                \
			printf("#      got: %lld\n# expected: %lld\n", g_, e_); \
	} while (0)

static inline int done_testing(void)
{
	printf("1..%d\n", t_n);
	return t_failed ? 1 : 0;
}

#endif
