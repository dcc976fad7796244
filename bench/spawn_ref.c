/*
 * bench/spawn_ref.c - the same-run reference for bench/spawn.lua: spawn and
 * reap `true` with posix_spawnp + waitpid, N sequentially, then N with at
 * most C running at once.  Prints "seq=<per second> conc=<per second>".
 * Usage: spawn_ref [N=500] [C=50]
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static pid_t start(void)
{
	char *argv[] = { "true", NULL };
	pid_t pid;
	if (posix_spawnp(&pid, "true", NULL, NULL, argv, environ) != 0) {
		perror("posix_spawnp");
		exit(1);
	}
	return pid;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 500;
	int c = argc > 2 ? atoi(argv[2]) : 50;
	int st;

	double t0 = now();
	for (int i = 0; i < n; i++) {
		pid_t pid = start();
		while (waitpid(pid, &st, 0) < 0)
			;
	}
	double seq = n / (now() - t0);

	t0 = now();
	int started = 0, running = 0;
	while (started < n || running > 0) {
		while (running < c && started < n) {
			start();
			started++;
			running++;
		}
		if (wait(&st) > 0)
			running--;
	}
	double conc = n / (now() - t0);
	printf("seq=%.1f conc=%.1f\n", seq, conc);
	return 0;
}
