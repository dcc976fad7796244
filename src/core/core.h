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

/* Monotonic clock in seconds (CLOCK_MONOTONIC), a fresh read. */
double core_monotime(void);
/* Wall clock in seconds (CLOCK_REALTIME), a fresh read. */
double core_realtime(void);

#endif
