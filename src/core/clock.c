/*
 * clock.c - clock reads for the core.  CLOCK_MONOTONIC drives the scheduler
 * and timers; CLOCK_REALTIME is only for wall-clock alarms and log stamps.
 *
 * The virtual clock (fibers.testing.run_virtual): while it is on,
 * core_monotime() returns a number that only the event loop moves - it
 * stands still while tasks run, advances by the real time spent waiting
 * for I/O, and jumps straight to the next timer when nothing else could
 * wake the loop (loop.c).  Every reader of the scheduler's clock (the turn
 * time, the deadlines of sleeps in Lua and in the C fast paths, alarms)
 * goes through core_monotime(), so all of them follow it.  There is one
 * such clock per process: it belongs to the scheduler that turned it on.
 */
#include <time.h>

#include "core.h"

static int vclock_on;
static double vclock_now;

static double ts_to_s(const struct timespec *ts)
{
	return (double)ts->tv_sec + (double)ts->tv_nsec * 1e-9;
}

double core_monotime_real(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts_to_s(&ts);
}

double core_monotime(void)
{
	if (__builtin_expect(vclock_on, 0))
		return vclock_now;
	return core_monotime_real();
}

double core_realtime(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts_to_s(&ts);
}

void core_vclock_set(int on, double start)
{
	vclock_on = on != 0;
	vclock_now = start;
}

int core_vclock_on(void)
{
	return vclock_on;
}

void core_vclock_advance(double t)
{
	if (t > vclock_now)
		vclock_now = t;
}
