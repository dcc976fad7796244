/*
 * poller_poll.c - the portable poll backend of the poller interface: a
 * dense array of struct pollfd plus an fd -> index map, waited on with
 * ppoll (timespec timeout, never rounded down).  One-shot semantics as in
 * poller.h: an fd that wait() reports is dropped from the array until it is
 * armed again.  Forced on Linux with FIBERS_POLLER=poll.
 */
#define _GNU_SOURCE 1
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>

#include "poller.h"

struct poller {
	struct pollfd *pfds;
	size_t n, cap;
	int *idx;               /* fd -> index in pfds, or -1 */
	size_t idxcap;
};

static int pp_create(struct poller **out)
{
	struct poller *p = calloc(1, sizeof *p);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

static void pp_destroy(struct poller *p)
{
	if (!p)
		return;
	free(p->pfds);
	free(p->idx);
	free(p);
}

static int index_of(const struct poller *p, int fd)
{
	if (fd < 0 || (size_t)fd >= p->idxcap)
		return -1;
	return p->idx[fd];
}

static int pp_arm(struct poller *p, int fd, unsigned events)
{
	if (fd < 0)
		return EBADF;
	if ((size_t)fd >= p->idxcap) {
		size_t ncap = p->idxcap ? p->idxcap : 64;
		while (ncap <= (size_t)fd)
			ncap *= 2;
		int *ni = realloc(p->idx, ncap * sizeof *ni);
		if (!ni)
			return ENOMEM;
		for (size_t i = p->idxcap; i < ncap; i++)
			ni[i] = -1;
		p->idx = ni;
		p->idxcap = ncap;
	}
	short ev = 0;
	if (events & POLLER_IN)
		ev |= POLLIN;
	if (events & POLLER_OUT)
		ev |= POLLOUT;
	int i = p->idx[fd];
	if (i < 0) {
		/* Refuse a closed fd now, as epoll does, rather than report
		 * POLLNVAL later. */
		if (fcntl(fd, F_GETFD) < 0)
			return errno;
		if (p->n == p->cap) {
			size_t ncap = p->cap ? p->cap * 2 : 16;
			struct pollfd *np = realloc(p->pfds, ncap * sizeof *np);
			if (!np)
				return ENOMEM;
			p->pfds = np;
			p->cap = ncap;
		}
		i = (int)p->n++;
		p->idx[fd] = i;
		p->pfds[i].fd = fd;
	}
	p->pfds[i].events = ev;
	p->pfds[i].revents = 0;
	return 0;
}

static void pp_remove(struct poller *p, int fd)
{
	int i = index_of(p, fd);
	if (i < 0)
		return;
	p->idx[fd] = -1;
	p->n--;
	if ((size_t)i != p->n) {
		p->pfds[i] = p->pfds[p->n];
		p->idx[p->pfds[i].fd] = i;
	}
}

static int pp_wait(struct poller *p, const struct timespec *timeout,
		   struct poller_event *out, int max, int *n)
{
	*n = 0;
	int r = ppoll(p->pfds, (nfds_t)p->n, timeout, NULL);
	if (r < 0)
		return errno == EINTR ? 0 : errno;
	int k = 0;
	/* Walk backwards so that pp_remove's swap-with-last never moves an
	 * entry we have not looked at yet. */
	for (size_t j = p->n; j-- > 0 && k < max;) {
		short re = p->pfds[j].revents;
		if (!re)
			continue;
		unsigned ev = 0;
		if (re & (POLLIN | POLLPRI))
			ev |= POLLER_IN;
		if (re & POLLOUT)
			ev |= POLLER_OUT;
		if (re & (POLLERR | POLLHUP | POLLNVAL))
			ev |= POLLER_ERR;
		out[k].fd = p->pfds[j].fd;
		out[k].events = ev;
		k++;
		pp_remove(p, p->pfds[j].fd);
	}
	*n = k;
	return 0;
}

const struct poller_ops poller_poll_ops = {
	"poll", pp_create, pp_destroy, pp_arm, pp_remove, pp_wait,
};
