/*
 * tests/unit/resolver.c - src/core/resolver.c: a lookup of localhost is
 * announced on the eventfd with its id; released requests (queued,
 * running, or finished but not drained yet) are never announced; helper threads block every signal the
 * loop may take; the pool outlives its owner while a request holds it.
 * Only "localhost" is looked up (answered from /etc/hosts).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "resolver.h"
#include "tap.h"

/* Drain ids for up to ms milliseconds (until `want` ids were seen). */
static size_t collect(struct resolver *r, uint64_t *ids, size_t max, size_t want, int ms)
{
	size_t n = 0;
	struct pollfd p = { .fd = resolver_fd(r), .events = POLLIN };

	while (n < want && ms > 0) {
		if (poll(&p, 1, 50) > 0)
			n += resolver_drain(r, ids + n, max - n);
		ms -= 50;
	}
	return n;
}

static int has_loopback(const struct addrinfo *ai)
{
	for (; ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET) {
			const struct sockaddr_in *in = (const struct sockaddr_in *)ai->ai_addr;
			if ((ntohl(in->sin_addr.s_addr) >> 24) == 127)
				return 1;
		}
		if (ai->ai_family == AF_INET6) {
			const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ai->ai_addr;
			if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
				return 1;
		}
	}
	return 0;
}

/* SigBlk of every thread of this process but the main one all have the
 * signals a loop takes (HUP INT TERM CHLD USR1) blocked; -1 if no helper. */
static int helpers_block_signals(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int seen = 0, all = 1;
	pid_t me = getpid();

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char path[300], line[128];
		FILE *f;
		if (e->d_name[0] == '.' || atoi(e->d_name) == me)
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof line, f)) {
			unsigned long long m;
			if (sscanf(line, "SigBlk: %llx", &m) == 1) {
				int sigs[] = { SIGHUP, SIGINT, SIGTERM, SIGCHLD, SIGUSR1 };
				seen = 1;
				for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
					if (!(m & (1ULL << (sigs[i] - 1))))
						all = 0;
			}
		}
		fclose(f);
	}
	closedir(d);
	return seen ? all : -1;
}

int main(void)
{
	struct resolver *r;
	struct resolver_req *a, *b, *c, *d;
	const struct addrinfo *ai;
	uint64_t ids[16];
	int gai, sys;
	size_t n;

	is_int(resolver_new(&r, 1), 0, "resolver_new");
	ok(resolver_fd(r) >= 0, "an eventfd");
	is_int((int)resolver_threads(r), 0, "no thread before the first lookup");

	is_int(resolver_submit(r, "localhost", AF_UNSPEC, &a), 0, "submit localhost");
	ok(resolver_id(a) > 0, "request id %llu", (unsigned long long)resolver_id(a));
	is_int((int)resolver_threads(r), 1, "one helper started");
	n = collect(r, ids, 16, 1, 5000);
	is_int((int)n, 1, "one completion announced");
	ok(n == 1 && ids[0] == resolver_id(a), "with the request's id");
	ok(resolver_result(a, &ai, &gai, &sys) == 1, "result ready");
	is_int(gai, 0, "no error");
	ok(has_loopback(ai), "localhost has a loopback address");
	is_int(helpers_block_signals(), 1, "the helper thread blocks HUP INT TERM CHLD USR1");
	resolver_release(a);

	/* one thread: b runs or waits, c waits; both released at once are
	 * never announced, d (kept) is */
	is_int(resolver_submit(r, "localhost", AF_INET, &b), 0, "submit b");
	is_int(resolver_submit(r, "localhost", AF_INET, &c), 0, "submit c");
	is_int(resolver_submit(r, "localhost", AF_INET, &d), 0, "submit d");
	{
		uint64_t id_d = resolver_id(d);
		resolver_release(b);
		resolver_release(c);
		n = collect(r, ids, 16, 1, 5000);
		n += collect(r, ids + n, 16 - n, 16, 300);   /* anything later */
		is_int((int)n, 1, "only the kept request is announced");
		ok(n >= 1 && ids[0] == id_d, "and it is d");
	}
	is_int((int)resolver_threads(r), 1, "still one thread (max 1)");

	/* finished, not drained, then released: its id is withdrawn */
	is_int(resolver_submit(r, "localhost", AF_INET, &c), 0, "submit e");
	for (int i = 0; i < 500 && !resolver_result(c, &ai, &gai, &sys); i++)
		usleep(10000);
	ok(resolver_result(c, &ai, &gai, &sys) == 1, "e finished");
	resolver_release(c);
	is_int((int)collect(r, ids, 16, 16, 200), 0, "released after finishing: not announced");

	/* the owner goes first: a pending request keeps the pool alive */
	is_int(resolver_submit(r, "localhost", AF_UNSPEC, &b), 0, "submit before free");
	resolver_free(r);
	usleep(200000);
	ok(resolver_result(b, &ai, &gai, &sys) == 1, "the lookup finished after the owner left");
	resolver_release(b);
	resolver_release(d);
	usleep(50000);
	ok(1, "released after the owner: no crash");
	done_testing();
}
