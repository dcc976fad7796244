/*
 * loop.h - the event side of one scheduler turn: the timer heap, one-shot
 * fd waits on a poller, and the cached turn time.  The run queue itself is
 * not here (the Lua binding keeps the task values); the loop only tells
 * which waits fired, as (kind, slot) pairs, so that the caller can move the
 * task stored under that slot to its run queue.
 *
 * A turn, as the binding drives it:
 *   loop_poll(l, timeout_mode, ...)  wait for fd events (not at all, or
 *                                    until the next deadline, or forever),
 *                                    then advance timers to now;
 *   loop_fired(l, &n)                the waits that became ready, in order:
 *                                    fd waits first (by event, then by
 *                                    registration), then timers by deadline.
 */
#ifndef FIBERS_LOOP_H
#define FIBERS_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "poller.h"
#include "timer.h"

/* A fired entry: LOOP_FIRED_FD set for an fd wait, the rest is the slot. */
#define LOOP_FIRED_FD   0x80000000u
#define LOOP_FIRED_SLOT(x) ((x) & ~LOOP_FIRED_FD)

/* fd-wait handles use the same layout as timer handles. */
#define LOOP_SLOT(h)    TIMER_SLOT(h)

struct loop;

/* How loop_poll may wait for events. */
enum loop_wait {
	LOOP_NOWAIT,            /* look, do not sleep */
	LOOP_BLOCK,             /* sleep until an fd event or the next deadline */
};

/* Create a loop on the given poller backend (NULL = poller_default());
 * 0, EINVAL (bad FIBERS_POLLER), or an OS errno. */
int loop_new(struct loop **out, const struct poller_ops *ops);
/* Destroy the loop and its poller. */
void loop_free(struct loop *l);
/* Name of the poller backend in use ("epoll" or "poll"). */
const char *loop_backend(const struct loop *l);

/* The cached turn time (seconds, monotonic - or the virtual clock, see
 * clock.c - unless set synthetically):
 * read at the first call in a turn that had no timer to check. */
double loop_now(struct loop *l);

/* Arm a timer due at `deadline`; 0 and *handle, or errno. */
int loop_timer_add(struct loop *l, double deadline, uint64_t *handle);
/* Cancel a timer: 0, or ENOENT if it already fired or was cancelled. */
int loop_timer_cancel(struct loop *l, uint64_t handle);

/* Wait once for fd to be ready for `dir` (POLLER_IN or POLLER_OUT); errors
 * and hang-ups count as ready.  0 and *handle, or errno (EBADF ...).  A
 * file the poller cannot watch (a regular file: EPERM) is ready at once. */
int loop_fd_wait(struct loop *l, int fd, unsigned dir, uint64_t *handle);
/* Cancel an fd wait: 0, or ENOENT if stale. */
int loop_fd_cancel(struct loop *l, uint64_t handle);
/* Drop every wait on fd and forget it in the poller (call before closing
 * an fd).  The dropped waits are listed by loop_fired() (until the next
 * loop_poll), so the caller can release what it stored for them. */
void loop_fd_forget(struct loop *l, int fd);

/* Mark fd as a background fd (on = 1) or not: its waits do not stop the
 * jumps of the virtual clock (clock.c) unless it is ready - for watchers
 * of rare events such as signals.  0, EBADF, or ENOSPC past
 * LOOP_MAX_BACKGROUND fds.  loop_fd_forget clears the mark. */
#define LOOP_MAX_BACKGROUND 8
int loop_fd_background(struct loop *l, int fd, int on);

/* Earliest timer deadline: 0 and *deadline, or ENOENT if no timers. */
int loop_next_deadline(const struct loop *l, double *deadline);
/* Armed timers and pending fd waits. */
size_t loop_timer_count(const struct loop *l);
size_t loop_fd_count(const struct loop *l);

/* One event step of a turn (see the file comment).  With have_now the
 * turn time is set to `now` instead of a fresh clock read (synthetic time:
 * the wait is then never blocking).  With the virtual clock on, a
 * blocking poll with timers and no fd wait jumps the clock to the next
 * deadline instead of sleeping.  Returns 0, EDEADLK if asked to block
 * with no timer and no fd wait (nothing could ever wake us), or an OS
 * errno from the poller. */
int loop_poll(struct loop *l, enum loop_wait mode, int have_now, double now);
/* The entries fired by the last loop_poll (or dropped by loop_fd_forget). */
const uint32_t *loop_fired(const struct loop *l, size_t *n);

/* Drop every timer and fd wait (all handles become stale). */
void loop_clear(struct loop *l);

#endif
