/*
 * stream.c - buffered non-blocking fd stream; see stream.h.
 *
 * Owns the syscalls on one fd (read, write) and the policy of chunk sizes.
 * Does not wait for readiness, does not know Lua or the scheduler.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "stream.h"

/* Initialise s over fd (may be -1 for a backend-driven stream). */
void stream_init(stream_t *s, int fd, size_t bufsize)
{
	memset(s, 0, sizeof *s);
	s->fd = fd;
	s->bufsize = bufsize ? bufsize : STREAM_DEFAULT_BUFSIZE;
	buf_init(&s->rb);
	buf_init(&s->wb);
}

/* Account both buffers' memory through charge, from now on. */
void stream_set_acct(stream_t *s, int (*charge)(void *, uint64_t, long long), void *ud,
		     uint64_t owner)
{
	s->acct.charge = charge;
	s->acct.ud = ud;
	s->acct.owner = owner;
	s->rb.acct = s->wb.acct = charge ? &s->acct : NULL;
}

/* Free the buffers; does not close the fd (see stream_close). */
void stream_destroy(stream_t *s)
{
	buf_free(&s->rb);
	buf_free(&s->wb);
	s->scan = 0;
}

/* For pollfirst streams: 1 when fd is ready for events now, else 0. */
static int ready_now(const stream_t *s, short events)
{
	struct pollfd p = { .fd = s->fd, .events = events, .revents = 0 };

	if (!s->pollfirst)
		return 1;
	return poll(&p, 1, 0) > 0;
}

/* Read once from the fd into the read buffer. */
int stream_fill(stream_t *s, size_t want, size_t *got)
{
	size_t room = s->bufsize;
	ssize_t n;
	int err;

	*got = 0;
	if (s->rerr)
		return s->rerr;
	if (s->eof)
		return 0;
	if (s->fd < 0)
		return EBADF;
	if (want > room)
		room = want < STREAM_MAX_FILL ? want : STREAM_MAX_FILL;
	/* Use what is already free when it is a good chunk. */
	if (buf_wfree(&s->rb) < room) {
		err = buf_reserve(&s->rb, room);
		if (err)
			return err;
	}
	if (!ready_now(s, POLLIN))
		return EAGAIN;
	do
		n = read(s->fd, buf_wptr(&s->rb), buf_wfree(&s->rb));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		err = errno;
		if (err == EAGAIN || err == EWOULDBLOCK)
			return EAGAIN;
		s->rerr = err;
		return err;
	}
	if (n == 0) {
		s->eof = 1;
		return 0;
	}
	buf_commit(&s->rb, (size_t)n);
	*got = (size_t)n;
	return 0;
}

/* Fill until EAGAIN, EOF, an error or limit bytes, growing geometrically. */
int stream_fill_all(stream_t *s, size_t limit)
{
	size_t got, want;
	int err;

	for (;;) {
		/* Ask for as much again as we hold: geometric growth. */
		want = buf_len(&s->rb);
		if (limit > 0) {
			if (want >= limit)
				return 0;
			if (want > limit - want)
				want = limit - want;
		}
		err = stream_fill(s, want, &got);
		if (err)
			return err;
		if (got == 0)
			return 0;
	}
}

/* Append bytes obtained elsewhere (backend-driven streams). */
int stream_feed(stream_t *s, const void *p, size_t n)
{
	return buf_append(&s->rb, p, n);
}

/* Offset of term in the read buffer, or -1; remembers how far it looked. */
ssize_t stream_find(stream_t *s, const char *term, size_t tlen)
{
	size_t from = 0, len = buf_len(&s->rb);
	ssize_t at;
	int cached = tlen > 0 && tlen <= STREAM_SCAN_TERM_MAX;

	if (cached && s->scan_tlen == tlen && memcmp(s->scan_term, term, tlen) == 0)
		from = s->scan;
	at = buf_find(&s->rb, term, tlen, from);
	if (cached) {
		memcpy(s->scan_term, term, tlen);
		s->scan_tlen = tlen;
		/* A match may start in the last tlen-1 bytes once more arrive. */
		if (at >= 0)
			s->scan = (size_t)at;
		else
			s->scan = len >= tlen ? len - tlen + 1 : 0;
	}
	return at;
}

/* Drop n bytes from the front of the read buffer. */
void stream_consume(stream_t *s, size_t n)
{
	buf_consume(&s->rb, n);
	s->scan = s->scan > n ? s->scan - n : 0;
	/*
	 * Give back a huge buffer (read_all, long lines) once drained; buffers
	 * up to one maximal fill stay, so big reads do not churn the allocator.
	 */
	if (buf_len(&s->rb) == 0 && s->rb.cap > 4 * s->bufsize && s->rb.cap > STREAM_MAX_FILL)
		buf_shrink(&s->rb, s->bufsize);
}

/* Write n bytes from p straight to the fd until done or EAGAIN. */
int stream_write(stream_t *s, const char *p, size_t n, size_t *done)
{
	ssize_t w;

	*done = 0;
	if (s->fd < 0)
		return EBADF;
	while (*done < n) {
		if (!ready_now(s, POLLOUT))
			return EAGAIN;
		w = write(s->fd, p + *done, n - *done);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return EAGAIN;
			return errno;
		}
		*done += (size_t)w;
	}
	return 0;
}

/* Write out the write buffer: 0 when empty, EAGAIN, or an errno. */
int stream_flush(stream_t *s)
{
	size_t done = 0;
	int err;

	if (buf_len(&s->wb) == 0)
		return 0;
	err = stream_write(s, buf_peek(&s->wb), buf_len(&s->wb), &done);
	buf_consume(&s->wb, done);
	if (buf_len(&s->wb) == 0 && s->wb.cap > 4 * s->bufsize)
		buf_shrink(&s->wb, 0);
	return err;
}

/* Close: free buffers and close the fd if close_fd; returns close's errno. */
int stream_close(stream_t *s, int close_fd)
{
	int err = 0;

	if (s->closed)
		return 0;
	s->closed = 1;
	if (close_fd && s->fd >= 0 && close(s->fd) < 0 && errno != EINTR)
		err = errno;
	s->fd = -1;
	stream_destroy(s);
	return err;
}
