/*
 * stream.c - libFuzzer target for the stream line reader of the C core
 * (src/core/stream.c: stream_feed/stream_fill, stream_find with its scan
 * cache, stream_consume), fed random chunkings.  The input is
 *   byte 0    buffer size - 1 (tiny buffers force growth and compaction)
 *   byte 1    bit 0: bytes go through a real pipe + stream_fill instead of
 *             stream_feed
 *   then      chunks: a control byte c (terminator = TERMS[c & 3], length
 *             c >> 2, 0..63) followed by that many data bytes.
 * After each chunk every complete record ending in the chunk's terminator
 * is taken, as read_line does (find, then consume record + terminator), and
 * checked against a plain model (memmem over a copy of the unread bytes);
 * at the end the unterminated rest must equal the model's.  Any mismatch
 * aborts.  `make fuzz-stream` runs it; not in make check.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream.h"

static const struct {
	const char *s;
	size_t n;
} TERMS[4] = { { "\n", 1 }, { "\r\n", 2 }, { "\0", 1 }, { "abcab", 5 } };

struct model {
	char *p;
	size_t n, cap;
};

static void model_add(struct model *m, const uint8_t *p, size_t n)
{
	if (m->n + n > m->cap) {
		m->cap = (m->n + n) * 2 + 16;
		m->p = realloc(m->p, m->cap);
		if (m->p == NULL)
			abort();
	}
	memcpy(m->p + m->n, p, n);
	m->n += n;
}

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "stream fuzz: mismatch: %s\n", what);
		abort();
	}
}

/* Put n bytes into the stream, by feed or through the pipe. */
static void put(stream_t *s, int wfd, const uint8_t *p, size_t n)
{
	if (wfd < 0) {
		check(stream_feed(s, p, n) == 0, "stream_feed failed");
		return;
	}
	if (n == 0)
		return;
	check(write(wfd, p, n) == (ssize_t)n, "pipe write");
	size_t total = 0, got;
	while (total < n) {
		int err = stream_fill(s, 0, &got);
		check(err == 0 && got > 0, "stream_fill lost bytes");
		total += got;
	}
	check(total == n, "stream_fill read more than was written");
}

/* Take every complete record ending in term; compare with the model. */
static void take_records(stream_t *s, struct model *m, const char *term, size_t tlen)
{
	for (;;) {
		ssize_t at = stream_find(s, term, tlen);
		const char *hit = memmem(m->p, m->n, term, tlen);
		check(buf_len(&s->rb) == m->n, "buffered length");
		check(m->n == 0 || memcmp(buf_peek(&s->rb), m->p, m->n) == 0, "buffered bytes");
		if (hit == NULL) {
			check(at < 0, "found a terminator the model has not");
			return;
		}
		check(at == hit - m->p, "terminator offset");
		size_t take = (size_t)at + tlen;
		stream_consume(s, take);
		memmove(m->p, m->p + take, m->n - take);
		m->n -= take;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t bufsize = (size_t)data[0] + 1;
	int fds[2] = { -1, -1 };
	if ((data[1] & 1) && pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
		abort();
	stream_t s;
	stream_init(&s, fds[0], bufsize);
	struct model m = { malloc(16), 0, 16 }; /* never NULL: no NULL + 0 */
	if (m.p == NULL)
		abort();
	size_t i = 2;
	while (i < size) {
		uint8_t c = data[i++];
		size_t n = c >> 2;
		if (n > size - i)
			n = size - i;
		put(&s, fds[1], data + i, n);
		model_add(&m, data + i, n);
		i += n;
		take_records(&s, &m, TERMS[c & 3].s, TERMS[c & 3].n);
	}
	/* EOF: the rest is the final unterminated line */
	if (fds[1] >= 0) {
		close(fds[1]);
		size_t got;
		check(stream_fill(&s, 0, &got) == 0 && got == 0 && s.eof, "EOF after close");
	}
	check(buf_len(&s.rb) == m.n && (m.n == 0 || memcmp(buf_peek(&s.rb), m.p, m.n) == 0), "rest at EOF");
	stream_close(&s, fds[0] >= 0);
	free(m.p);
	return 0;
}
