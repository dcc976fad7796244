/*
 * buf.h - growable byte buffer with read and write cursors (plain C).
 *
 * Layout: data[0 .. rd) consumed, data[rd .. wr) readable, data[wr .. cap)
 * free.  Reading advances rd, writing advances wr.  Free space is made by
 * compaction (moving the readable bytes to the front) only when that is
 * cheap relative to what it frees, otherwise by geometric growth, so a
 * stream of appends and consumes costs amortised O(1) per byte: no
 * quadratic copying.  Functions return 0 or a positive errno (ENOMEM).
 */
#ifndef FIBERS_BUF_H
#define FIBERS_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Optional accounting of a buffer's memory (a host charges it to whoever
 * the buffer works for).  charge(ud, owner, delta) is told of every change
 * of capacity, before a growth (delta > 0) and after a release (delta < 0);
 * a non-zero return refuses the growth, which then fails with ENOMEM.  A
 * release is never refused.  The sum of the deltas is the capacity held.
 */
typedef struct buf_acct {
	int (*charge)(void *ud, uint64_t owner, long long delta);
	void *ud;
	uint64_t owner;
} buf_acct_t;

typedef struct buf {
	char *data;
	size_t cap;
	size_t rd;
	size_t wr;
	const buf_acct_t *acct; /* NULL: not accounted */
} buf_t;

/* Initialise an empty buffer (no allocation until the first reserve). */
void buf_init(buf_t *b);
/* Release the memory of b; it is left empty and reusable (accounting kept). */
void buf_free(buf_t *b);

/* Number of readable bytes. */
static inline size_t buf_len(const buf_t *b) { return b->wr - b->rd; }
/* Pointer to the first readable byte (valid until the next mutation). */
static inline const char *buf_peek(const buf_t *b) { return b->data + b->rd; }
/* Pointer to the free space at the write end. */
static inline char *buf_wptr(buf_t *b) { return b->data + b->wr; }
/* Number of free bytes at the write end. */
static inline size_t buf_wfree(const buf_t *b) { return b->cap - b->wr; }

/* Ensure at least n free bytes at the write end (compacts or grows). */
int buf_reserve(buf_t *b, size_t n);
/* Mark n bytes written into the free space as readable. */
void buf_commit(buf_t *b, size_t n);
/* Append n bytes from p. */
int buf_append(buf_t *b, const void *p, size_t n);
/* Drop n readable bytes from the front (n <= buf_len). */
void buf_consume(buf_t *b, size_t n);
/* Drop everything readable. */
void buf_clear(buf_t *b);
/* Release memory beyond keep bytes of capacity when the buffer is empty. */
void buf_shrink(buf_t *b, size_t keep);
/*
 * Offset (from the read cursor) of the first occurrence of term[0..tlen)
 * at or after offset from, or -1.  Uses memchr on the first byte.
 */
ssize_t buf_find(const buf_t *b, const char *term, size_t tlen, size_t from);

#endif
