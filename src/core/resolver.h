/*
 * resolver.h - name resolution off the event loop: getaddrinfo(3) runs in
 * a small pool of helper threads; each finished request is announced on
 * an eventfd the loop waits on, so the loop itself never blocks.
 *
 * Usage (all calls from the loop's thread):
 *   resolver_new(&r, 4)              pool with at most 4 threads (started
 *                                    on demand, gone after 10 s idle);
 *   resolver_submit(r, host, fam, &q) queue a lookup -> request q (id > 0);
 *   poll resolver_fd(r) readable ->  resolver_drain(r, ids, n): the ids
 *                                    of requests that finished;
 *   resolver_result(q, &ai, &gai, &sys) once finished;
 *   resolver_release(q)              drop the request at any time: a
 *                                    queued one is never looked up, a
 *                                    running one is freed by its thread,
 *                                    a finished one's id is withdrawn.
 * resolver_free(r) drops the owner's reference; threads busy in
 * getaddrinfo finish and free what is left.  Helper threads start with
 * every signal blocked, so signals stay with the loop's thread.
 */
#ifndef FIBERS_RESOLVER_H
#define FIBERS_RESOLVER_H

#include <stddef.h>
#include <stdint.h>

struct addrinfo;
struct resolver;
struct resolver_req;

/* New pool: 0 and *out, or errno (eventfd, memory). */
int resolver_new(struct resolver **out, unsigned max_threads);
/* Drop the owner's reference (closes the eventfd). */
void resolver_free(struct resolver *r);
/* The eventfd: readable while finished requests are not drained. */
int resolver_fd(const struct resolver *r);

/* Queue a lookup of host (family AF_UNSPEC, AF_INET or AF_INET6; stream
 * sockets).  0 and *out, or errno (ENOMEM, EAGAIN: no thread could be
 * started and none is running). */
int resolver_submit(struct resolver *r, const char *host, int family, struct resolver_req **out);
/* The request's id (> 0, unique in its pool). */
uint64_t resolver_id(const struct resolver_req *q);
/* Finished?  Then 1 and: *ai (owned by q) or, on failure, *gai_err (an
 * EAI_* code) and *sys_err (errno for EAI_SYSTEM).  0 while pending. */
int resolver_result(struct resolver_req *q, const struct addrinfo **ai, int *gai_err, int *sys_err);
/* Drop the request (pending or finished); q is invalid afterwards, and
 * its id is not drained after this (even if it finished before). */
void resolver_release(struct resolver_req *q);

/* Reset the eventfd and store up to max ids of requests that finished
 * since the last drain; returns how many were stored.  Call again while it
 * returns max. */
size_t resolver_drain(struct resolver *r, uint64_t *ids, size_t max);

/* Threads currently alive in the pool (tests). */
unsigned resolver_threads(struct resolver *r);

#endif
