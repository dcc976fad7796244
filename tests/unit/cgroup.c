/*
 * tests/unit/cgroup.c - TAP tests of the cgroup v2 mechanism
 * (src/core/cgroup.c) and of spawning into a cgroup (PROC_CGROUP in
 * src/core/proc.c): the own cgroup, create/remove, placement in every
 * spawn mode (the child sees its cgroup; a bad cgroup fails at step
 * "cgroup"), cgroup.procs, populated + the inotify watch, cgroup.kill of
 * an escaped setsid daemon, cpu.stat.  Needs root and a writable unified
 * hierarchy: skips with the reason otherwise.  Works in a private cgroup
 * below its own, removed at the end.
 */
#include "config.h"

#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>

#include "cgroup.h"
#include "proc_test.h"

static char cg[PATH_MAX];

static void spec_sh(struct proc_spec *s, char **argv, const char *script, unsigned flags, int cgfd)
{
	memset(s, 0, sizeof *s);
	argv[0] = "sh";
	argv[1] = "-c";
	argv[2] = (char *)script;
	argv[3] = NULL;
	s->file = "sh";
	s->argv = argv;
	s->flags = flags | PROC_CGROUP;
	s->cgroup_fd = cgfd;
}

/* Wait (poll on the inotify fd, bounded by 10 s) until cg is not
 * populated; 1 when it emptied. */
static int wait_empty(int wfd)
{
	for (int i = 0; i < 100; i++) {
		int p = 1;
		if (cg_populated(cg, &p) != 0)
			return 0;
		if (!p)
			return 1;
		struct pollfd pfd = { wfd, POLLIN, 0 };
		if (poll(&pfd, 1, 100) > 0) {
			char buf[4096];
			while (read(wfd, buf, sizeof buf) > 0)
				;
		}
	}
	return 0;
}

/* The cgroup part of /proc/PID/cgroup as the child printed it. */
static int placed_in(const char *out, const char *leaf)
{
	const char *l = strstr(out, "0::");
	if (!l)
		return 0;
	const char *nl = strchr(l, '\n');
	size_t n = nl ? (size_t)(nl - l) : strlen(l), k = strlen(leaf);
	return n >= k && strncmp(l + n - k, leaf, k) == 0;
}

static void test_placement(unsigned mode, const char *label, int cgfd, const char *leaf)
{
	struct proc_spec s;
	struct proc_result r;
	char *argv[4], out[4096];
	spec_sh(&s, argv, "cat /proc/self/cgroup", mode, cgfd);
	int st = t_capture(&s, out, sizeof out, &r);
	is_int(st, 0, "%s: child ran", label);
	ok(placed_in(out, leaf), "%s: the child runs in the cgroup (...%s)", label, leaf);

	/* a directory that is no cgroup: the write fails, step "cgroup" */
	int tmp = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	spec_sh(&s, argv, "exit 0", mode, tmp);
	st = t_capture(&s, out, sizeof out, &r);
	is_str(proc_step_name(r.child_step), "cgroup", "%s: not a cgroup: fails at step cgroup", label);
	is_int(r.child_errno, ENOENT, "%s: ... with ENOENT (no cgroup.procs)", label);
	is_int(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 127, "%s: ... exit 127", label);
	close(tmp);
}

int main(void)
{
	char own[PATH_MAX - 64], mnt[PATH_MAX], buf[256];
	signal(SIGPIPE, SIG_IGN);
	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root (cgroup v2 writes)\n");
		return 0;
	}
	int err = cg_path_of(0, own, sizeof own);
	if (err) {
		printf("1..0 # SKIP no cgroup v2 hierarchy: %s\n", strerror(err));
		return 0;
	}
	snprintf(cg, sizeof cg, "%s/fibers-unit-%ld", own, (long)getpid());
	if ((err = cg_create(cg))) {
		printf("1..0 # SKIP cgroup v2 not writable (%s: %s)\n", cg, strerror(err));
		return 0;
	}
	is_int(cg_mount(mnt, sizeof mnt), 0, "the unified mount is found");
	ok(strncmp(own, mnt, strlen(mnt)) == 0, "the own cgroup (%s) is below it (%s)", own, mnt);
	is_int(cg_create(cg), 0, "creating an existing cgroup is success");
	is_int(cg_read(cg, "no-such-file", buf, sizeof buf), ENOENT, "a missing interface file: ENOENT");
	int p = -1;
	is_int(cg_populated(cg, &p), 0, "cgroup.events reads");
	is_int(p, 0, "a new cgroup is not populated");

	int cgfd = open(cg, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ok(cgfd >= 0, "cgroup dir opened O_PATH");
	const char *leaf = strrchr(cg, '/');
	test_placement(PROC_NEWPGRP, "clone", cgfd, leaf);
	test_placement(PROC_NEWPGRP | PROC_FORK, "fork", cgfd, leaf);
	test_placement(PROC_NEWPGRP | PROC_ASYNC, "overlapped", cgfd, leaf);
#if defined(__x86_64__)
	is_int(proc_cgroup_clone3(), 1, "placement used clone3(CLONE_INTO_CGROUP)");
#endif

	/* a double-forked setsid daemon ignoring SIGTERM: still in the cgroup
	 * after its parent exited, listed in cgroup.procs, ended by cg_kill */
	struct proc_spec s;
	struct proc_result r;
	char *argv[4];
	int wfd = cg_watch(cg);
	ok(wfd >= 0, "inotify watch on cgroup.events");
	spec_sh(&s, argv, "setsid sh -c 'trap \"\" TERM; sleep 100 & wait' </dev/null >/dev/null 2>&1 & exit 0",
		PROC_NEWPGRP | PROC_ASYNC, cgfd);
	is_int(proc_spawn(&s, &r), 0, "daemon-starting child spawned");
	int st = t_wait(r.pid);
	proc_take_report(r.pid, NULL, NULL);
	is_int(WEXITSTATUS(st), 0, "its direct child exited");
	pid_t *pids = NULL;
	size_t n = 0;
	for (int i = 0; i < 100 && n < 2; i++) { /* the setsid'd sh and its sleep */
		free(pids);
		cg_procs(cg, &pids, &n);
		if (n < 2)
			usleep(20000);
	}
	ok(n >= 2, "cgroup.procs lists the escaped daemon (%zu pids)", n);
	if (n > 0)
		ok(pids[0] != r.pid && kill(pids[0], 0) == 0, "... a live process, not the reaped child");
	free(pids);
	is_int(cg_populated(cg, &p), 0, "cgroup.events reads");
	is_int(p, 1, "populated 1 while it runs");
	is_int(cg_remove(cg), EBUSY, "a populated cgroup cannot be removed (EBUSY)");
	is_int(cg_kill(cg), 0, "cgroup.kill");
	ok(wait_empty(wfd), "populated 0 after the kill (inotify)");
	close(wfd);
	/* a killed cgroup is replaced by a fresh one (see cgroup.h: some
	 * kernels kill clone3 children placed into a cgroup killed before) */
	close(cgfd);
	is_int(cg_remove(cg), 0, "the emptied cgroup is removed");
	is_int(cg_create(cg), 0, "... and created again");
	cgfd = open(cg, O_PATH | O_DIRECTORY | O_CLOEXEC);

	/* CPU time of a busy child shows in cpu.stat */
	unsigned long long u0, s0, u1, s1;
	is_int(cg_cpu_stat(cg, &u0, &s0), 0, "cpu.stat reads");
	spec_sh(&s, argv, "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done", PROC_NEWPGRP, cgfd);
	is_int(proc_spawn(&s, &r), 0, "busy child spawned");
	st = t_wait(r.pid);
	is_int(st, 0, "busy child exited 0");
	is_int(cg_cpu_stat(cg, &u1, &s1), 0, "cpu.stat reads again");
	ok(u1 + s1 > u0 + s0, "the busy child's CPU time is counted (%llu -> %llu usec)", u0 + s0, u1 + s1);

	/* attach moves a process; the parent's own process stays out */
	spec_sh(&s, argv, "exec sleep 100", PROC_NEWPGRP, cgfd);
	s.flags &= ~PROC_CGROUP;
	is_int(proc_spawn(&s, &r), 0, "unplaced child spawned");
	is_int(cg_attach(cg, r.pid), 0, "cg_attach moves it");
	char path[PATH_MAX];
	is_int(cg_path_of(r.pid, path, sizeof path), 0, "its cgroup reads");
	is_str(path, cg, "it is in the cgroup");
	kill(r.pid, SIGKILL);
	t_wait(r.pid);

	close(cgfd);
	is_int(cg_remove(cg), 0, "the empty cgroup is removed");
	is_int(cg_remove(cg), 0, "removing it again is success");
	struct stat sb;
	ok(stat(cg, &sb) < 0 && errno == ENOENT, "the directory is gone");
	return done_testing();
}
