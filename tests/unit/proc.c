/*
 * tests/unit/proc.c - TAP tests of proc_spawn (src/core/proc.c): exit codes,
 * child setup failures with their step and errno, stdio wiring, environment,
 * cwd, process groups and sessions, credentials, umask, rlimits, fd closing,
 * signal mask and dispositions, parent-death signal; clone, fork and
 * overlapped modes.
 */
#include "config.h"

#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "proc_test.h"

#ifdef HAVE_LINUX_SECCOMP_H
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#endif

static char *sh_argv[4] = { "sh", "-c", NULL, NULL };

static void spec_sh(struct proc_spec *s, const char *script, unsigned flags)
{
	memset(s, 0, sizeof *s);
	sh_argv[2] = (char *)script;
	s->file = "sh";
	s->argv = sh_argv;
	s->flags = flags;
}

static int exit_code(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

static void test_modes(unsigned mode, const char *label)
{
	struct proc_spec s;
	struct proc_result r;
	char out[4096], name[128];

	spec_sh(&s, "exit 42", mode);
	int st = t_capture(&s, out, sizeof out, &r);
	snprintf(name, sizeof name, "%s: exit code 42", label);
	is_int(exit_code(st), 42, "%s", name);

	spec_sh(&s, "echo hello", mode);
	st = t_capture(&s, out, sizeof out, &r);
	snprintf(name, sizeof name, "%s: stdout through a pipe", label);
	is_str(out, "hello\n", "%s", name);

	char *missing_argv[] = { "fibers-no-such-program", NULL };
	memset(&s, 0, sizeof s);
	s.file = missing_argv[0];
	s.argv = missing_argv;
	s.flags = mode;
	st = t_capture(&s, out, sizeof out, &r);
	snprintf(name, sizeof name, "%s: missing program fails at exec", label);
	is_str(proc_step_name(r.child_step), "exec", "%s", name);
	snprintf(name, sizeof name, "%s: ... with ENOENT", label);
	is_int(r.child_errno, ENOENT, "%s", name);
	snprintf(name, sizeof name, "%s: ... and exit status 127 (already reaped)", label);
	is_int(exit_code(st), 127, "%s", name);

	spec_sh(&s, "pwd", mode);
	s.cwd = "/nonexistent/dir";
	st = t_capture(&s, out, sizeof out, &r);
	snprintf(name, sizeof name, "%s: bad cwd fails at chdir with ENOENT", label);
	ok(r.child_step == PROC_STEP_CHDIR && r.child_errno == ENOENT, "%s", name);
	is_str(proc_step_name(r.child_step), "chdir", "step name chdir");
}

static void test_stdio(void)
{
	struct proc_spec s;
	struct proc_result r;
	char out[4096];

	spec_sh(&s, "echo out; echo err >&2", PROC_NEWPGRP);
	s.stdio[2].kind = PROC_STDIO_STDOUT;
	t_capture(&s, out, sizeof out, &r);
	is_str(out, "out\nerr\n", "stderr = stdout merges both streams");

	spec_sh(&s, "cat; echo done", PROC_NEWPGRP);
	s.stdio[0].kind = PROC_STDIO_NULL;
	t_capture(&s, out, sizeof out, &r);
	is_str(out, "done\n", "stdin /dev/null gives EOF at once");

	int in[2];
	if (pipe2(in, O_CLOEXEC) < 0)
		abort();
	if (write(in[1], "round trip\n", 11) != 11)
		abort();
	close(in[1]);
	spec_sh(&s, "cat", PROC_NEWPGRP);
	s.stdio[0].kind = PROC_STDIO_FD;
	s.stdio[0].fd = in[0];
	t_capture(&s, out, sizeof out, &r);
	close(in[0]);
	is_str(out, "round trip\n", "stdin from a given fd, through cat");

	/* a given fd that is 0 itself must survive when it is stdout's source */
	int leak = open("/dev/null", O_RDONLY); /* no CLOEXEC on purpose */
	char script[128];
	snprintf(script, sizeof script, "test -e /proc/self/fd/%d && echo open || echo closed", leak);
	spec_sh(&s, script, PROC_NEWPGRP);
	t_capture(&s, out, sizeof out, &r);
	is_str(out, "closed\n", "an inheritable parent fd is closed in the child");
	spec_sh(&s, script, PROC_NEWPGRP | PROC_FDWALK);
	t_capture(&s, out, sizeof out, &r);
	is_str(out, "closed\n", "... also by the /proc/self/fd walk (no close_range)");
	spec_sh(&s, script, PROC_NEWPGRP | PROC_FDWALK | PROC_FORK);
	t_capture(&s, out, sizeof out, &r);
	is_str(out, "closed\n", "... and in fork mode");
	char *missing[] = { "fibers-no-such-program", NULL };
	memset(&s, 0, sizeof s);
	s.file = missing[0];
	s.argv = missing;
	s.flags = PROC_FORK | PROC_FDWALK;
	t_capture(&s, out, sizeof out, &r);
	ok(r.child_step == PROC_STEP_EXEC && r.child_errno == ENOENT,
	   "the walk keeps fork mode's report pipe open");
	close(leak);
}

static void test_env_cwd(void)
{
	struct proc_spec s;
	struct proc_result r;
	char out[4096];
	char *envp[] = { "FOO=bar baz", NULL };

	spec_sh(&s, "echo \"$FOO\"; echo \"${HOME-unset}\"", PROC_NEWPGRP);
	s.envp = envp;
	t_capture(&s, out, sizeof out, &r);
	is_str(out, "bar baz\nunset\n", "replaced environment, PATH default search");

	spec_sh(&s, "pwd", PROC_NEWPGRP);
	s.cwd = "/tmp";
	t_capture(&s, out, sizeof out, &r);
	is_str(out, "/tmp\n", "cwd");

	char *argv[] = { "sh", "-c", "exit 3", NULL };
	memset(&s, 0, sizeof s);
	s.file = "/bin/sh";
	s.argv = argv;
	int st = t_capture(&s, out, sizeof out, &r);
	is_int(exit_code(st), 3, "absolute path, no search");

	memset(&s, 0, sizeof s);
	s.file = "sh";
	s.argv = argv;
	s.path = "/nonexistent:/usr/bin:/bin";
	st = t_capture(&s, out, sizeof out, &r);
	is_int(exit_code(st), 3, "explicit search path skips missing dirs");
}

static void test_groups_creds(void)
{
	struct proc_spec s;
	struct proc_result r;
	char out[4096];

	spec_sh(&s, "exec cat", PROC_NEWPGRP | PROC_PIDFD);
	int in[2];
	if (pipe2(in, O_CLOEXEC) < 0)
		abort();
	s.stdio[0].kind = PROC_STDIO_FD;
	s.stdio[0].fd = in[0];
	is_int(proc_spawn(&s, &r), 0, "spawn cat");
	close(in[0]);
	is_int(getpgid(r.pid), r.pid, "PROC_NEWPGRP: own process group");
	is_int(getsid(r.pid), getsid(0), "... same session");
	ok(r.pidfd >= 0, "a pidfd came with the child");
	is_int(proc_send_signal(r.pid, r.pidfd, SIGTERM), 0, "pidfd_send_signal");
	int st = t_wait(r.pid);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "cat died of SIGTERM");
	is_int(proc_send_signal(r.pid, r.pidfd, SIGTERM), ESRCH, "signal after reap: ESRCH");
	close(r.pidfd);
	close(in[1]);

	spec_sh(&s, "exec sleep 5", PROC_SETSID);
	is_int(proc_spawn(&s, &r), 0, "spawn with setsid");
	is_int(getsid(r.pid), r.pid, "PROC_SETSID: own session");
	is_int(proc_group_alive(r.pid), 1, "group alive");
	is_int(proc_killpg(r.pid, SIGKILL), 0, "killpg");
	siginfo_t si;
	memset(&si, 0, sizeof si);
	is_int(waitid(P_PID, (id_t)r.pid, &si, WEXITED | WNOWAIT), 0, "the leader is a zombie (not reaped)");
	is_int(proc_group_alive(r.pid), 0, "a zombie member does not keep the group alive");
	st = t_wait(r.pid);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "killed through the group");
	is_int(proc_group_alive(r.pid), 0, "group gone after reap");
	is_int(proc_killpg(1, SIGKILL), EINVAL, "killpg refuses group 1");

	/* (fsize, not nofile: valgrind refuses client changes of RLIMIT_NOFILE) */
	spec_sh(&s, "umask; ulimit -f; ulimit -c", PROC_NEWPGRP);
	struct proc_rlimit rl[2] = { { RLIMIT_FSIZE, { 123 * 512, 123 * 512 } }, { RLIMIT_CORE, { 0, 0 } } };
	s.set_umask = 1;
	s.umask = 027;
	s.rlimits = rl;
	s.nrlimits = 2;
	t_capture(&s, out, sizeof out, &r);
	is_str(out, "0027\n123\n0\n", "umask and rlimits seen inside the child");

	if (geteuid() == 0) {
		gid_t groups[2] = { 65534, 65533 };
		spec_sh(&s, "id -u; id -g; id -G", PROC_NEWPGRP | PROC_PDEATHSIG);
		s.set_uid = s.set_gid = s.set_groups = 1;
		s.uid = 65534;
		s.gid = 65534;
		s.groups = groups;
		s.ngroups = 2;
		t_capture(&s, out, sizeof out, &r);
		is_str(out, "65534\n65534\n65534 65533\n", "setgroups, setgid, setuid");
	} else {
		spec_sh(&s, "true", PROC_NEWPGRP);
		s.set_uid = 1;
		s.uid = 0;
		int st2 = t_capture(&s, out, sizeof out, &r);
		ok(r.child_step == PROC_STEP_SETUID && exit_code(st2) == 127, "setuid fails unprivileged");
	}
}

static void test_signals(void)
{
	struct proc_spec s;
	struct proc_result r;
	char out[4096];
	struct sigaction ign, old_term, old_usr2;
	sigset_t blk, oldmask;

	memset(&ign, 0, sizeof ign);
	ign.sa_handler = SIG_IGN;
	sigaction(SIGTERM, &ign, &old_term);
	sigaction(SIGUSR2, &ign, &old_usr2);
	/* signal 33 is glibc's: only the raw syscall sets it (as make may) */
	struct { void *h; unsigned long f; void *r; unsigned long m[2]; } k33 = { (void *)SIG_IGN, 0, NULL, { 0, 0 } };
	syscall(SYS_rt_sigaction, 33, &k33, NULL, sizeof(unsigned long));
	sigemptyset(&blk);
	sigaddset(&blk, SIGUSR1);
	sigprocmask(SIG_BLOCK, &blk, &oldmask);
	spec_sh(&s, "grep -E '^Sig(Blk|Ign)' /proc/self/status", PROC_NEWPGRP);
	t_capture(&s, out, sizeof out, &r);
	is_str(out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n",
	       "child has an empty mask and no ignored signals");
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGUSR2, &old_usr2, NULL);
	k33.h = (void *)SIG_DFL;
	syscall(SYS_rt_sigaction, 33, &k33, NULL, sizeof(unsigned long));
}

static int proc_dead(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'Z';
}

static void test_pdeathsig(void)
{
	int p[2];
	if (pipe(p) < 0)
		abort();
	pid_t mid = fork();
	if (mid == 0) {
		struct proc_spec s;
		struct proc_result r;
		spec_sh(&s, "exec sleep 30", PROC_NEWPGRP | PROC_PDEATHSIG);
		s.stdio[0].kind = PROC_STDIO_NULL;
		if (proc_spawn(&s, &r) != 0)
			_exit(1);
		if (write(p[1], &r.pid, sizeof r.pid) < 0)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	pid_t child = 0;
	if (read(p[0], &child, sizeof child) != (ssize_t)sizeof child)
		child = 0;
	close(p[0]);
	t_wait(mid);
	int dead = 0;
	for (int i = 0; i < 400 && child > 0 && !(dead = proc_dead(child)); i++)
		usleep(5000);
	ok(child > 0 && dead, "parent death kills the child (PR_SET_PDEATHSIG)");
}

static void test_names(void)
{
	is_int(proc_signum("TERM"), SIGTERM, "signum TERM");
	is_int(proc_signum("SIGKILL"), SIGKILL, "signum SIGKILL");
	is_int(proc_signum("hup"), SIGHUP, "signum hup");
	is_int(proc_signum("NOPE"), 0, "signum unknown");
	is_str(proc_signame(SIGINT), "INT", "signame");
	is_int(proc_rlimit_resource("nofile"), RLIMIT_NOFILE, "rlimit nofile");
	is_int(proc_rlimit_resource("bogus"), -1, "rlimit unknown");
}

#if defined(__x86_64__) && defined(HAVE_LINUX_SECCOMP_H)
/* Overlapped spawns where a seccomp filter refuses clone without
 * CLONE_VFORK (EPERM): they fall back to the vfork mode.  In a forked
 * process, so the filter stays there; its exit code is the failed step. */
static void test_overlapped_refused(void)
{
	pid_t t = fork();
	if (t == 0) {
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 3),
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
			BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_VFORK, 1, 0),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = { sizeof f / sizeof f[0], f };
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
			_exit(10);
		char *tv[] = { "true", NULL };
		struct proc_spec s;
		struct proc_result r;
		memset(&s, 0, sizeof s);
		s.file = "true";
		s.argv = tv;
		s.flags = PROC_NEWPGRP | PROC_ASYNC;
		for (int i = 0; i < 2; i++) {
			if (proc_spawn(&s, &r) != 0 || r.pid <= 0)
				_exit(11 + i);
			if (exit_code(t_wait(r.pid)) != 0)
				_exit(13 + i);
		}
		_exit(0);
	}
	is_int(exit_code(t_wait(t)), 0,
	       "overlapped: refused by seccomp (EPERM), spawns fall back to vfork");
}
#else
static void test_overlapped_refused(void)
{
}
#endif

/* Overlapped spawns (PROC_ASYNC): proc_spawn returns while the child may
 * still be setting up; its group exists at once, its memory is released
 * once it has exec'd, and nothing of it is kept once its report is taken. */
static void test_overlapped(void)
{
	struct proc_spec s;
	struct proc_result r;
	char *argv[] = { "sleep", "30", NULL };
	memset(&s, 0, sizeof s);
	s.file = "sleep";
	s.argv = argv;
	s.flags = PROC_NEWPGRP | PROC_ASYNC;
	is_int(proc_spawn(&s, &r), 0, "overlapped: spawn sleep 30");
	/* at once: the group is the child's, so the group can be signalled */
	is_int(proc_killpg(r.pid, SIGTERM), 0, "overlapped: its group exists when spawn returns");
	int st = t_wait(r.pid);
	is_int(exit_code(st), -SIGTERM, "overlapped: TERM to the group ends it");
	is_int(proc_take_report(r.pid, NULL, NULL), 0, "overlapped: no failure report");

	/* 50 at once, then each reaped: no memory kept */
	pid_t pids[50];
	char *tv[] = { "true", NULL };
	s.file = "true";
	s.argv = tv;
	int started = 0;
	for (int i = 0; i < 50; i++)
		if (proc_spawn(&s, &r) == 0 && r.pid > 0)
			pids[started++] = r.pid;
	is_int(started, 50, "overlapped: 50 spawns");
	int exited0 = 0;
	for (int i = 0; i < started; i++) {
		st = t_wait(pids[i]);
		exited0 += exit_code(st) == 0;
		proc_take_report(pids[i], NULL, NULL);
	}
	is_int(exited0, 50, "overlapped: all 50 exited 0");
	is_int((int)proc_blocks_held(), 0, "overlapped: nothing kept once they are gone");

	/* long-running children: their memory is released once they have
	 * exec'd, while they still run */
	char *sv[] = { "sleep", "30", NULL };
	s.file = "sleep";
	s.argv = sv;
	started = 0;
	for (int i = 0; i < 20; i++)
		if (proc_spawn(&s, &r) == 0 && r.pid > 0)
			pids[started++] = r.pid;
	size_t held = proc_blocks_held();
	for (int i = 0; i < 500 && held > 0; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		held = proc_blocks_held();
	}
	is_int((int)held, 0, "overlapped: 20 running children hold nothing once exec'd");
	for (int i = 0; i < started; i++) {
		proc_killpg(pids[i], SIGKILL);
		t_wait(pids[i]);
		proc_take_report(pids[i], NULL, NULL);
	}

	/* a failure report waits for the reap, then is taken once */
	char *bad[] = { "fibers-no-such-program", NULL };
	s.file = bad[0];
	s.argv = bad;
	is_int(proc_spawn(&s, &r), 0, "overlapped: spawn of a missing program returns a child");
	st = t_wait(r.pid);
	is_int(exit_code(st), 127, "overlapped: it exits 127");
	is_int((int)proc_blocks_held(), 1, "overlapped: its report is kept until taken");
	int step = 0, err = 0;
	ok(proc_take_report(r.pid, &step, &err) && step == PROC_STEP_EXEC && err == ENOENT,
	   "overlapped: the report says exec, ENOENT");
	is_int(proc_take_report(r.pid, &step, &err), 0, "overlapped: taken once");
	is_int((int)proc_blocks_held(), 0, "overlapped: nothing kept after");
	test_overlapped_refused();
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_modes(PROC_NEWPGRP, "clone");
	test_modes(PROC_NEWPGRP | PROC_FORK, "fork");
	test_modes(PROC_NEWPGRP | PROC_ASYNC, "overlapped");
	test_overlapped();
	test_stdio();
	test_env_cwd();
	test_groups_creds();
	test_signals();
	test_pdeathsig();
	test_names();
	return done_testing();
}
