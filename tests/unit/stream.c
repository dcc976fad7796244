/*
 * stream.c (test) - unit tests of src/core/stream.c over real pipes and
 * socketpairs, TAP output: random write chunkings vs line extraction, lines
 * longer than the buffer, EOF with and without a final newline, EAGAIN,
 * sticky errors, direct and buffered writes, EPIPE.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream.h"
#include "tap.h"

static void nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Pull every complete line out of s into out (joined with '|'). */
static void take_lines(stream_t *s, char *out, size_t *olen, int at_eof)
{
	ssize_t at;

	while ((at = stream_find(s, "\n", 1)) >= 0) {
		memcpy(out + *olen, buf_peek(&s->rb), (size_t)at);
		*olen += (size_t)at;
		out[(*olen)++] = '|';
		stream_consume(s, (size_t)at + 1);
	}
	if (at_eof && buf_len(&s->rb)) {
		size_t n = buf_len(&s->rb);
		memcpy(out + *olen, buf_peek(&s->rb), n);
		*olen += n;
		out[(*olen)++] = '|';
		stream_consume(s, n);
	}
}

/* Random text with lines of random length, some longer than bufsize. */
static size_t make_text(char *p, size_t n, int final_nl)
{
	size_t i = 0;

	while (i < n) {
		size_t len = (size_t)(rand() % 8 == 0 ? rand() % 3000 : rand() % 40);
		while (len-- && i < n)
			p[i++] = (char)('a' + rand() % 26);
		if (i < n)
			p[i++] = '\n';
	}
	if (final_nl)
		p[n - 1] = '\n';
	else if (p[n - 1] == '\n')
		p[n - 1] = 'z';
	return n;
}

static void expected_lines(const char *p, size_t n, char *out, size_t *olen)
{
	size_t i;

	*olen = 0;
	for (i = 0; i < n; i++)
		out[(*olen)++] = p[i] == '\n' ? '|' : p[i];
	if (n && p[n - 1] != '\n')
		out[(*olen)++] = '|';
}

static void run_chunked(int use_socket, int final_nl, unsigned seed)
{
	enum { N = 200000 };
	static char text[N], got[N + 16], want[N + 16];
	int fds[2], rc, eof = 0;
	size_t off = 0, glen = 0, wlen, fill;
	stream_t s;
	char name[128];

	srand(seed);
	make_text(text, N, final_nl);
	expected_lines(text, N, want, &wlen);
	if (use_socket)
		socketpair(AF_UNIX, SOCK_STREAM, 0, fds);
	else
		rc = pipe(fds), (void)rc;
	nonblock(fds[0]);
	stream_init(&s, fds[0], 512);   /* small buffer: lines exceed it */
	while (!eof) {
		if (off < N) {
			size_t chunk = 1 + (size_t)rand() % 1500;
			ssize_t w;
			if (chunk > N - off)
				chunk = N - off;
			w = write(fds[1], text + off, chunk);
			if (w > 0)
				off += (size_t)w;
			if (off == N)
				close(fds[1]);
		}
		do
			rc = stream_fill(&s, 0, &fill);
		while (rc == 0 && fill > 0 && rand() % 2);
		if (rc == 0 && fill == 0)
			eof = 1;
		else if (rc != 0 && rc != EAGAIN)
			break;
		take_lines(&s, got, &glen, eof);
	}
	snprintf(name, sizeof name, "%s, %s final newline: random chunks give the same lines",
		 use_socket ? "socketpair" : "pipe", final_nl ? "with" : "without");
	ok(eof && glen == wlen && memcmp(got, want, wlen) == 0, "%s", name);
	stream_close(&s, 1);
}

static void test_eagain_and_eof(void)
{
	int fds[2];
	size_t got;
	stream_t s;

	if (pipe(fds) < 0)
		return;
	nonblock(fds[0]);
	stream_init(&s, fds[0], 0);
	ok(s.bufsize == STREAM_DEFAULT_BUFSIZE, "default buffer size");
	ok(stream_fill(&s, 0, &got) == EAGAIN && got == 0, "empty pipe: EAGAIN");
	ok(write(fds[1], "ab", 2) == 2, "write");
	ok(stream_fill(&s, 0, &got) == 0 && got == 2, "fill gets 2 bytes");
	ok(stream_find(&s, "\n", 1) == -1 && s.scan == 2, "scan cache advances");
	close(fds[1]);
	ok(stream_fill(&s, 0, &got) == 0 && got == 0 && s.eof, "EOF after writer closes");
	ok(stream_fill(&s, 0, &got) == 0 && got == 0, "EOF is sticky");
	ok(buf_len(&s.rb) == 2, "bytes survive EOF");
	stream_close(&s, 1);
	ok(s.fd == -1 && s.closed && stream_close(&s, 1) == 0, "close is idempotent");
	stream_init(&s, -1, 0);
	ok(stream_fill(&s, 0, &got) == EBADF, "fill on backend stream: EBADF");
	ok(stream_feed(&s, "x\r\ny", 4) == 0 && stream_find(&s, "\r\n", 2) == 1, "feed + find CRLF");
	stream_consume(&s, 3);
	ok(buf_len(&s.rb) == 1 && s.scan == 0, "consume adjusts scan cache");
	stream_close(&s, 0);
}

static void test_fill_all(void)
{
	int fds[2];
	stream_t s;
	static char big[300000];
	size_t off = 0;
	ssize_t w;
	int rc = EAGAIN;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
		return;
	nonblock(fds[0]);
	nonblock(fds[1]);
	memset(big, 'q', sizeof big);
	stream_init(&s, fds[0], 1024);
	while (rc == EAGAIN) {
		if (off < sizeof big) {
			w = write(fds[1], big + off, sizeof big - off);
			if (w > 0)
				off += (size_t)w;
			if (off == sizeof big)
				close(fds[1]);
		}
		rc = stream_fill_all(&s, 0);
	}
	ok(rc == 0 && s.eof && buf_len(&s.rb) == sizeof big, "fill_all reads 300000 bytes to EOF");
	stream_close(&s, 1);
}

static void test_write(void)
{
	int fds[2], rc;
	stream_t s;
	static char big[1 << 20], sink[1 << 20];
	size_t done, total = 0;
	ssize_t r;

	signal(SIGPIPE, SIG_IGN);
	if (pipe(fds) < 0)
		return;
	nonblock(fds[1]);
	nonblock(fds[0]);
	stream_init(&s, fds[1], 0);
	memset(big, 'w', sizeof big);
	rc = stream_write(&s, big, sizeof big, &done);
	ok(rc == EAGAIN && done > 0 && done < sizeof big, "large write stops at EAGAIN with progress");
	total = done;
	while (total < sizeof big) {
		r = read(fds[0], sink, sizeof sink);
		rc = stream_write(&s, big + total, sizeof big - total, &done);
		total += done;
		if (rc != 0 && rc != EAGAIN)
			break;
		(void)r;
	}
	ok(total == sizeof big, "large write completes as the reader drains");
	while (read(fds[0], sink, sizeof sink) > 0)
		;
	ok(buf_append(&s.wb, "abc", 3) == 0 && stream_flush(&s) == 0 && buf_len(&s.wb) == 0, "flush");
	ok(read(fds[0], sink, 10) == 3 && memcmp(sink, "abc", 3) == 0, "flushed bytes arrive");
	close(fds[0]);
	buf_append(&s.wb, "x", 1);
	ok(stream_flush(&s) == EPIPE && buf_len(&s.wb) == 1, "EPIPE reported, bytes kept");
	ok(stream_write(&s, "y", 1, &done) == EPIPE && done == 0, "direct write: EPIPE");
	stream_close(&s, 1);
	ok(stream_write(&s, "y", 1, &done) == EBADF, "write after close: EBADF");
}

int main(void)
{
	unsigned seed;

	test_eagain_and_eof();
	for (seed = 1; seed <= 3; seed++) {
		run_chunked(0, 1, seed);
		run_chunked(0, 0, seed + 10);
		run_chunked(1, 1, seed + 20);
		run_chunked(1, 0, seed + 30);
	}
	test_fill_all();
	test_write();
	return done_testing();
}
