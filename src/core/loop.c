/*
 * loop.c - the event side of a scheduler turn: timers (timer.c), one-shot
 * fd waits on a poller backend (poller.h), the cached turn time, and the
 * list of waits that fired in the last poll.  It owns no task values: a
 * wait is a slot number that the caller maps to whatever it wants.
 *
 * fd waits: every fd has two FIFO lists of waiters (read, write), threaded
 * through the wait-slot table.  The poller is armed one-shot with the union
 * of the interests; when it reports the fd, every waiter of a ready
 * direction fires (errors/hang-ups make both directions ready), and the fd
 * is re-armed only if waiters remain.  Cancelling the last waiter of an fd
 * removes it from the poller.  Nothing here allocates per wait once the
 * arrays have grown.
 *
 * Timeouts: the wait until the next deadline is computed from a fresh clock
 * read and rounded up (plus 1 ns), so a timer is never found early; after
 * the wait the turn time is read again and every timer with deadline <= now
 * fires.
 *
 * Virtual clock (clock.c): while it is on, a turn that would block with
 * timers armed and no fd wait pending (waits on background fds - signal
 * watchers - aside, unless one is ready) does not sleep; the clock jumps
 * to the earliest deadline instead.  A turn that does wait (for fds, or
 * for a timer while fd waits are pending) advances it by the real time
 * waited.
 *
 * Timer slack: Linux lets a sleep run late by the thread's timer slack
 * (50 us by default; epoll_pwait2 uses max(slack, timeout / 1000)).  A
 * scheduler's sleeps are its timers, so loop_new() lowers the slack of the
 * calling thread to 1 ns with PR_SET_TIMERSLACK, unless someone already
 * changed it from the default (a user's own choice is kept).  The value is
 * inherited by children; exec'd programs keep it too (it only makes their
 * sleeps more punctual).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "core.h"
#include "loop.h"

#define NONE UINT32_MAX
#define GEN_MASK (((uint32_t)1 << TIMER_GEN_BITS) - 1)
#define MAX_EVENTS 64

enum { DIR_IN = 0, DIR_OUT = 1, DIR_NOW = 2, DIR_FREE = 3 };

struct fdw {
	int fd;
	uint32_t gen;
	uint32_t prev, next;    /* links in the fd's list (DIR_IN/DIR_OUT) */
	uint8_t dir;
};

struct fdrec {
	uint32_t head[2], tail[2];
	unsigned armed;         /* interest armed in the poller (0 = none) */
	unsigned reg;           /* known to the poller (armed since removed) */
};

struct loop {
	const struct poller_ops *ops;
	struct poller *p;
	struct timer_heap timers;
	double now;
	int now_stale;          /* now not read this turn (no timer was due) */

	struct fdw *w;          /* wait slots */
	size_t wslots, wcap, nwait;
	uint32_t *wfree;
	size_t nwfree;

	struct fdrec *fds;      /* indexed by fd */
	size_t fdcap;

	uint64_t *imm;          /* handles of waits that are ready at once */
	size_t nimm, immcap;

	uint32_t *fired;
	size_t nfired, firedcap;

	int bg[LOOP_MAX_BACKGROUND];    /* fds whose waits do not stop jumps */
	size_t nbg;

	struct poller_event evs[MAX_EVENTS];
};

static int grow_array(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 16;
	while (ncap < need)
		ncap *= 2;
	void *n = realloc(*arr, ncap * elem);
	if (!n)
		return ENOMEM;
	*arr = n;
	*cap = ncap;
	return 0;
}

int loop_new(struct loop **out, const struct poller_ops *ops)
{
	int err;
	if (!ops && (err = poller_default(&ops)) != 0)
		return err;
	struct loop *l = calloc(1, sizeof *l);
	if (!l)
		return ENOMEM;
	l->ops = ops;
	if ((err = ops->create(&l->p)) != 0) {
		free(l);
		return err;
	}
	timer_init(&l->timers);
#if defined(__linux__) && defined(PR_SET_TIMERSLACK)
	if (prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) == 50000)
		(void)prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0);
#endif
	l->now = core_monotime();
	*out = l;
	return 0;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	l->ops->destroy(l->p);
	timer_fini(&l->timers);
	free(l->w);
	free(l->wfree);
	free(l->fds);
	free(l->imm);
	free(l->fired);
	free(l);
}

const char *loop_backend(const struct loop *l)
{
	return l->ops->name;
}

double loop_now(struct loop *l)
{
	if (l->now_stale) {
		l->now = core_monotime();
		l->now_stale = 0;
	}
	return l->now;
}

int loop_timer_add(struct loop *l, double deadline, uint64_t *handle)
{
	return timer_add(&l->timers, deadline, handle);
}

int loop_timer_cancel(struct loop *l, uint64_t handle)
{
	return timer_cancel(&l->timers, handle);
}

int loop_next_deadline(const struct loop *l, double *deadline)
{
	return timer_next(&l->timers, deadline);
}

size_t loop_timer_count(const struct loop *l)
{
	return timer_count(&l->timers);
}

size_t loop_fd_count(const struct loop *l)
{
	return l->nwait;
}

static int push_fired(struct loop *l, uint32_t x)
{
	if (l->nfired == l->firedcap &&
	    grow_array((void **)&l->fired, &l->firedcap, l->nfired + 1, sizeof *l->fired))
		return ENOMEM;
	l->fired[l->nfired++] = x;
	return 0;
}

static uint64_t handle_of(const struct loop *l, uint32_t slot)
{
	return ((uint64_t)l->w[slot].gen << TIMER_SLOT_BITS) | slot;
}

static void release_wait(struct loop *l, uint32_t slot)
{
	struct fdw *w = &l->w[slot];
	w->dir = DIR_FREE;
	w->gen = (w->gen + 1) & GEN_MASK;
	if (w->gen == 0)
		w->gen = 1;
	l->wfree[l->nwfree++] = slot;
	l->nwait--;
}

static void unlink_wait(struct loop *l, uint32_t slot)
{
	struct fdw *w = &l->w[slot];
	struct fdrec *r = &l->fds[w->fd];
	if (w->prev != NONE)
		l->w[w->prev].next = w->next;
	else
		r->head[w->dir] = w->next;
	if (w->next != NONE)
		l->w[w->next].prev = w->prev;
	else
		r->tail[w->dir] = w->prev;
}

static unsigned wanted(const struct fdrec *r)
{
	return (r->head[DIR_IN] != NONE ? POLLER_IN : 0) |
	       (r->head[DIR_OUT] != NONE ? POLLER_OUT : 0);
}

static int alloc_wait(struct loop *l, uint32_t *slot)
{
	if (l->nwfree > 0) {
		*slot = l->wfree[--l->nwfree];
		return 0;
	}
	if (l->wslots >= TIMER_MAX_SLOTS)
		return ENOSPC;
	if (l->wslots == l->wcap) {
		size_t cap = l->wcap;
		if (grow_array((void **)&l->w, &cap, l->wslots + 1, sizeof *l->w))
			return ENOMEM;
		size_t fcap = l->wcap;
		if (grow_array((void **)&l->wfree, &fcap, cap, sizeof *l->wfree))
			return ENOMEM;
		l->wcap = cap;
	}
	*slot = (uint32_t)l->wslots++;
	l->w[*slot].gen = 1;
	return 0;
}

static int grow_fds(struct loop *l, int fd)
{
	size_t old = l->fdcap;
	if ((size_t)fd < old)
		return 0;
	if (grow_array((void **)&l->fds, &l->fdcap, (size_t)fd + 1, sizeof *l->fds))
		return ENOMEM;
	for (size_t i = old; i < l->fdcap; i++) {
		l->fds[i].head[0] = l->fds[i].head[1] = NONE;
		l->fds[i].tail[0] = l->fds[i].tail[1] = NONE;
		l->fds[i].armed = 0;
		l->fds[i].reg = 0;
	}
	return 0;
}

int loop_fd_wait(struct loop *l, int fd, unsigned dir, uint64_t *handle)
{
	uint32_t slot;
	int err;
	if (fd < 0)
		return EBADF;
	if (dir != POLLER_IN && dir != POLLER_OUT)
		return EINVAL;
	if ((err = grow_fds(l, fd)) != 0 || (err = alloc_wait(l, &slot)) != 0)
		return err;
	l->nwait++;
	struct fdw *w = &l->w[slot];
	struct fdrec *r = &l->fds[fd];
	uint8_t d = dir == POLLER_IN ? DIR_IN : DIR_OUT;
	w->fd = fd;
	w->dir = d;
	w->next = NONE;
	w->prev = r->tail[d];
	if (w->prev != NONE)
		l->w[w->prev].next = slot;
	else
		r->head[d] = slot;
	r->tail[d] = slot;
	*handle = handle_of(l, slot);
	unsigned want = wanted(r);
	if ((want & ~r->armed) == 0)
		return 0;
	err = l->ops->arm(l->p, fd, want | (r->reg ? 0 : POLLER_FRESH));
	if (err == 0) {
		r->armed = want;
		r->reg = 1;
		return 0;
	}
	unlink_wait(l, slot);
	if (err == EPERM) {
		/* Not pollable (regular file, directory): always ready. */
		if (grow_array((void **)&l->imm, &l->immcap, l->nimm + 1, sizeof *l->imm) == 0) {
			w->dir = DIR_NOW;
			l->imm[l->nimm++] = *handle;
			return 0;
		}
		err = ENOMEM;
	}
	release_wait(l, slot);
	return err;
}

/* Validate an fd-wait handle: its slot, or NONE. */
static uint32_t live_slot(const struct loop *l, uint64_t handle)
{
	uint32_t slot = LOOP_SLOT(handle);
	if (slot >= l->wslots || l->w[slot].dir == DIR_FREE ||
	    handle_of(l, slot) != handle)
		return NONE;
	return slot;
}

int loop_fd_cancel(struct loop *l, uint64_t handle)
{
	uint32_t slot = live_slot(l, handle);
	if (slot == NONE)
		return ENOENT;
	struct fdw *w = &l->w[slot];
	if (w->dir != DIR_NOW) {
		struct fdrec *r = &l->fds[w->fd];
		unlink_wait(l, slot);
		if (wanted(r) == 0 && r->armed) {
			l->ops->remove(l->p, w->fd);
			r->armed = 0;
			r->reg = 0;
		}
	}
	/* A DIR_NOW entry stays in imm[]; its handle goes stale here. */
	release_wait(l, slot);
	return 0;
}

static void fire_list(struct loop *l, struct fdrec *r, int d)
{
	uint32_t s = r->head[d];
	while (s != NONE) {
		uint32_t next = l->w[s].next;
		push_fired(l, s | LOOP_FIRED_FD);
		release_wait(l, s);
		s = next;
	}
	r->head[d] = r->tail[d] = NONE;
}

/* Index of fd in the background list, or nbg. */
static size_t bg_find(const struct loop *l, int fd)
{
	size_t i = 0;
	while (i < l->nbg && l->bg[i] != fd)
		i++;
	return i;
}

int loop_fd_background(struct loop *l, int fd, int on)
{
	if (fd < 0)
		return EBADF;
	size_t i = bg_find(l, fd);
	if (on && i == l->nbg) {
		if (l->nbg == LOOP_MAX_BACKGROUND)
			return ENOSPC;
		l->bg[l->nbg++] = fd;
	} else if (!on && i < l->nbg) {
		l->bg[i] = l->bg[--l->nbg];
	}
	return 0;
}

/* Pending waits on background fds (walked only when a jump is possible). */
static size_t background_waits(const struct loop *l)
{
	size_t n = 0;
	for (size_t i = 0; i < l->nbg; i++) {
		if ((size_t)l->bg[i] >= l->fdcap)
			continue;
		const struct fdrec *r = &l->fds[l->bg[i]];
		for (int d = DIR_IN; d <= DIR_OUT; d++)
			for (uint32_t s = r->head[d]; s != NONE; s = l->w[s].next)
				n++;
	}
	return n;
}

void loop_fd_forget(struct loop *l, int fd)
{
	l->nfired = 0;
	(void)loop_fd_background(l, fd, 0);
	if (fd < 0 || (size_t)fd >= l->fdcap)
		return;
	struct fdrec *r = &l->fds[fd];
	fire_list(l, r, DIR_IN);
	fire_list(l, r, DIR_OUT);
	l->ops->remove(l->p, fd);
	r->armed = 0;
	r->reg = 0;
}

static void handle_event(struct loop *l, const struct poller_event *ev)
{
	if (ev->fd < 0 || (size_t)ev->fd >= l->fdcap)
		return;
	struct fdrec *r = &l->fds[ev->fd];
	r->armed = 0;   /* one-shot: the poller disarmed it */
	if (ev->events & (POLLER_IN | POLLER_ERR))
		fire_list(l, r, DIR_IN);
	if (ev->events & (POLLER_OUT | POLLER_ERR))
		fire_list(l, r, DIR_OUT);
	unsigned want = wanted(r);
	if (want == 0)
		return;
	if (l->ops->arm(l->p, ev->fd, want) == 0) {
		r->armed = want;
		return;
	}
	/* Cannot re-arm (fd closed under us?): wake the waiters so that they
	 * retry and see the error themselves. */
	fire_list(l, r, DIR_IN);
	fire_list(l, r, DIR_OUT);
}

/* Fill ts with the time left until deadline, rounded up; 0 if due. */
static void timeout_until(double deadline, struct timespec *ts)
{
	double left = deadline - core_monotime();
	if (!(left > 0)) {
		ts->tv_sec = 0;
		ts->tv_nsec = 0;
		return;
	}
	if (left > 86400.0 * 365)
		left = 86400.0 * 365;
	double sec = floor(left);
	ts->tv_sec = (time_t)sec;
	ts->tv_nsec = (long)ceil((left - sec) * 1e9) + 1;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int loop_poll(struct loop *l, enum loop_wait mode, int have_now, double now)
{
	struct timespec ts = { 0, 0 };
	const struct timespec *tsp = &ts;
	double deadline;
	int has_timer = timer_next(&l->timers, &deadline) == 0;

	int vwait = 0;          /* virtual clock: advance it by the real wait */
	int vjump = 0;          /* virtual clock: jump unless an fd is ready */
	double r0 = 0;

	l->nfired = 0;
	if (have_now || l->nimm > 0)
		mode = LOOP_NOWAIT;
	if (mode == LOOP_BLOCK && core_vclock_on()) {
		if (has_timer && (l->nwait == 0 || l->nwait == background_waits(l))) {
			/* Only a timer can wake us (or a background fd that is
			 * ready now): look without sleeping, then jump. */
			vjump = 1;
			mode = LOOP_NOWAIT;
		} else {
			vwait = 1;
			r0 = core_monotime_real();
		}
	}
	if (mode == LOOP_BLOCK) {
		if (has_timer)
			timeout_until(deadline, &ts);
		else if (l->nwait > 0)
			tsp = NULL;
		else
			return EDEADLK;
	}
	/* Ready-at-once waits (unpollable files) first, in order. */
	for (size_t i = 0; i < l->nimm; i++) {
		uint32_t slot = live_slot(l, l->imm[i]);
		if (slot != NONE) {
			push_fired(l, slot | LOOP_FIRED_FD);
			release_wait(l, slot);
		}
	}
	l->nimm = 0;
	/* Skip the syscall when there is nothing to look at and no sleep. */
	if (tsp == NULL || ts.tv_sec != 0 || ts.tv_nsec != 0 || l->nwait > 0) {
		int n = 0;
		int err = l->ops->wait(l->p, tsp, l->evs, MAX_EVENTS, &n);
		if (err)
			return err;
		for (int i = 0; i < n; i++)
			handle_event(l, &l->evs[i]);
	}
	if (vwait)
		core_vclock_advance(core_monotime() + (core_monotime_real() - r0));
	else if (vjump && l->nfired == 0)
		core_vclock_advance(deadline);
	/* With no timer there is nothing to compare the clock with: it is
	 * read when the turn first asks for now (loop_now). */
	l->now_stale = !have_now && !has_timer;
	if (l->now_stale)
		return 0;
	l->now = have_now ? now : core_monotime();
	uint64_t h;
	while (timer_pop_due(&l->timers, l->now, &h))
		push_fired(l, TIMER_SLOT(h));
	return 0;
}

const uint32_t *loop_fired(const struct loop *l, size_t *n)
{
	*n = l->nfired;
	return l->fired;
}

void loop_clear(struct loop *l)
{
	timer_clear(&l->timers);
	for (size_t fd = 0; fd < l->fdcap; fd++) {
		struct fdrec *r = &l->fds[fd];
		if (r->head[DIR_IN] == NONE && r->head[DIR_OUT] == NONE && !r->armed)
			continue;
		fire_list(l, r, DIR_IN);
		fire_list(l, r, DIR_OUT);
		l->ops->remove(l->p, (int)fd);
		r->armed = 0;
		r->reg = 0;
	}
	for (size_t i = 0; i < l->nimm; i++) {
		uint32_t slot = live_slot(l, l->imm[i]);
		if (slot != NONE)
			release_wait(l, slot);
	}
	l->nimm = 0;
	l->nfired = 0;
}
