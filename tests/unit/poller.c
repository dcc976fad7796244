/*
 * tests/unit/poller.c - both poller backends (epoll and poll) against the
 * same expectations: one-shot readiness, re-arming, read/write interest,
 * hang-ups reported as errors, remove, bad fds, and timeouts that never
 * end early, the POLLER_FRESH arm hint.  Also backend selection through FIBERS_POLLER.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "tap.h"
#include "poller.h"

static int wait_ms(const struct poller_ops *ops, struct poller *p, long ms,
		   struct poller_event *evs, int *n)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	return ops->wait(p, &ts, evs, 8, n);
}

static void backend(const struct poller_ops *ops)
{
	const char *b = ops->name;
	struct poller *p;
	struct poller_event evs[8];
	int n, fds[2];

	is_int(ops->create(&p), 0, "%s: create", b);
	if (pipe(fds) != 0)
		abort();
	is_int(ops->arm(p, fds[0], POLLER_IN), 0, "%s: arm read end for input", b);
	is_int(wait_ms(ops, p, 0, evs, &n), 0, "%s: wait(0)", b);
	is_int(n, 0, "%s: empty pipe not readable", b);
	if (write(fds[1], "x", 1) != 1)
		abort();
	wait_ms(ops, p, 1000, evs, &n);
	ok(n == 1 && evs[0].fd == fds[0] && evs[0].events == POLLER_IN,
	   "%s: readable after a write (IN only)", b);
	wait_ms(ops, p, 0, evs, &n);
	is_int(n, 0, "%s: one-shot: not reported again until re-armed", b);
	ops->arm(p, fds[0], POLLER_IN);
	wait_ms(ops, p, 0, evs, &n);
	is_int(n, 1, "%s: re-armed fd reported again (level)", b);

	ops->arm(p, fds[1], POLLER_OUT);
	wait_ms(ops, p, 0, evs, &n);
	ok(n == 1 && evs[0].fd == fds[1] && evs[0].events == POLLER_OUT,
	   "%s: write end writable", b);

	ops->arm(p, fds[0], POLLER_IN);
	ops->remove(p, fds[0]);
	wait_ms(ops, p, 0, evs, &n);
	is_int(n, 0, "%s: removed fd not reported", b);
	ops->remove(p, fds[0]);
	ok(1, "%s: removing twice is harmless", b);

	/* hang-up: close the write end, the read end reports IN/ERR */
	char c;
	if (read(fds[0], &c, 1) != 1)
		abort();
	ops->arm(p, fds[0], POLLER_IN);
	close(fds[1]);
	wait_ms(ops, p, 1000, evs, &n);
	ok(n == 1 && (evs[0].events & POLLER_ERR), "%s: hang-up reported as ERR", b);
	/* an armed write end whose reader is gone: ERR even without OUT interest */
	int q[2];
	if (pipe(q) != 0)
		abort();
	ops->arm(p, q[1], POLLER_IN);
	close(q[0]);
	wait_ms(ops, p, 1000, evs, &n);
	ok(n == 1 && evs[0].fd == q[1] && (evs[0].events & POLLER_ERR),
	   "%s: error reported whatever the interest", b);
	ops->remove(p, q[1]);
	close(q[1]);

	/* POLLER_FRESH (ADD first): right on a new fd, and on one that is
	 * registered after all (EEXIST falls back to MOD, one-shot kept) */
	int h[2];
	if (pipe(h) != 0)
		abort();
	is_int(ops->arm(p, h[0], POLLER_IN | POLLER_FRESH), 0, "%s: fresh arm of a new fd", b);
	is_int(ops->arm(p, h[0], POLLER_IN | POLLER_FRESH), 0, "%s: fresh arm of a registered fd", b);
	if (write(h[1], "y", 1) != 1)
		abort();
	wait_ms(ops, p, 1000, evs, &n);
	ok(n == 1 && evs[0].fd == h[0] && evs[0].events == POLLER_IN,
	   "%s: fresh-armed fd reported once (IN only)", b);
	wait_ms(ops, p, 0, evs, &n);
	is_int(n, 0, "%s: fresh arm is one-shot too", b);
	ops->remove(p, h[0]);
	close(h[0]);
	close(h[1]);
	is_int(ops->arm(p, h[0], POLLER_IN | POLLER_FRESH), EBADF, "%s: fresh arm of a closed fd is EBADF", b);

	/* closed fds */
	close(fds[0]);
	is_int(ops->arm(p, fds[0], POLLER_IN), EBADF, "%s: arming a closed fd is EBADF", b);
	ops->remove(p, fds[0]);

	/* timeouts never end early; measure 1 ms sleeps */
	double t0 = core_monotime();
	wait_ms(ops, p, 30, evs, &n);
	double el = core_monotime() - t0;
	ok(n == 0 && el >= 0.030 && el < 2.5, "%s: 30 ms timeout slept %.2f ms", b, el * 1e3);
	double sum = 0, worst = 0;
	for (int i = 0; i < 100; i++) {
		struct timespec ts = { 0, 1000000L };
		t0 = core_monotime();
		ops->wait(p, &ts, evs, 8, &n);
		el = core_monotime() - t0;
		if (el < 0.001)
			worst = -1;
		sum += el - 0.001;
		if (worst >= 0 && el - 0.001 > worst)
			worst = el - 0.001;
	}
	ok(worst >= 0, "%s: no 1 ms wait ended early", b);
	printf("# %s: 1 ms waits, mean oversleep %.1f us, worst %.1f us\n", b, sum / 100 * 1e6,
	       worst * 1e6);
	ops->destroy(p);
}

int main(void)
{
	const struct poller_ops *ops;
	ok(poller_by_name("poll") == &poller_poll_ops, "poll backend by name");
	ok(poller_by_name("epoll") == &poller_epoll_ops, "epoll backend by name");
	ok(poller_by_name("kqueue") == NULL, "unknown backend name");
	unsetenv("FIBERS_POLLER");
	ok(poller_default(&ops) == 0 && ops == &poller_epoll_ops, "default backend is epoll on Linux");
	setenv("FIBERS_POLLER", "poll", 1);
	ok(poller_default(&ops) == 0 && ops == &poller_poll_ops, "FIBERS_POLLER=poll forces poll");
	setenv("FIBERS_POLLER", "nonsense", 1);
	is_int(poller_default(&ops), EINVAL, "unknown FIBERS_POLLER is EINVAL");
	unsetenv("FIBERS_POLLER");
	backend(&poller_epoll_ops);
	backend(&poller_poll_ops);
	return done_testing();
}
