/*
 * buf.c (test) - unit tests of src/core/buf.c, TAP output: append/consume
 * cursors, compaction vs growth, find across random contents, shrink, and
 * a linear-cost check (a FIFO of 64 MiB through a small buffer), and the
 * accounting hook (charge = capacity, refused growth, exact release).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "tap.h"

static void test_basic(void)
{
	buf_t b;

	buf_init(&b);
	ok(buf_len(&b) == 0 && b.data == NULL, "empty buffer allocates nothing");
	ok(buf_append(&b, "hello world", 11) == 0 && buf_len(&b) == 11, "append");
	ok(memcmp(buf_peek(&b), "hello world", 11) == 0, "peek");
	buf_consume(&b, 6);
	ok(buf_len(&b) == 5 && memcmp(buf_peek(&b), "world", 5) == 0, "consume");
	ok(buf_find(&b, "rl", 2, 0) == 2, "find two-byte terminator");
	ok(buf_find(&b, "d", 1, 0) == 4, "find last byte");
	ok(buf_find(&b, "x", 1, 0) == -1, "find missing");
	ok(buf_find(&b, "ldx", 3, 0) == -1, "terminator running off the end");
	ok(buf_find(&b, "o", 1, 2) == -1, "find respects from");
	buf_consume(&b, 5);
	ok(buf_len(&b) == 0 && b.rd == 0 && b.wr == 0, "drained buffer resets cursors");
	buf_free(&b);
	ok(b.data == NULL && b.cap == 0, "free");
}

static void test_compaction(void)
{
	buf_t b;
	char chunk[1000];
	size_t cap;

	memset(chunk, 'a', sizeof chunk);
	buf_init(&b);
	buf_append(&b, chunk, sizeof chunk);
	cap = b.cap;
	buf_consume(&b, 900);
	/* 100 left, 900 consumed: reserving cap-100 must compact, not grow. */
	ok(buf_reserve(&b, cap - 100) == 0 && b.cap == cap && b.rd == 0, "compaction instead of growth");
	ok(buf_len(&b) == 100 && buf_peek(&b)[99] == 'a', "compaction keeps bytes");
	/* Little consumed: growth (geometric). */
	buf_consume(&b, 1);
	ok(buf_reserve(&b, cap) == 0 && b.cap >= 2 * cap && b.rd == 0, "growth is geometric and compacts");
	ok(buf_len(&b) == 99, "growth keeps bytes");
	buf_shrink(&b, 64);
	ok(b.cap > 64, "shrink refuses while data is buffered");
	buf_clear(&b);
	buf_shrink(&b, 64);
	ok(b.cap == 64, "shrink when empty");
	buf_free(&b);
}

/* Random appends/consumes compared against a reference string. */
static void test_random(void)
{
	buf_t b;
	static char ref[1 << 20];
	size_t rlen = 0, rstart = 0, i;
	char tmp[5000];
	int good = 1, found_ok = 1;

	srand(42);
	buf_init(&b);
	for (i = 0; i < 20000 && good; i++) {
		size_t n = (size_t)rand() % sizeof tmp, k;
		for (k = 0; k < n; k++)
			tmp[k] = (char)('a' + rand() % 4);
		if (rstart + rlen + n > sizeof ref) {
			memmove(ref, ref + rstart, rlen);
			rstart = 0;
		}
		if (rlen + n < 200000) {
			memcpy(ref + rstart + rlen, tmp, n);
			rlen += n;
			buf_append(&b, tmp, n);
		}
		n = (size_t)rand() % (sizeof tmp + 1000);
		if (n > rlen)
			n = rlen;
		rstart += n;
		rlen -= n;
		buf_consume(&b, n);
		good = buf_len(&b) == rlen && memcmp(buf_peek(&b), ref + rstart, rlen) == 0;
		if (rlen > 3) {
			ssize_t at = buf_find(&b, "dcb", 3, 0);
			void *m = NULL;
			size_t k2;
			for (k2 = 0; k2 + 3 <= rlen; k2++)
				if (memcmp(ref + rstart + k2, "dcb", 3) == 0) {
					m = ref + rstart + k2;
					break;
				}
			if (m ? at != (ssize_t)((char *)m - (ref + rstart)) : at != -1)
				found_ok = 0;
		}
	}
	ok(good, "20000 random append/consume rounds match a reference");
	ok(found_ok, "find agrees with a naive search");
	ok(b.cap <= 4 * 200000, "capacity bounded by the live size");
	buf_free(&b);
}

/* 64 MiB through a FIFO that never holds more than 100 KiB. */
static void test_linear(void)
{
	buf_t b;
	static char chunk[65536];
	size_t total = 0, copies_cap;

	buf_init(&b);
	memset(chunk, 'x', sizeof chunk);
	while (total < (64u << 20)) {
		buf_append(&b, chunk, sizeof chunk - 7);
		buf_consume(&b, buf_len(&b) > 40000 ? buf_len(&b) - 40000 : 0);
		total += sizeof chunk - 7;
	}
	copies_cap = b.cap;
	ok(copies_cap <= 4 * 65536, "FIFO use keeps the capacity small");
	ok(buf_len(&b) == 40000, "FIFO keeps the tail");
	buf_free(&b);
}

struct acct_state {
	long long held, limit;
	int calls;
	uint64_t owner;
};

static int acct_charge(void *ud, uint64_t owner, long long delta)
{
	struct acct_state *a = ud;
	a->calls++;
	a->owner = owner;
	if (delta > 0 && a->held + delta > a->limit)
		return 1;
	a->held += delta;
	return 0;
}

static void test_accounting(void)
{
	struct acct_state st = { 0, 4096, 0, 0 };
	buf_acct_t acct = { acct_charge, &st, 42 };
	buf_t b;
	char chunk[1000];
	int i, err = 0;

	memset(chunk, 'x', sizeof chunk);
	buf_init(&b);
	b.acct = &acct;
	ok(buf_append(&b, "abc", 3) == 0 && st.held == (long long)b.cap && st.owner == 42,
	   "a growth is charged as the capacity, to the buffer's owner");
	for (i = 0; i < 10 && !err; i++)
		err = buf_append(&b, chunk, sizeof chunk);
	ok(err == ENOMEM && st.held == (long long)b.cap && b.cap <= 4096,
	   "a growth past the limit fails with ENOMEM and charges nothing more");
	ok(buf_len(&b) == 3 + (size_t)(i - 1) * sizeof chunk, "the data before the refusal is kept");
	buf_consume(&b, buf_len(&b));
	buf_shrink(&b, 256);
	ok(st.held == 256 && b.cap == 256, "a shrink releases the difference");
	buf_free(&b);
	ok(st.held == 0, "freeing releases the whole charge");
	ok(b.acct == &acct, "a freed buffer stays accounted");
	ok(buf_append(&b, chunk, sizeof chunk) == 0 && st.held == (long long)b.cap, "and is charged again");
	buf_free(&b);
	ok(st.held == 0, "released again");
}

int main(void)
{
	test_basic();
	test_compaction();
	test_random();
	test_linear();
	test_accounting();
	return done_testing();
}
