/*
 * core.h - the fibers runtime core: plain C, no Lua, no systemd, no config.
 *
 * Conventions for every src/core file:
 *   - functions return 0 on success or a positive errno value on failure
 *     (never -1 + errno), unless documented otherwise;
 *   - nothing here prints, exits, or aborts on bad input;
 *   - names carry their subsystem prefix (timer_, poller_, loop_, buf_,
 *     stream_, proc_, sig_).
 * Each subsystem has its own header; this one pulls in the shared basics.
 */
#ifndef FIBERS_CORE_H
#define FIBERS_CORE_H

#include <stddef.h>
#include <stdint.h>

/* The scheduler's clock in seconds: a fresh read of CLOCK_MONOTONIC, or
 * the virtual clock while it is on (see clock.c). */
double core_monotime(void);
/* CLOCK_MONOTONIC in seconds, a fresh read, whatever the virtual clock. */
double core_monotime_real(void);
/* Wall clock in seconds (CLOCK_REALTIME), a fresh read. */
double core_realtime(void);

/* The virtual clock: turn it on at `start` seconds, or off (on = 0). */
void core_vclock_set(int on, double start);
/* 1 while the virtual clock is on. */
int core_vclock_on(void);
/* Move the virtual clock forward to t (never backward). */
void core_vclock_advance(double t);

#endif
