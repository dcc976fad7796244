/*
 * clock.c - clock reads for the core.  CLOCK_MONOTONIC drives the scheduler
 * and timers; CLOCK_REALTIME is only for wall-clock alarms and log stamps.
 */
#include <time.h>

#include "core.h"

static double ts_to_s(const struct timespec *ts)
{
	return (double)ts->tv_sec + (double)ts->tv_nsec * 1e-9;
}

double core_monotime(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts_to_s(&ts);
}

double core_realtime(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts_to_s(&ts);
}
