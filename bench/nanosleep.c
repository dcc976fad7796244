/*
 * bench/nanosleep.c - the reference for the "1 ms sleeps" benchmark
 * (doc/quality.md §2): N (default 1000) relative clock_nanosleep(1 ms) calls on
 * CLOCK_MONOTONIC, printing the mean and p99 oversleep in microseconds as
 * "mean p99" on one line.  Not installed; built by `make bench`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1000;
	if (n < 1)
		n = 1;
	double *over = calloc((size_t)n, sizeof *over);
	if (!over)
		return 1;
	struct timespec d = { 0, 1000000 };
	double sum = 0;
	for (int i = 0; i < n; i++) {
		double t0 = now_us();
		clock_nanosleep(CLOCK_MONOTONIC, 0, &d, NULL);
		over[i] = now_us() - t0 - 1000.0;
		sum += over[i];
	}
	qsort(over, (size_t)n, sizeof *over, cmp_double);
	int k = (n * 99 + 99) / 100 - 1;
	printf("%.1f %.1f\n", sum / n, over[k]);
	free(over);
	return 0;
}
