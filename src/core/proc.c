/*
 * proc.c - starting a child process: proc_spawn and the code that runs in the
 * child between clone and exec.
 *
 * Mechanism: clone(CLONE_VM | CLONE_VFORK) on a private stack, like glibc's
 * posix_spawn (no page-table copy, so spawning cost does not grow with the
 * parent's heap), with CLONE_PIDFD for a race-free pidfd.  PROC_FORK selects
 * a plain fork() for tests and exotic hosts.  The child reports the failing
 * setup step and its errno: with fork through an O_CLOEXEC pipe (EOF means
 * exec succeeded); with CLONE_VM it stores them in the parent's memory
 * instead, which the parent reads once clone returns - CLONE_VFORK
 * guarantees the child has exec'd or exited by then (as glibc's posix_spawn
 * does), and it saves four syscalls per spawn.
 *
 * Rules for the child code (it shares the parent's memory): no malloc, no
 * stdio, no locks, no glibc credential wrappers (setuid() & co broadcast to
 * the parent's other threads through shared TLS, so raw syscalls are used);
 * it ends in execve or _exit.  All signals are blocked in the parent across
 * clone; the child resets every disposition to SIG_DFL before unblocking, so
 * no parent handler ever runs on the child's stack.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

#define CHILD_STACK_SIZE (128 * 1024)

/* Child code must not be instrumented: it runs on a foreign stack. */
#if defined(__clang__) || defined(__GNUC__)
#define CHILD_FN static __attribute__((noinline, no_sanitize_address))
#else
#define CHILD_FN static
#endif

#if defined(SYS_setgroups32)
#define NR_SETGROUPS SYS_setgroups32
#define NR_SETGID SYS_setgid32
#define NR_SETUID SYS_setuid32
#else
#define NR_SETGROUPS SYS_setgroups
#define NR_SETGID SYS_setgid
#define NR_SETUID SYS_setuid
#endif

struct child_report {
	int step;
	int err;
};

struct child_ctx {
	const struct proc_spec *spec;
	char *const *envp;
	const char *path;
	pid_t parent;
	int errfd;              /* fork mode: the report pipe; else -1 */
	struct child_report rep; /* CLONE_VM mode: the report itself */
};

static const char *const step_names[PROC_STEP_MAX] = {
	[PROC_STEP_NONE] = "none",
	[PROC_STEP_SIGNALS] = "sigaction",
	[PROC_STEP_SETSID] = "setsid",
	[PROC_STEP_SETPGID] = "setpgid",
	[PROC_STEP_STDIO] = "dup2",
	[PROC_STEP_DEVNULL] = "open /dev/null",
	[PROC_STEP_CHDIR] = "chdir",
	[PROC_STEP_RLIMIT] = "setrlimit",
	[PROC_STEP_SETGROUPS] = "setgroups",
	[PROC_STEP_SETGID] = "setgid",
	[PROC_STEP_SETUID] = "setuid",
	[PROC_STEP_PDEATHSIG] = "prctl",
	[PROC_STEP_GETPPID] = "getppid",
	[PROC_STEP_CLOSEFDS] = "close_range",
	[PROC_STEP_EXEC] = "exec",
};

/* Name of a child step ("chdir", "setuid", "exec", ...). */
const char *proc_step_name(int step)
{
	if (step < 0 || step >= PROC_STEP_MAX)
		return "unknown";
	return step_names[step];
}

CHILD_FN void child_fail(struct child_ctx *c, int step, int err)
{
	struct child_report r = { step, err };
	if (c->errfd < 0) {
		c->rep = r; /* shared memory: the parent is suspended until we exit */
		_exit(127);
	}
	ssize_t n;
	do
		n = write(c->errfd, &r, sizeof r);
	while (n < 0 && errno == EINTR);
	_exit(127);
}

/* Move fd to a number >= 3 (keeping it open-on-exec-safe); -1 on error. */
CHILD_FN int child_lift(int fd)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

CHILD_FN void child_stdio(struct child_ctx *c)
{
	const struct proc_spec *s = c->spec;
	int src[3], devnull = -1;
	for (int i = 0; i < 3; i++) {
		src[i] = -1;
		switch (s->stdio[i].kind) {
		case PROC_STDIO_NULL:
			if (devnull < 0) {
				devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
				if (devnull < 0)
					child_fail(c, PROC_STEP_DEVNULL, errno);
				if (devnull < 3 && (devnull = child_lift(devnull)) < 0)
					child_fail(c, PROC_STEP_DEVNULL, errno);
			}
			src[i] = devnull;
			break;
		case PROC_STDIO_FD:
			src[i] = s->stdio[i].fd;
			/* a low fd that is not its own target would be clobbered */
			if (src[i] >= 0 && src[i] < 3 && src[i] != i &&
			    (src[i] = child_lift(src[i])) < 0)
				child_fail(c, PROC_STEP_STDIO, errno);
			break;
		default:
			break;
		}
	}
	for (int i = 0; i < 3; i++) {
		if (src[i] < 0)
			continue;
		if (src[i] == i) {
			if (fcntl(i, F_SETFD, 0) < 0)
				child_fail(c, PROC_STEP_STDIO, errno);
		} else if (dup2(src[i], i) < 0) {
			child_fail(c, PROC_STEP_STDIO, errno);
		}
	}
	if (s->stdio[2].kind == PROC_STDIO_STDOUT && dup2(1, 2) < 0)
		child_fail(c, PROC_STEP_STDIO, errno);
}

/* Close every fd >= 3 except keep (the error pipe, close-on-exec). */
CHILD_FN void child_close_fds(struct child_ctx *c, int keep)
{
#ifdef SYS_close_range
	if (c->spec->flags & PROC_FDWALK) {
		/* fall through to the /proc walk */
	} else if (keep < 3) {
		if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0)
			return;
	} else if (syscall(SYS_close_range, 3u, (unsigned)keep - 1u, 0u) == 0 &&
		   syscall(SYS_close_range, (unsigned)keep + 1u, ~0u, 0u) == 0) {
		return;
	}
#endif
	int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		char buf[2048];
		long n;
		while ((n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
			for (long off = 0; off < n;) {
				struct {
					unsigned long long ino;
					long long off;
					unsigned short reclen;
					unsigned char type;
					char name[];
				} *d = (void *)(buf + off);
				int fd = 0, ok = d->name[0] != '\0';
				for (const char *p = d->name; *p; p++) {
					if (*p < '0' || *p > '9')
						ok = 0;
					else
						fd = fd * 10 + (*p - '0');
				}
				if (ok && fd >= 3 && fd != keep && fd != dfd)
					close(fd);
				off += d->reclen;
			}
		}
		close(dfd);
		if (n == 0)
			return;
	}
	struct rlimit rl;
	long max = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)max)
		max = (long)rl.rlim_cur;
	for (long fd = 3; fd < max; fd++)
		if (fd != keep)
			close((int)fd);
}

CHILD_FN void child_exec(struct child_ctx *c)
{
	const struct proc_spec *s = c->spec;
	const char *file = s->file;
	if (file[0] == '\0')
		child_fail(c, PROC_STEP_EXEC, ENOENT);
	if (strchr(file, '/')) {
		execve(file, s->argv, c->envp);
		child_fail(c, PROC_STEP_EXEC, errno);
	}
	size_t flen = strlen(file);
	if (flen > NAME_MAX)
		child_fail(c, PROC_STEP_EXEC, ENAMETOOLONG);
	char buf[PATH_MAX + NAME_MAX + 2];
	int eacces = 0, last = ENOENT;
	const char *p = c->path;
	for (;;) {
		const char *end = strchr(p, ':');
		size_t dlen = end ? (size_t)(end - p) : strlen(p);
		if (dlen == 0) {
			buf[0] = '.';
			dlen = 1;
		} else if (dlen <= PATH_MAX) {
			memcpy(buf, p, dlen);
		} else {
			dlen = 0;
		}
		if (dlen) {
			buf[dlen] = '/';
			memcpy(buf + dlen + 1, file, flen + 1);
			execve(buf, s->argv, c->envp);
			last = errno;
			if (last == EACCES)
				eacces = 1;
			else if (last != ENOENT && last != ENOTDIR && last != ESTALE &&
				 last != ENODEV && last != ETIMEDOUT && last != ELOOP &&
				 last != ENAMETOOLONG)
				child_fail(c, PROC_STEP_EXEC, last);
		}
		if (!end)
			break;
		p = end + 1;
	}
	child_fail(c, PROC_STEP_EXEC, eacces ? EACCES : last);
}

#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__) || defined(__i386__))
/* The kernel's struct sigaction, for the signals glibc reserves (32, 33):
 * its wrapper refuses them, yet an ignored disposition survives exec. */
struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	unsigned long mask[2];
};
#define HAVE_KSIGACTION 1
#endif

/* Reset one disposition to SIG_DFL; 0 or an errno. */
CHILD_FN int child_sigdfl(int sig)
{
	struct sigaction sa;
	if (sigaction(sig, NULL, &sa) == 0) {
		if (sa.sa_handler == SIG_DFL)
			return 0;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = SIG_DFL;
		return sigaction(sig, &sa, NULL) == 0 ? 0 : errno;
	}
#ifdef HAVE_KSIGACTION
	struct ksigaction k;
	memset(&k, 0, sizeof k);
	if (syscall(SYS_rt_sigaction, sig, NULL, &k, sizeof(unsigned long)) == 0 &&
	    k.handler != (void *)SIG_DFL) {
		memset(&k, 0, sizeof k);
		k.handler = (void *)SIG_DFL;
		if (syscall(SYS_rt_sigaction, sig, &k, NULL, sizeof(unsigned long)) < 0)
			return errno;
	}
#endif
	return 0;
}

CHILD_FN int child_main(void *arg)
{
	struct child_ctx *c = arg;
	const struct proc_spec *s = c->spec;

	/* dispositions first, while every signal is still blocked */
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		int err = child_sigdfl(sig);
		if (err)
			child_fail(c, PROC_STEP_SIGNALS, err);
	}
	if (s->flags & PROC_SETSID) {
		if (setsid() < 0)
			child_fail(c, PROC_STEP_SETSID, errno);
	} else if ((s->flags & PROC_NEWPGRP) && setpgid(0, 0) < 0) {
		child_fail(c, PROC_STEP_SETPGID, errno);
	}
	child_stdio(c);
	if (s->cwd && chdir(s->cwd) < 0)
		child_fail(c, PROC_STEP_CHDIR, errno);
	for (size_t i = 0; i < s->nrlimits; i++)
		if (setrlimit(s->rlimits[i].resource, &s->rlimits[i].lim) < 0)
			child_fail(c, PROC_STEP_RLIMIT, errno);
	if (s->set_umask)
		umask(s->umask);
	if (s->set_groups && syscall(NR_SETGROUPS, s->ngroups, s->groups) < 0)
		child_fail(c, PROC_STEP_SETGROUPS, errno);
	if (s->set_gid && syscall(NR_SETGID, s->gid) < 0)
		child_fail(c, PROC_STEP_SETGID, errno);
	if (s->set_uid && syscall(NR_SETUID, s->uid) < 0)
		child_fail(c, PROC_STEP_SETUID, errno);
	if (s->flags & PROC_PDEATHSIG) {
		/* after the uid change, which clears the death signal */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
			child_fail(c, PROC_STEP_PDEATHSIG, errno);
		if (getppid() != c->parent)
			child_fail(c, PROC_STEP_GETPPID, ESRCH);
	}
	child_close_fds(c, c->errfd);
	sigset_t none;
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		child_fail(c, PROC_STEP_SIGNALS, errno);
	child_exec(c);
	return 127;
}

/* getpid() cached for the parent-death check (one syscall less per
 * spawn); a fork()ed copy of the host forgets it through pthread_atfork. */
static pid_t cached_pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void pid_forget(void)
{
	cached_pid = 0;
}

static void pid_init(void)
{
	pthread_atfork(NULL, NULL, pid_forget);
}

static pid_t self_pid(void)
{
	pthread_once(&pid_once, pid_init);
	if (!cached_pid)
		cached_pid = getpid();
	return cached_pid;
}

static const char *env_path(char *const *envp)
{
	for (; envp && *envp; envp++)
		if (strncmp(*envp, "PATH=", 5) == 0)
			return *envp + 5;
	return "/usr/local/bin:/usr/bin:/bin";
}

/* The clone stack, one per thread, kept for reuse (spawn is synchronous). */
static __thread void *child_stack;

static int do_clone(struct child_ctx *c, int want_pidfd, int *pidfd)
{
	if (!child_stack) {
		void *st = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (st == MAP_FAILED)
			return -errno;
		child_stack = st;
	}
	char *top = (char *)child_stack + CHILD_STACK_SIZE;
	int flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
	pid_t pid = -1;
	if (want_pidfd) {
		pid = clone(child_main, top, flags | CLONE_PIDFD, c, pidfd);
		if (pid >= 0 || errno != EINVAL)
			return pid >= 0 ? pid : -errno;
		*pidfd = -1; /* kernel without CLONE_PIDFD: pidfd_open later */
	}
	pid = clone(child_main, top, flags, c);
	return pid >= 0 ? pid : -errno;
}

/* Start a child; see proc.h for the result conventions. */
int proc_spawn(const struct proc_spec *spec, struct proc_result *res)
{
	struct child_ctx c;
	int ep[2], err = 0, pidfd = -1;
	int want_pidfd = (spec->flags & PROC_PIDFD) != 0;

	int use_pipe = (spec->flags & PROC_FORK) != 0;

	res->pid = 0;
	res->pidfd = -1;
	res->child_step = PROC_STEP_NONE;
	res->child_errno = 0;
	res->status = 0;
	if (!spec->file || !spec->argv || !spec->argv[0])
		return EINVAL;
	ep[0] = ep[1] = -1;
	if (use_pipe && pipe2(ep, O_CLOEXEC) < 0)
		return errno;
	if (use_pipe && ep[1] < 3) { /* the child dup2s onto 0..2: keep the pipe above */
		int fd = fcntl(ep[1], F_DUPFD_CLOEXEC, 3);
		err = errno;
		close(ep[1]);
		if (fd < 0) {
			close(ep[0]);
			return err;
		}
		ep[1] = fd;
	}
	c.spec = spec;
	c.envp = spec->envp ? spec->envp : environ;
	c.path = spec->path ? spec->path : env_path(c.envp);
	c.parent = self_pid();
	c.errfd = ep[1];
	c.rep.step = PROC_STEP_NONE;
	c.rep.err = 0;

	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid;
	if (spec->flags & PROC_FORK) {
		pid = fork();
		if (pid == 0)
			child_main(&c);
		if (pid < 0)
			pid = -errno;
	} else {
		pid = do_clone(&c, want_pidfd, &pidfd);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (use_pipe)
		close(ep[1]);
	if (pid < 0) {
		if (use_pipe)
			close(ep[0]);
		return -pid;
	}

	/* written by the CLONE_VM child behind the compiler's back */
	volatile struct child_report *vr = &c.rep;
	struct child_report rep = { vr->step, vr->err };
	int failed = rep.step != PROC_STEP_NONE;
	if (use_pipe) {
		ssize_t n;
		do
			n = read(ep[0], &rep, sizeof rep);
		while (n < 0 && errno == EINTR);
		close(ep[0]);
		failed = n == (ssize_t)sizeof rep;
	}
	res->pid = pid;
	if (failed) {
		int st = 0;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (pidfd >= 0)
			close(pidfd);
		res->child_step = rep.step;
		res->child_errno = rep.err;
		res->status = st;
		return 0;
	}
	if (want_pidfd && pidfd < 0) {
		int fd = proc_pidfd_open(pid);
		pidfd = fd >= 0 ? fd : -1;
	}
	res->pidfd = pidfd;
	return 0;
}
