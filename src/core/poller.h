/*
 * poller.h - the readiness-poller interface (Redis ae style): a small const
 * table of operations, with two backends always compiled in:
 *
 *   poller_epoll  epoll, one-shot registrations; waits with epoll_pwait2
 *                 (ns timeout) when the kernel has it, else epoll_wait with
 *                 the timeout rounded UP to whole milliseconds;
 *   poller_poll   ppoll over an array of pollfds (portable fallback).
 *
 * The environment variable FIBERS_POLLER=poll|epoll picks a backend
 * (default: epoll where available); tests run both.
 *
 * Semantics shared by both backends: poller_arm() asks for ONE notification
 * of the given interest on fd; once wait() has reported an event for fd,
 * that fd is disarmed until armed again.  Errors and hang-ups (EPOLLERR/
 * EPOLLHUP, POLLERR/POLLHUP/POLLNVAL) are reported as POLLER_ERR whatever
 * the interest.  Timeouts are never rounded down, so a wait never ends
 * before its timeout unless an fd is ready.
 */
#ifndef FIBERS_POLLER_H
#define FIBERS_POLLER_H

#include <time.h>

#define POLLER_IN  1u
#define POLLER_OUT 2u
#define POLLER_ERR 4u
/* Hint for arm(): the fd is probably not registered with the backend yet
 * (the loop removed it, or never armed it), so epoll tries EPOLL_CTL_ADD
 * before EPOLL_CTL_MOD and a new fd costs one syscall, not two. */
#define POLLER_FRESH 8u

struct poller;

struct poller_event {
	int fd;
	unsigned events;        /* POLLER_IN | POLLER_OUT | POLLER_ERR */
};

struct poller_ops {
	const char *name;
	/* Create a poller; 0 or errno. */
	int (*create)(struct poller **out);
	void (*destroy)(struct poller *p);
	/* Arm fd for one notification of `events` (IN/OUT, non-zero),
	 * replacing any previous interest; 0 or errno. */
	int (*arm)(struct poller *p, int fd, unsigned events);
	/* Forget fd entirely (before close, or when nobody waits any more);
	 * never fails on an fd it does not know. */
	void (*remove)(struct poller *p, int fd);
	/* Wait for events; timeout NULL = forever, {0,0} = just look.  Fills
	 * up to max events, *n = how many.  EINTR counts as 0 events.  0 or
	 * errno. */
	int (*wait)(struct poller *p, const struct timespec *timeout,
		    struct poller_event *evs, int max, int *n);
};

extern const struct poller_ops poller_epoll_ops;
extern const struct poller_ops poller_poll_ops;

/* The backend chosen by FIBERS_POLLER (unset or "" = the platform default):
 * 0 and *ops set, or EINVAL for an unknown name. */
int poller_default(const struct poller_ops **ops);
/* Look a backend up by name ("epoll", "poll"): the ops or NULL. */
const struct poller_ops *poller_by_name(const char *name);

#endif
