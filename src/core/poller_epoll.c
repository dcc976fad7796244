/*
 * poller_epoll.c - the epoll backend of the poller interface, plus the
 * backend selection (poller_default / poller_by_name).
 *
 * Registrations use EPOLLONESHOT: a reported fd is disabled by the kernel
 * until re-armed.  This matches the scheduler's one-shot waits and, more
 * importantly, means an fd that was closed while still registered (its open
 * file description kept alive by a dup or a child) can report at most one
 * stray event instead of spinning the loop.  Arming uses EPOLL_CTL_MOD and
 * falls back to EPOLL_CTL_ADD on ENOENT, so a reused fd number is re-added;
 * with the POLLER_FRESH hint (the loop has not armed the fd since it last
 * removed it) the order is ADD, then MOD on EEXIST.
 *
 * Waits use epoll_pwait2 (timespec, nanosecond precision) when the kernel
 * has it (Linux >= 5.11); otherwise epoll_wait with the timeout rounded up
 * to whole milliseconds so that no timer fires early.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "poller.h"

#ifdef HAVE_SYS_EPOLL_H
#include <sys/epoll.h>
#include <sys/syscall.h>

struct poller {
	int epfd;
	int nevs;
	struct epoll_event *evs;
};

/* 1 while epoll_pwait2 is believed to work; cleared on ENOSYS. */
static int have_pwait2 = 1;

static int ep_create(struct poller **out)
{
	struct poller *p = calloc(1, sizeof *p);
	if (!p)
		return ENOMEM;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (p->epfd < 0) {
		int err = errno;
		free(p);
		return err;
	}
	*out = p;
	return 0;
}

static void ep_destroy(struct poller *p)
{
	if (!p)
		return;
	close(p->epfd);
	free(p->evs);
	free(p);
}

static int ep_arm(struct poller *p, int fd, unsigned events)
{
	struct epoll_event ev;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLONESHOT;
	if (events & POLLER_IN)
		ev.events |= EPOLLIN | EPOLLRDHUP;
	if (events & POLLER_OUT)
		ev.events |= EPOLLOUT;
	ev.data.fd = fd;
	if (events & POLLER_FRESH) {
		/* Most likely new: ADD first, MOD if it was registered after all. */
		if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
			return 0;
		if (errno != EEXIST)
			return errno;
		return epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : errno;
	}
	if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
		return 0;
	if (errno != ENOENT)
		return errno;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return 0;
	return errno;
}

static void ep_remove(struct poller *p, int fd)
{
	struct epoll_event ev;
	memset(&ev, 0, sizeof ev);
	(void)epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, &ev);
}

/* Milliseconds for epoll_wait, rounded up; -1 = forever. */
static int ts_to_ms_ceil(const struct timespec *ts)
{
	if (!ts)
		return -1;
	long long ms = (long long)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
	if (ms > 0x7fffffff)
		ms = 0x7fffffff;
	return (int)ms;
}

static int ep_wait(struct poller *p, const struct timespec *timeout,
		   struct poller_event *out, int max, int *n)
{
	if (max > p->nevs) {
		struct epoll_event *e = realloc(p->evs, (size_t)max * sizeof *e);
		if (!e)
			return ENOMEM;
		p->evs = e;
		p->nevs = max;
	}
	int r = -1;
	*n = 0;
#ifdef SYS_epoll_pwait2
	if (have_pwait2) {
		r = (int)syscall(SYS_epoll_pwait2, p->epfd, p->evs, max, timeout, NULL, 0);
		if (r < 0 && errno == ENOSYS)
			have_pwait2 = 0;
	}
	if (!have_pwait2)
#endif
		r = epoll_wait(p->epfd, p->evs, max, ts_to_ms_ceil(timeout));
	if (r < 0)
		return errno == EINTR ? 0 : errno;
	for (int i = 0; i < r; i++) {
		uint32_t e = p->evs[i].events;
		unsigned ev = 0;
		if (e & (EPOLLIN | EPOLLRDHUP | EPOLLPRI))
			ev |= POLLER_IN;
		if (e & EPOLLOUT)
			ev |= POLLER_OUT;
		if (e & (EPOLLERR | EPOLLHUP))
			ev |= POLLER_ERR;
		out[i].fd = p->evs[i].data.fd;
		out[i].events = ev;
	}
	*n = r;
	return 0;
}

const struct poller_ops poller_epoll_ops = {
	"epoll", ep_create, ep_destroy, ep_arm, ep_remove, ep_wait,
};
#define DEFAULT_OPS (&poller_epoll_ops)
#else
#define DEFAULT_OPS (&poller_poll_ops)
#endif

const struct poller_ops *poller_by_name(const char *name)
{
#ifdef HAVE_SYS_EPOLL_H
	if (strcmp(name, "epoll") == 0)
		return &poller_epoll_ops;
#endif
	if (strcmp(name, "poll") == 0)
		return &poller_poll_ops;
	return NULL;
}

int poller_default(const struct poller_ops **ops)
{
	const char *env = getenv("FIBERS_POLLER");
	if (!env || !*env) {
		*ops = DEFAULT_OPS;
		return 0;
	}
	*ops = poller_by_name(env);
	return *ops ? 0 : EINVAL;
}
