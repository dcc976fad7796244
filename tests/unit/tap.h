/*
 * tap.h - the TAP helpers of every C unit test in tests/unit/: ok, is_int,
 * is_str (each printing "ok N - name" / "not ok N - name", the place of a
 * failed check and, for is_*, what was got and expected), and the plan
 * printed at the end by done_testing().  Names are printf formats.
 */
#ifndef FIBERS_TAP_H
#define FIBERS_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int t_n, t_failed;

/* Print one result line (and, when it failed and file is set, where);
 * returns cond. */
__attribute__((format(printf, 4, 5), unused))
static int t_result(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", cond ? "" : "not ", ++t_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		t_failed++;
		if (file)
			printf("# at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

#define ok(cond, ...) t_result((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, exp, ...)                                                \
	do {                                                                 \
		long long g_ = (long long)(got), e_ = (long long)(exp);      \
		if (!ok(g_ == e_, __VA_ARGS__))                              \
			printf("#      got: %lld\n# expected: %lld\n", g_, e_); \
	} while (0)

#define is_str(got, exp, ...)                                                \
	do {                                                                 \
		const char *g_ = (got), *e_ = (exp);                         \
		if (!ok(g_ && strcmp(g_, e_) == 0, __VA_ARGS__))             \
			printf("#      got: '%s'\n# expected: '%s'\n",        \
			       g_ ? g_ : "(null)", e_);                      \
	} while (0)

/* Print the plan; the exit status of main: 1 when any check failed. */
__attribute__((unused))
static int done_testing(void)
{
	printf("1..%d\n", t_n);
	return t_failed ? 1 : 0;
}

#endif
