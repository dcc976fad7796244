/*
 * tests/unit/loop.c - the event loop on both poller backends: timers with
 * synthetic and real time (never early), fd waits (FIFO per fd, both
 * directions, cancel, forget, re-arming, regular files ready at once),
 * deadlock detection (EDEADLK), fired order, clear, and the virtual
 * clock (jumps with timers only, real waits with fd waits pending).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "core.h"
#include "loop.h"
#include "tap.h"

/* Render the fired list as "t3 f0 ..." (t = timer slot, f = fd-wait slot). */
static const char *fired_str(struct loop *l)
{
	static char buf[256];
	size_t n, off = 0;
	const uint32_t *f = loop_fired(l, &n);
	buf[0] = 0;
	for (size_t i = 0; i < n && off < sizeof buf - 16; i++)
		off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%c%u", i ? " " : "",
					(f[i] & LOOP_FIRED_FD) ? 'f' : 't', LOOP_FIRED_SLOT(f[i]));
	return buf;
}

static void timers(const struct poller_ops *ops)
{
	const char *b = ops->name;
	struct loop *l;
	uint64_t h1, h2, h3;
	double d;
	is_int(loop_new(&l, ops), 0, "%s: loop_new", b);
	ok(strcmp(loop_backend(l), b) == 0, "%s: backend name", b);
	is_int(loop_poll(l, LOOP_BLOCK, 0, 0), EDEADLK, "%s: blocking with nothing to wait for is EDEADLK", b);
	is_int(loop_poll(l, LOOP_NOWAIT, 1, 10.0), 0, "%s: synthetic poll", b);
	ok(loop_now(l) == 10.0, "%s: synthetic now", b);
	loop_timer_add(l, 12.0, &h1);
	loop_timer_add(l, 11.0, &h2);
	loop_timer_add(l, 12.0, &h3);
	ok(loop_next_deadline(l, &d) == 0 && d == 11.0, "%s: next deadline", b);
	loop_poll(l, LOOP_NOWAIT, 1, 10.5);
	ok(strcmp(fired_str(l), "") == 0, "%s: nothing due at 10.5", b);
	loop_poll(l, LOOP_NOWAIT, 1, 12.0);
	char want[64];
	snprintf(want, sizeof want, "t%u t%u t%u", TIMER_SLOT(h2), TIMER_SLOT(h1), TIMER_SLOT(h3));
	ok(strcmp(fired_str(l), want) == 0, "%s: due timers fire by deadline, ties FIFO (%s)", b, fired_str(l));
	is_int(loop_timer_cancel(l, h1), ENOENT, "%s: fired timer handle is stale", b);

	/* real time: blocking poll sleeps until the deadline, never less */
	double t0 = core_monotime();
	loop_timer_add(l, t0 + 0.02, &h1);
	int polls = 0;
	do {
		loop_poll(l, LOOP_BLOCK, 0, 0);
		polls++;
	} while (loop_timer_count(l) > 0 && polls < 100);
	double now = loop_now(l);
	ok(now >= t0 + 0.02 && core_monotime() - t0 < 2.5, "%s: blocked until the deadline (%.2f ms)", b,
	   (now - t0) * 1e3);
	is_int(polls, 1, "%s: one blocking poll was enough (timeout rounded up)", b);
	loop_free(l);
}

static void fdwaits(const struct poller_ops *ops)
{
	const char *b = ops->name;
	struct loop *l;
	int p[2];
	uint64_t a, c, w, x;
	char buf[64];
	loop_new(&l, ops);
	if (pipe(p) != 0)
		abort();
	is_int(loop_fd_wait(l, p[0], POLLER_IN, &a), 0, "%s: wait read", b);
	is_int(loop_fd_wait(l, p[0], POLLER_IN, &x), 0, "%s: second waiter, same fd", b);
	is_int(loop_fd_wait(l, p[0], POLLER_IN, &c), 0, "%s: third waiter", b);
	is_int(loop_fd_count(l), 3, "%s: three fd waits", b);
	is_int(loop_fd_cancel(l, x), 0, "%s: cancel the middle one", b);
	is_int(loop_fd_cancel(l, x), ENOENT, "%s: cancel is idempotent", b);
	is_int(loop_fd_wait(l, p[1], POLLER_OUT, &w), 0, "%s: wait write", b);
	loop_poll(l, LOOP_NOWAIT, 0, 0);
	snprintf(buf, sizeof buf, "f%u", LOOP_SLOT(w));
	ok(strcmp(fired_str(l), buf) == 0, "%s: only the writable end fired", b);
	if (write(p[1], "x", 1) != 1)
		abort();
	loop_poll(l, LOOP_BLOCK, 0, 0);
	snprintf(buf, sizeof buf, "f%u f%u", LOOP_SLOT(a), LOOP_SLOT(c));
	ok(strcmp(fired_str(l), buf) == 0, "%s: readers fire in registration order (%s)", b, fired_str(l));
	is_int(loop_fd_count(l), 0, "%s: one-shot waits are gone", b);
	loop_poll(l, LOOP_NOWAIT, 0, 0);
	ok(strcmp(fired_str(l), "") == 0, "%s: nothing fires without waiters", b);

	/* same fd, both directions at once */
	loop_fd_wait(l, p[0], POLLER_IN, &a);
	loop_fd_wait(l, p[1], POLLER_OUT, &w);
	loop_fd_wait(l, p[0], POLLER_OUT, &x);  /* read end never writable */
	loop_poll(l, LOOP_NOWAIT, 0, 0);
	size_t n;
	loop_fired(l, &n);
	is_int(n, 2, "%s: reader and writer fired, impossible wait did not", b);
	is_int(loop_fd_count(l), 1, "%s: the other direction stays armed", b);
	loop_fd_forget(l, p[0]);
	snprintf(buf, sizeof buf, "f%u", LOOP_SLOT(x));
	ok(strcmp(fired_str(l), buf) == 0, "%s: forget lists the dropped wait", b);
	is_int(loop_fd_count(l), 0, "%s: forget dropped it", b);

	/* hang-up wakes readers */
	char ch;
	if (read(p[0], &ch, 1) != 1)
		abort();
	loop_fd_wait(l, p[0], POLLER_IN, &a);
	close(p[1]);
	loop_poll(l, LOOP_BLOCK, 0, 0);
	snprintf(buf, sizeof buf, "f%u", LOOP_SLOT(a));
	ok(strcmp(fired_str(l), buf) == 0, "%s: hang-up makes the reader ready", b);
	loop_fd_forget(l, p[0]);
	close(p[0]);

	/* regular files are ready at once */
	char path[] = "/tmp/fibers-loop-XXXXXX";
	int fd = mkstemp(path);
	unlink(path);
	is_int(loop_fd_wait(l, fd, POLLER_IN, &a), 0, "%s: wait on a regular file", b);
	loop_fd_wait(l, fd, POLLER_OUT, &c);
	is_int(loop_fd_cancel(l, c), 0, "%s: cancel a ready-at-once wait", b);
	is_int(loop_poll(l, LOOP_BLOCK, 0, 0), 0, "%s: blocking poll returns at once", b);
	snprintf(buf, sizeof buf, "f%u", LOOP_SLOT(a));
	ok(strcmp(fired_str(l), buf) == 0, "%s: regular file ready, cancelled one not", b);
	close(fd);

	is_int(loop_fd_wait(l, fd, POLLER_IN, &a), EBADF, "%s: closed fd is EBADF", b);
	is_int(loop_fd_wait(l, -1, POLLER_IN, &a), EBADF, "%s: negative fd is EBADF", b);
	is_int(loop_fd_wait(l, 0, 7, &a), EINVAL, "%s: bad direction is EINVAL", b);

	/* clear */
	if (pipe(p) != 0)
		abort();
	loop_fd_wait(l, p[0], POLLER_IN, &a);
	loop_timer_add(l, 0, &x);
	loop_clear(l);
	is_int(loop_fd_count(l) + loop_timer_count(l), 0, "%s: clear drops everything", b);
	is_int(loop_fd_cancel(l, a), ENOENT, "%s: handles stale after clear", b);
	if (write(p[1], "x", 1) != 1)
		abort();
	loop_poll(l, LOOP_NOWAIT, 0, 0);
	ok(strcmp(fired_str(l), "") == 0, "%s: nothing fires after clear", b);
	close(p[0]);
	close(p[1]);
	loop_free(l);
}

/* Many waits and timers: slots are recycled, handles differ. */
static void churn(const struct poller_ops *ops)
{
	struct loop *l;
	int p[2], bad = 0;
	uint64_t prev = 0, h;
	loop_new(&l, ops);
	if (pipe(p) != 0)
		abort();
	for (int i = 0; i < 10000; i++) {
		if (loop_fd_wait(l, p[0], POLLER_IN, &h) != 0 || h == prev)
			bad++;
		if (loop_fd_cancel(l, h) != 0)
			bad++;
		prev = h;
	}
	is_int(bad, 0, "%s: 10^4 wait/cancel cycles, fresh handles each time", ops->name);
	close(p[0]);
	close(p[1]);
	loop_free(l);
}

/* The virtual clock: a blocking poll with only timers jumps to the next
 * deadline at once; with an fd wait pending it really waits, and the
 * clock advances by the real time waited. */
static void vclock(const struct poller_ops *ops)
{
	const char *b = ops->name;
	struct loop *l;
	uint64_t h;
	int p[2];
	loop_new(&l, ops);
	core_vclock_set(1, 0);
	ok(core_monotime() == 0, "%s: virtual clock starts at 0", b);
	loop_timer_add(l, 3600, &h);
	double r0 = core_monotime_real();
	is_int(loop_poll(l, LOOP_BLOCK, 0, 0), 0, "%s: blocking poll (timers only)", b);
	ok(core_monotime_real() - r0 < 1.0, "%s: ... does not sleep", b);
	is_str(fired_str(l), "t0", "%s: ... fires the timer", b);
	ok(loop_now(l) == 3600 && core_monotime() == 3600, "%s: ... the clock jumped to 3600", b);
	is_int(loop_poll(l, LOOP_BLOCK, 0, 0), EDEADLK, "%s: nothing left: EDEADLK", b);
	if (pipe(p) != 0)
		abort();
	loop_timer_add(l, 3600.05, &h);
	loop_fd_wait(l, p[0], POLLER_IN, &h);
	r0 = core_monotime_real();
	is_int(loop_poll(l, LOOP_BLOCK, 0, 0), 0, "%s: blocking poll with an fd wait", b);
	ok(core_monotime_real() - r0 >= 0.05, "%s: ... waits in real time", b);
	is_str(fired_str(l), "t0", "%s: ... then fires the timer", b);
	ok(loop_now(l) >= 3600.05 && loop_now(l) < 3610, "%s: ... the clock moved by the real wait", b);
	/* a background fd's wait does not stop a jump unless it is ready */
	loop_fd_cancel(l, h);
	is_int(loop_fd_background(l, p[0], 1), 0, "%s: background fd", b);
	loop_timer_add(l, 7200, &h);
	loop_fd_wait(l, p[0], POLLER_IN, &h);
	r0 = core_monotime_real();
	is_int(loop_poll(l, LOOP_BLOCK, 0, 0), 0, "%s: blocking poll, background wait", b);
	ok(core_monotime_real() - r0 < 1.0 && loop_now(l) == 7200, "%s: ... jumps to 7200", b);
	is_str(fired_str(l), "t0", "%s: ... fires the timer", b);
	loop_timer_add(l, 9000, &h);
	if (write(p[1], "x", 1) != 1)
		abort();
	is_int(loop_poll(l, LOOP_BLOCK, 0, 0), 0, "%s: blocking poll, background fd ready", b);
	ok(loop_now(l) == 7200, "%s: ... no jump", b);
	ok(fired_str(l)[0] == 'f', "%s: ... the fd wait fired", b);
	loop_fd_forget(l, p[0]);
	loop_fd_wait(l, p[0], POLLER_IN, &h);
	is_int(loop_poll(l, LOOP_BLOCK, 0, 0), 0, "%s: forget clears the mark", b);
	ok(loop_now(l) < 7201 && fired_str(l)[0] == 'f', "%s: ... (fd ready, no jump)", b);
	core_vclock_set(0, 0);
	ok(core_monotime() > 0 && core_monotime() != loop_now(l), "%s: real clock again", b);
	close(p[0]);
	close(p[1]);
	loop_free(l);
}

/* loop_new lowers the default timer slack (50 us) to 1 ns, keeps others. */
static void slack(void)
{
#ifdef __linux__
	struct loop *l;
	prctl(PR_SET_TIMERSLACK, 0, 0, 0, 0);   /* 0 = back to the default */
	is_int((int)prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), 50000, "default timer slack");
	is_int(loop_new(&l, NULL), 0, "loop_new (slack)");
	is_int((int)prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), 1, "loop_new set timer slack to 1 ns");
	loop_free(l);
	prctl(PR_SET_TIMERSLACK, 7000, 0, 0, 0);
	is_int(loop_new(&l, NULL), 0, "loop_new (own slack)");
	is_int((int)prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), 7000, "a non-default slack is kept");
	loop_free(l);
#endif
}

int main(void)
{
	const struct poller_ops *all[] = { &poller_epoll_ops, &poller_poll_ops };
	slack();
	for (int i = 0; i < 2; i++) {
		timers(all[i]);
		fdwaits(all[i]);
		churn(all[i]);
		vclock(all[i]);
	}
	return done_testing();
}
