/*
 * tests/unit/proc_reap.c - TAP tests of the exit side (src/core/proc_pidfd.c,
 * proc_sigchld.c): both wake-up backends (pidfd readiness, SIGCHLD
 * self-pipe) driving the one waitpid(-1) reaper, dispatch by pid, orphans
 * (children the caller does not know), status decoding, and the
 * FIBERS_PROC=sigchld override.
 */
#include "config.h"

#include <signal.h>

#include "proc_test.h"

#define NCHILD 24

struct table {
	pid_t pid[NCHILD];
	int status[NCHILD];
	int seen[NCHILD];
	int orphans;
	pid_t orphan_pid;
};

static void on_exit_cb(void *ud, pid_t pid, int status)
{
	struct table *t = ud;
	for (int i = 0; i < NCHILD; i++) {
		if (t->pid[i] == pid) {
			t->seen[i]++;
			t->status[i] = status;
			return;
		}
	}
	t->orphans++;
	t->orphan_pid = pid;
}

static char script[NCHILD][32];
static char *argvs[NCHILD][4];

static int spawn_all(struct table *t, int *pidfds, unsigned flags)
{
	memset(t, 0, sizeof *t);
	for (int i = 0; i < NCHILD; i++) {
		struct proc_spec s;
		struct proc_result r;
		memset(&s, 0, sizeof s);
		/* a mix of codes, and one death by signal */
		if (i == 5)
			snprintf(script[i], sizeof script[i], "kill -USR1 $$");
		else
			snprintf(script[i], sizeof script[i], "exit %d", (i * 11) % 256);
		argvs[i][0] = "sh";
		argvs[i][1] = "-c";
		argvs[i][2] = script[i];
		argvs[i][3] = NULL;
		s.file = "sh";
		s.argv = argvs[i];
		s.flags = flags;
		if (proc_spawn(&s, &r) != 0 || r.child_step)
			return -1;
		t->pid[i] = r.pid;
		pidfds[i] = r.pidfd;
	}
	return 0;
}

static int count_seen(const struct table *t)
{
	int n = 0;
	for (int i = 0; i < NCHILD; i++)
		n += t->seen[i] ? 1 : 0;
	return n;
}

static void check_statuses(const struct table *t, const char *label)
{
	int good = 1, once = 1;
	for (int i = 0; i < NCHILD; i++) {
		int code, kind = proc_decode_status(t->status[i], &code);
		if (i == 5)
			good &= kind == 2 && code == SIGUSR1;
		else
			good &= kind == 1 && code == (i * 11) % 256;
		once &= t->seen[i] == 1;
	}
	ok(once, "%s: every child dispatched exactly once", label);
	ok(good, "%s: exit codes and the signal decoded", label);
}

static void test_pidfd(void)
{
	struct table t;
	int fds[NCHILD];
	if (spawn_all(&t, fds, PROC_NEWPGRP | PROC_PIDFD) < 0) {
		ok(0, "pidfd: spawn");
		return;
	}
	int have = 1;
	for (int i = 0; i < NCHILD; i++)
		have &= fds[i] >= 0;
	ok(have, "pidfd: every child has a pidfd");
	/* an orphan: a child the table does not know */
	pid_t orphan = fork();
	if (orphan == 0)
		_exit(9);
	int wakeups = 0;
	for (int round = 0; round < 1000 && (count_seen(&t) < NCHILD || !t.orphans); round++) {
		struct pollfd pf[NCHILD];
		int n = 0;
		for (int i = 0; i < NCHILD; i++) {
			if (!t.seen[i]) {
				pf[n].fd = fds[i];
				pf[n].events = POLLIN;
				n++;
			}
		}
		if (n && poll(pf, (nfds_t)n, 2000) > 0)
			wakeups++;
		else if (!n)
			usleep(2000);
		proc_reap(on_exit_cb, &t);
	}
	ok(wakeups > 0, "pidfd: readiness woke the reaper");
	is_int(count_seen(&t), NCHILD, "pidfd: all children reaped");
	check_statuses(&t, "pidfd");
	is_int(t.orphans, 1, "pidfd: one orphan reported");
	is_int(t.orphan_pid, orphan, "pidfd: the orphan's pid");
	for (int i = 0; i < NCHILD; i++)
		close(fds[i]);
	is_int(proc_reap(on_exit_cb, &t), 0, "nothing left to reap");
}

static void test_sigchld(void)
{
	struct table t;
	int fds[NCHILD];
	int rfd = proc_sigchld_open();
	ok(rfd >= 0, "sigchld: self-pipe open");
	is_int(proc_sigchld_open(), rfd, "sigchld: open is idempotent");
	if (spawn_all(&t, fds, PROC_NEWPGRP) < 0) {
		ok(0, "sigchld: spawn");
		return;
	}
	int nofd = 1;
	for (int i = 0; i < NCHILD; i++)
		nofd &= fds[i] == -1;
	ok(nofd, "sigchld: no pidfds asked, none given");
	int wakeups = 0;
	for (int round = 0; round < 1000 && count_seen(&t) < NCHILD; round++) {
		struct pollfd pf = { rfd, POLLIN, 0 };
		int n = poll(&pf, 1, 2000);
		if (n > 0) {
			wakeups++;
			proc_sigchld_drain();
		}
		proc_reap(on_exit_cb, &t);
	}
	ok(wakeups > 0, "sigchld: the self-pipe woke the reaper");
	is_int(count_seen(&t), NCHILD, "sigchld: all children reaped");
	check_statuses(&t, "sigchld");
	is_int(t.orphans, 0, "sigchld: no orphans");
	proc_sigchld_close();
	struct sigaction sa;
	sigaction(SIGCHLD, NULL, &sa);
	ok(sa.sa_handler == SIG_DFL, "sigchld: disposition restored on close");
}

static void test_backend_choice(void)
{
	int b = proc_backend();
	const char *force = getenv("FIBERS_PROC");
	int fd = proc_pidfd_open(getpid());
	if (fd == -ENOSYS) { /* an old kernel, or valgrind */
		is_int(b, PROC_BACKEND_SIGCHLD, "no pidfd_open: SIGCHLD backend");
		printf("ok %d # SKIP no pidfd_open\n", ++t_n);
		printf("ok %d # SKIP no pidfd_open\n", ++t_n);
		return;
	}
	if (force && strcmp(force, "sigchld") == 0)
		is_int(b, PROC_BACKEND_SIGCHLD, "FIBERS_PROC=sigchld forces the fallback");
	else
		is_int(b, PROC_BACKEND_PIDFD, "pidfd backend on this kernel");
	ok(fd >= 0, "pidfd_open works on this kernel");
	if (fd >= 0)
		close(fd);
	is_int(proc_pidfd_open(-5), -EINVAL, "pidfd_open of a bad pid: -EINVAL");
}

/* In a fresh process (before anything probed), the override wins. */
static void test_override(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		setenv("FIBERS_PROC", "sigchld", 1);
		_exit(proc_backend() == PROC_BACKEND_SIGCHLD ? 0 : 1);
	}
	int st = t_wait(pid);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "FIBERS_PROC=sigchld selects the SIGCHLD backend");
}

int main(void)
{
	test_override();
	test_backend_choice();
	test_pidfd();
	test_sigchld();
	return done_testing();
}
