/*
 * resolver.c - getaddrinfo(3) in helper threads (see resolver.h).
 *
 * One mutex guards the pool: the queue, the list of finished ids, the
 * thread counts and every request's state.  Lifetimes are reference
 * counts on the pool: the owner (until resolver_free), each thread, each
 * request not yet released.  A request belongs to the loop's thread once
 * it is DONE (the helper never touches it again unless the owner released
 * it while it was RUNNING, in which case the helper frees it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "resolver.h"

#define IDLE_SECONDS 10

enum { Q_QUEUED, Q_RUNNING, Q_DONE };

struct resolver_req {
	struct resolver *r;
	struct resolver_req *next;      /* queue link while Q_QUEUED */
	uint64_t id;
	char *host;
	int family;
	int state;
	int released;                   /* owner dropped it while running */
	struct addrinfo *ai;
	int gai_err, sys_err;
};

struct resolver {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned refs;
	int owner_gone;
	int efd;
	unsigned max_threads, nthreads, idle;
	struct resolver_req *head, *tail;
	uint64_t next_id;
	uint64_t *done;
	size_t ndone, cap;
};

static void destroy(struct resolver *r)
{
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r->done);
	free(r);
}

/* Drop one reference with r->mu held; unlocks. */
static void unref_unlock(struct resolver *r)
{
	int last = --r->refs == 0;

	pthread_mutex_unlock(&r->mu);
	if (last)
		destroy(r);
}

static void free_req(struct resolver_req *q)
{
	if (q->ai)
		freeaddrinfo(q->ai);
	free(q->host);
	free(q);
}

int resolver_new(struct resolver **out, unsigned max_threads)
{
	struct resolver *r = calloc(1, sizeof *r);
	pthread_condattr_t ca;

	if (!r)
		return ENOMEM;
	r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->efd < 0) {
		int err = errno;
		free(r);
		return err;
	}
	pthread_mutex_init(&r->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	r->refs = 1;
	r->max_threads = max_threads ? max_threads : 1;
	r->next_id = 1;
	*out = r;
	return 0;
}

void resolver_free(struct resolver *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->owner_gone = 1;
	if (r->efd >= 0)
		close(r->efd);
	r->efd = -1;
	pthread_cond_broadcast(&r->cv);
	unref_unlock(r);
}

int resolver_fd(const struct resolver *r)
{
	return r->efd;
}

/* Record q's id as finished and wake the loop; r->mu held. */
static int note_done(struct resolver *r, struct resolver_req *q)
{
	static const uint64_t one = 1;

	if (r->ndone == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		uint64_t *d = realloc(r->done, cap * sizeof *d);
		if (!d)
			return ENOMEM;
		r->done = d;
		r->cap = cap;
	}
	r->done[r->ndone++] = q->id;
	if (r->efd >= 0 && write(r->efd, &one, sizeof one) < 0 && errno != EAGAIN)
		return errno;
	return 0;
}

static void lookup(struct resolver_req *q)
{
	struct addrinfo hints;
	int rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = q->family;
	hints.ai_socktype = SOCK_STREAM;
	errno = 0;
	rc = getaddrinfo(q->host, NULL, &hints, &q->ai);
	if (rc != 0) {
		q->ai = NULL;
		q->gai_err = rc;
		q->sys_err = rc == EAI_SYSTEM ? errno : 0;
	}
}

static void *worker(void *arg)
{
	struct resolver *r = arg;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		struct resolver_req *q;

		if (!r->head) {
			struct timespec until;
			int rc;

			if (r->owner_gone)
				break;
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += IDLE_SECONDS;
			r->idle++;
			rc = pthread_cond_timedwait(&r->cv, &r->mu, &until);
			r->idle--;
			if (rc == ETIMEDOUT && !r->head)
				break;
			continue;
		}
		q = r->head;
		r->head = q->next;
		if (!r->head)
			r->tail = NULL;
		q->next = NULL;
		q->state = Q_RUNNING;
		pthread_mutex_unlock(&r->mu);
		lookup(q);
		pthread_mutex_lock(&r->mu);
		q->state = Q_DONE;
		if (q->released) {
			free_req(q);
			r->refs--;              /* this thread's own ref keeps r */
		} else if (note_done(r, q) != 0) {
			/* No room to announce it: fail it visibly rather than
			 * leaving its waiter asleep forever. */
			if (q->ai)
				freeaddrinfo(q->ai);
			q->ai = NULL;
			q->gai_err = EAI_MEMORY;
		}
	}
	r->nthreads--;
	unref_unlock(r);
	return NULL;
}

/* Start one helper with every signal blocked; r->mu held. */
static int start_thread(struct resolver *r)
{
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;
	int rc;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r->refs++;
	r->nthreads++;
	rc = pthread_create(&t, &attr, worker, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		r->refs--;
		r->nthreads--;
	}
	return rc;
}

int resolver_submit(struct resolver *r, const char *host, int family, struct resolver_req **out)
{
	struct resolver_req *q = calloc(1, sizeof *q);

	if (!q)
		return ENOMEM;
	q->host = strdup(host);
	if (!q->host) {
		free(q);
		return ENOMEM;
	}
	q->family = family;
	q->r = r;
	q->state = Q_QUEUED;
	pthread_mutex_lock(&r->mu);
	if (r->idle == 0 && r->nthreads < r->max_threads) {
		int rc = start_thread(r);
		if (rc != 0 && r->nthreads == 0) {
			pthread_mutex_unlock(&r->mu);
			free_req(q);
			return rc;
		}
	}
	q->id = r->next_id++;
	if (r->tail)
		r->tail->next = q;
	else
		r->head = q;
	r->tail = q;
	r->refs++;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	*out = q;
	return 0;
}

uint64_t resolver_id(const struct resolver_req *q)
{
	return q->id;
}

int resolver_result(struct resolver_req *q, const struct addrinfo **ai, int *gai_err, int *sys_err)
{
	int done;

	pthread_mutex_lock(&q->r->mu);
	done = q->state == Q_DONE;
	pthread_mutex_unlock(&q->r->mu);
	if (!done)
		return 0;
	*ai = q->ai;
	*gai_err = q->gai_err;
	*sys_err = q->sys_err;
	return 1;
}

void resolver_release(struct resolver_req *q)
{
	struct resolver *r = q->r;

	pthread_mutex_lock(&r->mu);
	if (q->state == Q_RUNNING) {
		q->released = 1;        /* its helper frees it */
		pthread_mutex_unlock(&r->mu);
		return;
	}
	if (q->state == Q_QUEUED) {
		struct resolver_req **pp = &r->head, *prev = NULL;
		while (*pp != q) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		*pp = q->next;
		if (r->tail == q)
			r->tail = prev;
	} else {
		/* Q_DONE: take back its announcement if not drained yet. */
		for (size_t i = 0; i < r->ndone; i++) {
			if (r->done[i] == q->id) {
				memmove(r->done + i, r->done + i + 1, (r->ndone - i - 1) * sizeof *r->done);
				r->ndone--;
				break;
			}
		}
	}
	free_req(q);
	unref_unlock(r);
}

size_t resolver_drain(struct resolver *r, uint64_t *ids, size_t max)
{
	uint64_t v;
	size_t n;

	pthread_mutex_lock(&r->mu);
	/* Reset the counter; EAGAIN just means nothing new was signalled. */
	if (r->efd >= 0) {
		ssize_t rd = read(r->efd, &v, sizeof v);
		(void)rd;
	}
	n = r->ndone < max ? r->ndone : max;
	if (n) {
		memcpy(ids, r->done, n * sizeof *ids);
		memmove(r->done, r->done + n, (r->ndone - n) * sizeof *ids);
		r->ndone -= n;
	}
	pthread_mutex_unlock(&r->mu);
	return n;
}

unsigned resolver_threads(struct resolver *r)
{
	unsigned n;

	pthread_mutex_lock(&r->mu);
	n = r->nthreads;
	pthread_mutex_unlock(&r->mu);
	return n;
}
