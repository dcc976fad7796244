/*
 * buf.c - growable byte buffer with read/write cursors; see buf.h.
 *
 * Owns only memory management of one contiguous region.  Knows nothing of
 * file descriptors (stream.c) or Lua (src/lua/lstream.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define BUF_MIN_CAP 256

/* Initialise an empty buffer (no allocation until the first reserve). */
void buf_init(buf_t *b)
{
	b->data = NULL;
	b->cap = b->rd = b->wr = 0;
	b->acct = NULL;
}

/* Ask the accounting for delta more bytes of capacity (0 or ENOMEM). */
static int charge(const buf_t *b, size_t delta)
{
	if (b->acct == NULL || delta == 0)
		return 0;
	if (delta > (size_t)INT64_MAX)
		return ENOMEM;
	return b->acct->charge(b->acct->ud, b->acct->owner, (long long)delta) ? ENOMEM : 0;
}

/* Tell the accounting that delta bytes of capacity were released. */
static void release(const buf_t *b, size_t delta)
{
	if (b->acct != NULL && delta != 0)
		b->acct->charge(b->acct->ud, b->acct->owner, -(long long)delta);
}

/* Release the memory of b; it is left empty and reusable (accounting kept). */
void buf_free(buf_t *b)
{
	free(b->data);
	release(b, b->cap);
	b->data = NULL;
	b->cap = b->rd = b->wr = 0;
}

/* Move the readable bytes to the front of the region. */
static void buf_compact(buf_t *b)
{
	size_t len = buf_len(b);

	if (b->rd == 0)
		return;
	if (len)
		memmove(b->data, b->data + b->rd, len);
	b->rd = 0;
	b->wr = len;
}

/* Ensure at least n free bytes at the write end (compacts or grows). */
int buf_reserve(buf_t *b, size_t n)
{
	size_t len = buf_len(b), need, cap;
	char *p;

	if (buf_wfree(b) >= n)
		return 0;
	if (len == 0) {
		b->rd = b->wr = 0;
		if (b->cap >= n)
			return 0;
	}
	/*
	 * Compaction moves len bytes; it pays off when it frees at least as
	 * many bytes as it moves (rd >= len) and the result is big enough.
	 * Otherwise grow geometrically (and compact while copying).
	 */
	if (b->rd >= len && b->cap - len >= n) {
		buf_compact(b);
		return 0;
	}
	if (n > (size_t)-1 / 2 - len)
		return ENOMEM;
	need = len + n;
	cap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
	while (cap < need)
		cap *= 2;
	if (charge(b, cap - b->cap))
		return ENOMEM;
	if (b->rd == 0) {
		p = realloc(b->data, cap);
		if (!p) {
			release(b, cap - b->cap);
			return ENOMEM;
		}
	} else {
		p = malloc(cap);
		if (!p) {
			release(b, cap - b->cap);
			return ENOMEM;
		}
		if (len)
			memcpy(p, b->data + b->rd, len);
		free(b->data);
		b->rd = 0;
		b->wr = len;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

/* Mark n bytes written into the free space as readable. */
void buf_commit(buf_t *b, size_t n)
{
	b->wr += n;
}

/* Append n bytes from p. */
int buf_append(buf_t *b, const void *p, size_t n)
{
	int err;

	if (n == 0)
		return 0;
	err = buf_reserve(b, n);
	if (err)
		return err;
	memcpy(b->data + b->wr, p, n);
	b->wr += n;
	return 0;
}

/* Drop n readable bytes from the front (n <= buf_len). */
void buf_consume(buf_t *b, size_t n)
{
	if (n >= buf_len(b)) {
		b->rd = b->wr = 0;
		return;
	}
	b->rd += n;
}

/* Drop everything readable. */
void buf_clear(buf_t *b)
{
	b->rd = b->wr = 0;
}

/* Release memory beyond keep bytes of capacity when the buffer is empty. */
void buf_shrink(buf_t *b, size_t keep)
{
	char *p;

	if (buf_len(b) != 0 || b->cap <= keep)
		return;
	b->rd = b->wr = 0;
	if (keep == 0) {
		free(b->data);
		release(b, b->cap);
		b->data = NULL;
		b->cap = 0;
		return;
	}
	p = realloc(b->data, keep);
	if (p) {
		release(b, b->cap - keep);
		b->data = p;
		b->cap = keep;
	}
}

/* Offset of the first occurrence of term at or after from, or -1. */
ssize_t buf_find(const buf_t *b, const char *term, size_t tlen, size_t from)
{
	size_t len = buf_len(b);

	if (tlen == 0)
		return from <= len ? (ssize_t)from : -1;
	if (from + tlen > len)
		return -1; /* (also: no NULL + 0 on a buffer never allocated) */
	const char *base = buf_peek(b), *p;
	while (from + tlen <= len) {
		p = memchr(base + from, term[0], len - from - tlen + 1);
		if (!p)
			return -1;
		from = (size_t)(p - base);
		if (tlen == 1 || memcmp(p + 1, term + 1, tlen - 1) == 0)
			return (ssize_t)from;
		from++;
	}
	return -1;
}
