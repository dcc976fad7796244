/*
 * proc.c - starting a child process: proc_spawn and the code that runs in the
 * child between clone and exec.
 *
 * Mechanism: clone(CLONE_VM | CLONE_VFORK) on a private stack, like glibc's
 * posix_spawn (no page-table copy, so spawning cost does not grow with the
 * parent's heap), with CLONE_PIDFD for a race-free pidfd.  PROC_ASYNC (the
 * overlapped mode, what fibers.exec uses) drops CLONE_VFORK: the parent
 * goes on while the child sets up, the kernel clearing the spawn block's
 * ctid (CLONE_CHILD_CLEARTID) once the child has exec'd or exited
 * (doc/decisions.md, "Overlapped spawns").  PROC_FORK selects a plain
 * fork() for tests and exotic hosts.  The child reports the failing setup
 * step and its errno: with fork through an O_CLOEXEC pipe (EOF means exec
 * succeeded); with CLONE_VM it stores them in its spawn block, which the
 * parent reads once clone returns - CLONE_VFORK guarantees the child has
 * exec'd or exited by then - or, overlapped, once the child is reaped.
 *
 * Rules for the child code (it shares the parent's memory): no malloc, no
 * stdio, no locks, no libc calls at all where raw system calls exist
 * (csys(): overlapped, the child runs on the parent's thread pointer, so
 * errno and every glibc thread state are the parent's); it reads only its
 * spawn block and ends in execve or exit.  All signals are blocked in the
 * parent across clone; the child resets every disposition to SIG_DFL
 * before unblocking, so no parent handler ever runs on the child's stack.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
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

/* What the child reads: everything it needs, in memory nobody else
 * writes or frees while it runs (struct spawn_block). */
struct child_ctx {
	const struct proc_spec *spec;
	char *const *envp;
	/* execve candidates, in order (the PATH search done in the parent);
	 * none: fail with exec_err */
	char *const *cands;
	int exec_err;
	pid_t parent;
	int errfd;              /* fork mode: the report pipe; else -1 */
	int placed;             /* PROC_CGROUP done by clone3(CLONE_INTO_CGROUP) */
	struct child_report rep; /* CLONE_VM modes: the report itself */
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
	[PROC_STEP_CGROUP] = "cgroup",
};

/* Name of a child step ("chdir", "setuid", "exec", ...). */
const char *proc_step_name(int step)
{
	if (step < 0 || step >= PROC_STEP_MAX)
		return "unknown";
	return step_names[step];
}

/*
 * System calls from the child: csys() returns the result or -errno and
 * writes no errno.  In the overlapped mode (PROC_ASYNC) the child runs
 * while the parent goes on, on the parent's thread pointer: errno - like
 * every glibc wrapper's thread state - is the parent's, so the child makes
 * raw system calls only (x86-64 and AArch64; elsewhere PROC_ASYNC falls
 * back to the vfork mode, where the parent is suspended and glibc's
 * syscall() is safe).  No child function calls into libc at all in that
 * mode: the PATH search and every copy are done by the parent.
 */
#if defined(__linux__) && defined(__x86_64__)
#define PROC_RAW 1
static inline __attribute__((always_inline)) long csys(long n, long a, long b, long c, long d,
							long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#elif defined(__linux__) && defined(__aarch64__)
#define PROC_RAW 1
static inline __attribute__((always_inline)) long csys(long n, long a, long b, long c, long d,
							long e, long f)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory", "cc");
	return x0;
}
#else
static long csys(long n, long a, long b, long c, long d, long e, long f)
{
	long r = syscall(n, a, b, c, d, e, f);
	return r == -1 ? -errno : r;
}
#endif
#define CSYS(n, a, b, c) csys((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define CSYS5(n, a, b, c, d, e) csys((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

CHILD_FN void child_exit(void)
{
	for (;;)
		CSYS(SYS_exit_group, 127, 0, 0);
}

CHILD_FN void child_fail(struct child_ctx *c, int step, int err)
{
	struct child_report r = { step, err };
	if (c->errfd < 0) {
		/* shared memory: read by the parent once the child is gone */
		c->rep.step = r.step;
		c->rep.err = r.err;
		child_exit();
	}
	long n;
	do
		n = CSYS(SYS_write, c->errfd, &r, sizeof r);
	while (n == -EINTR);
	child_exit();
}

/* Move fd to a number >= 3 (close-on-exec); -errno on error. */
CHILD_FN int child_lift(int fd)
{
	return (int)CSYS(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 3);
}

CHILD_FN void child_stdio(struct child_ctx *c)
{
	const struct proc_spec *s = c->spec;
	int src[3], devnull = -1;
	long r;
	for (int i = 0; i < 3; i++) {
		src[i] = -1;
		switch (s->stdio[i].kind) {
		case PROC_STDIO_NULL:
			if (devnull < 0) {
				devnull = (int)CSYS5(SYS_openat, AT_FDCWD, "/dev/null",
						     O_RDWR | O_CLOEXEC, 0, 0);
				if (devnull < 0)
					child_fail(c, PROC_STEP_DEVNULL, -devnull);
				if (devnull < 3 && (devnull = child_lift(devnull)) < 0)
					child_fail(c, PROC_STEP_DEVNULL, -devnull);
			}
			src[i] = devnull;
			break;
		case PROC_STDIO_FD:
			src[i] = s->stdio[i].fd;
			/* a low fd that is not its own target would be clobbered */
			if (src[i] >= 0 && src[i] < 3 && src[i] != i &&
			    (src[i] = child_lift(src[i])) < 0)
				child_fail(c, PROC_STEP_STDIO, -src[i]);
			break;
		default:
			break;
		}
	}
	for (int i = 0; i < 3; i++) {
		if (src[i] < 0)
			continue;
		if (src[i] == i)
			r = CSYS(SYS_fcntl, i, F_SETFD, 0);
		else
			r = CSYS(SYS_dup3, src[i], i, 0);
		if (r < 0)
			child_fail(c, PROC_STEP_STDIO, (int)-r);
	}
	if (s->stdio[2].kind == PROC_STDIO_STDOUT && (r = CSYS(SYS_dup3, 1, 2, 0)) < 0)
		child_fail(c, PROC_STEP_STDIO, (int)-r);
}

/* Close every fd >= 3 except keep (the error pipe, close-on-exec). */
CHILD_FN void child_close_fds(struct child_ctx *c, int keep)
{
#ifdef SYS_close_range
	if (c->spec->flags & PROC_FDWALK) {
		/* fall through to the /proc walk */
	} else if (keep < 3) {
		if (CSYS(SYS_close_range, 3u, ~0u, 0u) == 0)
			return;
	} else if (CSYS(SYS_close_range, 3u, (unsigned)keep - 1u, 0u) == 0 &&
		   CSYS(SYS_close_range, (unsigned)keep + 1u, ~0u, 0u) == 0) {
		return;
	}
#endif
	int dfd = (int)CSYS5(SYS_openat, AT_FDCWD, "/proc/self/fd",
			     O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0);
	if (dfd >= 0) {
		char buf[2048];
		long n;
		while ((n = CSYS(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
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
					CSYS(SYS_close, fd, 0, 0);
				off += d->reclen;
			}
		}
		CSYS(SYS_close, dfd, 0, 0);
		if (n == 0)
			return;
	}
	struct { unsigned long long cur, max; } rl; /* the kernel's rlimit64 */
	long max = 65536;
	if (CSYS5(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, &rl, 0) == 0 &&
	    rl.cur != (unsigned long long)RLIM_INFINITY && rl.cur < (unsigned long long)max)
		max = (long)rl.cur;
	for (long fd = 3; fd < max; fd++)
		if (fd != keep)
			CSYS(SYS_close, fd, 0, 0);
}

/* execve each candidate in turn (the parent's PATH search, as execvp:
 * EACCES is remembered, "not there" errors go on to the next one). */
CHILD_FN void child_exec(struct child_ctx *c)
{
	int eacces = 0, last = c->exec_err;
	for (char *const *p = c->cands; *p; p++) {
		last = (int)-CSYS(SYS_execve, *p, c->spec->argv, c->envp);
		if (last == EACCES)
			eacces = 1;
		else if (last != ENOENT && last != ENOTDIR && last != ESTALE &&
			 last != ENODEV && last != ETIMEDOUT && last != ELOOP &&
			 last != ENAMETOOLONG)
			child_fail(c, PROC_STEP_EXEC, last);
	}
	child_fail(c, PROC_STEP_EXEC, eacces ? EACCES : last);
}

#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__) || defined(__i386__))
/* The kernel's struct sigaction: read and reset with rt_sigaction
 * directly, also for the signals glibc reserves (32, 33), whose ignored
 * disposition would survive exec. */
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
#ifdef HAVE_KSIGACTION
	struct ksigaction k;
	for (size_t i = 0; i < sizeof k / sizeof(long); i++)
		((long *)&k)[i] = 0;
	long r = CSYS5(SYS_rt_sigaction, sig, 0, &k, sizeof(unsigned long), 0);
	if (r < 0)
		return sig >= 32 && sig < 35 ? 0 : (int)-r;
	if (k.handler == (void *)SIG_DFL)
		return 0;
	for (size_t i = 0; i < sizeof k / sizeof(long); i++)
		((long *)&k)[i] = 0;
	k.handler = (void *)SIG_DFL;
	r = CSYS5(SYS_rt_sigaction, sig, &k, 0, sizeof(unsigned long), 0);
	return r < 0 ? (int)-r : 0;
#else
	struct sigaction sa;
	if (sigaction(sig, NULL, &sa) == 0) {
		if (sa.sa_handler == SIG_DFL)
			return 0;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = SIG_DFL;
		return sigaction(sig, &sa, NULL) == 0 ? 0 : errno;
	}
	return 0;
#endif
}

CHILD_FN int child_main(void *arg)
{
	struct child_ctx *c = arg;
	const struct proc_spec *s = c->spec;
	long r;

	/* into the cgroup before anything else (unless clone3 put us there):
	 * nothing of the child's runs outside it but these three calls */
	if ((s->flags & PROC_CGROUP) && !c->placed) {
		int fd = (int)CSYS5(SYS_openat, s->cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC, 0, 0);
		if (fd < 0)
			child_fail(c, PROC_STEP_CGROUP, -fd);
		r = CSYS(SYS_write, fd, "0", 1);
		CSYS(SYS_close, fd, 0, 0);
		if (r < 0)
			child_fail(c, PROC_STEP_CGROUP, (int)-r);
	}
	/* dispositions first, while every signal is still blocked */
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		int err = child_sigdfl(sig);
		if (err)
			child_fail(c, PROC_STEP_SIGNALS, err);
	}
	if (s->flags & PROC_SETSID) {
		if ((r = CSYS(SYS_setsid, 0, 0, 0)) < 0)
			child_fail(c, PROC_STEP_SETSID, (int)-r);
	} else if ((s->flags & PROC_NEWPGRP) && (r = CSYS(SYS_setpgid, 0, 0, 0)) < 0) {
		child_fail(c, PROC_STEP_SETPGID, (int)-r);
	}
	child_stdio(c);
	if (s->cwd && (r = CSYS(SYS_chdir, s->cwd, 0, 0)) < 0)
		child_fail(c, PROC_STEP_CHDIR, (int)-r);
	for (size_t i = 0; i < s->nrlimits; i++) {
		struct { unsigned long long cur, max; } rl = { /* the kernel's rlimit64 */
			s->rlimits[i].lim.rlim_cur == RLIM_INFINITY ? ~0ull : s->rlimits[i].lim.rlim_cur,
			s->rlimits[i].lim.rlim_max == RLIM_INFINITY ? ~0ull : s->rlimits[i].lim.rlim_max,
		};
		if ((r = CSYS5(SYS_prlimit64, 0, s->rlimits[i].resource, &rl, 0, 0)) < 0)
			child_fail(c, PROC_STEP_RLIMIT, (int)-r);
	}
	if (s->set_umask)
		CSYS(SYS_umask, s->umask, 0, 0);
	if (s->set_groups && (r = CSYS(NR_SETGROUPS, s->ngroups, s->groups, 0)) < 0)
		child_fail(c, PROC_STEP_SETGROUPS, (int)-r);
	if (s->set_gid && (r = CSYS(NR_SETGID, s->gid, 0, 0)) < 0)
		child_fail(c, PROC_STEP_SETGID, (int)-r);
	if (s->set_uid && (r = CSYS(NR_SETUID, s->uid, 0, 0)) < 0)
		child_fail(c, PROC_STEP_SETUID, (int)-r);
	if (s->flags & PROC_PDEATHSIG) {
		/* after the uid change, which clears the death signal */
		if ((r = CSYS5(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)) < 0)
			child_fail(c, PROC_STEP_PDEATHSIG, (int)-r);
		if (CSYS(SYS_getppid, 0, 0, 0) != c->parent)
			child_fail(c, PROC_STEP_GETPPID, ESRCH);
	}
	child_close_fds(c, c->errfd);
	unsigned long none = 0;
	if ((r = CSYS5(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, sizeof none, 0)) < 0)
		child_fail(c, PROC_STEP_SIGNALS, (int)-r);
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

/*
 * The spawn block: one allocation holding the child's context, a copy of
 * the spec (every string, array, group and rlimit it points at), the
 * environment and the execve candidates.  In the vfork and fork modes it
 * is freed when proc_spawn returns; in the overlapped mode (PROC_ASYNC) it
 * lives until the child has left the parent's memory - the kernel clears
 * `ctid` (CLONE_CHILD_CLEARTID) when the child execs or exits - and, if
 * the child reported a failure, until that report is taken
 * (proc_take_report, after the child was reaped).
 */
struct spawn_block {
	struct spawn_block *next;
	int ctid;               /* != 0 while the child may run in our memory */
	pid_t pid;
	void *stack;            /* its clone stack (a pooled mapping) */
	struct child_ctx ctx;
	struct proc_spec spec;
	max_align_t data[];
};

/* Where block_new lays out the copies: the block's data (base), or
 * nothing while it measures (base NULL, only `used` grows). */
struct layout {
	char *base;
	size_t used;
};

/* Take n bytes aligned to align (a power of two), copying src there if
 * given; NULL while measuring. */
static void *lay_at(struct layout *l, const void *src, size_t n, size_t align)
{
	size_t at = (l->used + align - 1) & ~(align - 1);
	l->used = at + n;
	if (!l->base)
		return NULL;
	void *p = l->base + at;
	if (src && n)
		memcpy(p, src, n);
	return p;
}

/* Arrays (pointers, gid_t, rlimits) are aligned for any of them. */
static void *lay(struct layout *l, const void *src, size_t n)
{
	return lay_at(l, src, n, sizeof(max_align_t));
}

static char *lay_str(struct layout *l, const char *s)
{
	return s ? lay_at(l, s, strlen(s) + 1, 1) : NULL;
}

static char **lay_strv(struct layout *l, char *const *v)
{
	size_t n = 0;
	while (v[n])
		n++;
	char **out = lay(l, NULL, (n + 1) * sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		char *p = lay_str(l, v[i]);
		if (out)
			out[i] = p;
	}
	if (out)
		out[n] = NULL;
	return out;
}

/* The execve candidates of file on path (as execvp searches it). */
static char **lay_cands(struct layout *l, const char *file, const char *path, int *err)
{
	*err = ENOENT;
	if (file[0] == '\0') {
		char **out = lay(l, NULL, sizeof(char *));
		if (out)
			out[0] = NULL;
		return out;
	}
	if (strchr(file, '/')) {
		char **out = lay(l, NULL, 2 * sizeof(char *));
		char *f = lay_str(l, file);
		if (out) {
			out[0] = f;
			out[1] = NULL;
		}
		return out;
	}
	size_t flen = strlen(file), n = 1;
	if (flen > NAME_MAX) {
		*err = ENAMETOOLONG;
		path = "";
		n = 0;
	} else {
		for (const char *p = path; *p; p++)
			n += *p == ':';
	}
	char **out = lay(l, NULL, (n + 1) * sizeof(char *));
	size_t k = 0;
	for (const char *p = path; n > 0;) {
		const char *end = strchr(p, ':');
		size_t dlen = end ? (size_t)(end - p) : strlen(p);
		if (dlen <= PATH_MAX) {
			char *c = lay_at(l, NULL, (dlen ? dlen : 1) + 1 + flen + 1, 1);
			if (c) {
				if (dlen)
					memcpy(c, p, dlen);
				else
					c[0] = '.';
				size_t d = dlen ? dlen : 1;
				c[d] = '/';
				memcpy(c + d + 1, file, flen + 1);
				out[k] = c;
			}
			k++;
		}
		if (!end)
			break;
		p = end + 1;
	}
	if (out)
		out[k] = NULL;
	return out;
}

/* Copy spec into a new block (NULL: out of memory). */
static struct spawn_block *block_new(const struct proc_spec *spec)
{
	static char *const no_env[] = { NULL };
	char *const *envp = spec->envp ? spec->envp : environ ? environ : no_env;
	const char *path = spec->path ? spec->path : env_path(envp);
	struct layout l = { NULL, 0 };
	for (int pass = 0; pass < 2; pass++) {
		struct spawn_block *b = NULL;
		if (pass) {
			b = malloc(sizeof *b + l.used);
			if (!b)
				return NULL;
			memset(b, 0, sizeof *b);
			l.base = (char *)b->data;
			l.used = 0;
		}
		struct proc_spec s = *spec;
		s.file = lay_str(&l, spec->file);
		s.argv = lay_strv(&l, spec->argv);
		char **env = lay_strv(&l, envp);
		s.envp = env;
		s.path = NULL;
		s.cwd = lay_str(&l, spec->cwd);
		s.groups = lay(&l, spec->groups, spec->ngroups * sizeof(gid_t));
		s.rlimits = lay(&l, spec->rlimits, spec->nrlimits * sizeof(struct proc_rlimit));
		int err;
		char **cands = lay_cands(&l, spec->file, path, &err);
		if (pass) {
			b->spec = s;
			b->ctx.spec = &b->spec;
			b->ctx.envp = env;
			b->ctx.cands = cands;
			b->ctx.exec_err = err;
			return b;
		}
	}
	return NULL;
}

/* Overlapped spawns whose block is still held, and a pool of clone
 * stacks (each CHILD_STACK_SIZE); guarded for hosts with threads. */
static pthread_mutex_t blocks_mu = PTHREAD_MUTEX_INITIALIZER;
static struct spawn_block *blocks;
static size_t nblocks;
#define STACK_POOL 16
static void *stack_pool[STACK_POOL];
static int nstack_pool;
/* Blocks kept only for a failure report nobody took (a host that reaps
 * pids itself): the oldest are dropped past this many. */
#define MAX_REPORTS 64

static int block_gone(struct spawn_block *b)
{
	return __atomic_load_n(&b->ctid, __ATOMIC_ACQUIRE) == 0;
}

static void *stack_get(void)
{
	void *st = NULL;
	pthread_mutex_lock(&blocks_mu);
	if (nstack_pool > 0)
		st = stack_pool[--nstack_pool];
	pthread_mutex_unlock(&blocks_mu);
	if (st)
		return st;
	st = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	return st == MAP_FAILED ? NULL : st;
}

/* Free b, its stack back to the pool.  (blocks_mu held) */
static void block_free_locked(struct spawn_block *b)
{
	if (b->stack) {
		if (nstack_pool < STACK_POOL)
			stack_pool[nstack_pool++] = b->stack;
		else
			munmap(b->stack, CHILD_STACK_SIZE);
	}
	free(b);
}

/* Unlink the held block at *pp and free it.  (blocks_mu held) */
static void unhold_locked(struct spawn_block **pp)
{
	struct spawn_block *b = *pp;
	*pp = b->next;
	nblocks--;
	block_free_locked(b);
}

/* Free the blocks whose child is gone and has nothing to report; past
 * MAX_REPORTS unreported failures, the oldest too.  (blocks_mu held) */
static void sweep_locked(void)
{
	size_t reports = 0;
	for (struct spawn_block **pp = &blocks; *pp;) {
		struct spawn_block *b = *pp;
		if (block_gone(b) && (b->ctx.rep.step == PROC_STEP_NONE || ++reports > MAX_REPORTS))
			unhold_locked(pp);
		else
			pp = &b->next;
	}
}

int proc_take_report(pid_t pid, int *step, int *err)
{
	int found = 0;
	pthread_mutex_lock(&blocks_mu);
	for (struct spawn_block **pp = &blocks; *pp; pp = &(*pp)->next) {
		struct spawn_block *b = *pp;
		if (b->pid != pid || !block_gone(b))
			continue;
		volatile struct child_report *vr = &b->ctx.rep;
		if (vr->step != PROC_STEP_NONE) {
			found = 1;
			if (step)
				*step = vr->step;
			if (err)
				*err = vr->err;
		}
		unhold_locked(pp);
		break;
	}
	if (nblocks)
		sweep_locked(); /* (a reap is a good moment for the others too) */
	pthread_mutex_unlock(&blocks_mu);
	return found;
}

size_t proc_blocks_held(void)
{
	pthread_mutex_lock(&blocks_mu);
	sweep_locked();
	size_t n = nblocks;
	pthread_mutex_unlock(&blocks_mu);
	return n;
}

/*
 * clone3 with CLONE_INTO_CGROUP (Linux >= 5.7): the child starts in the
 * cgroup.  clone3 has no libc wrapper that runs a function on a new stack,
 * so the child's side is assembly: it returns from the system call on the
 * block's stack with the parent's registers, calls child_main(ctx) and
 * exits with its result (x86-64; elsewhere the child's write is used).
 */
struct clone3_args {
	unsigned long long flags, pidfd, child_tid, parent_tid, exit_signal;
	unsigned long long stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};
#define CLONE3_INTO_CGROUP 0x200000000ULL

static int clone3_used; /* proc_cgroup_clone3 */

int proc_cgroup_clone3(void)
{
	return __atomic_load_n(&clone3_used, __ATOMIC_RELAXED);
}

#if defined(__linux__) && defined(__x86_64__) && defined(SYS_clone3)
static long clone3_run(struct clone3_args *a, int (*fn)(void *), void *arg)
{
	long ret;
	register long r12 __asm__("r12") = (long)fn;
	register long r13 __asm__("r13") = (long)arg;
	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "xor %%ebp, %%ebp\n\t"
			 "mov %%r13, %%rdi\n\t"
			 "call *%%r12\n\t"
			 "mov %%eax, %%edi\n\t"
			 "mov %[ex], %%eax\n\t"
			 "syscall\n\t"
			 "hlt\n"
			 "1:"
			 : "=a"(ret)
			 : "0"((long)SYS_clone3), "D"(a), "S"(sizeof *a), "r"(r12), "r"(r13),
			   [ex] "i"(SYS_exit_group)
			 : "rcx", "r11", "memory", "cc");
	return ret;
}

/* clone3 into the spec's cgroup on b's stack with the given clone flags
 * (CLONE_VM and the mode's others).  The pid, -errno for failures that
 * any clone would have (EAGAIN, ENOMEM), or 0 when the caller should use
 * the plain clone and the child's write (no clone3, or the cgroup refused
 * by this call: the write then reports why). */
static int clone3_into(struct spawn_block *b, unsigned long long flags, int *pidfd, int *ctid)
{
	static int refused;
	if (__atomic_load_n(&refused, __ATOMIC_RELAXED))
		return 0;
	struct clone3_args a;
	memset(&a, 0, sizeof a);
	a.flags = flags | CLONE3_INTO_CGROUP;
	a.pidfd = (unsigned long long)(uintptr_t)pidfd;
	a.child_tid = (unsigned long long)(uintptr_t)ctid;
	a.exit_signal = SIGCHLD;
	a.stack = (unsigned long long)(uintptr_t)b->stack;
	a.stack_size = CHILD_STACK_SIZE;
	a.cgroup = (unsigned long long)b->spec.cgroup_fd;
	b->ctx.placed = 1;
	long pid = clone3_run(&a, child_main, &b->ctx);
	if (pid > 0) {
		__atomic_store_n(&clone3_used, 1, __ATOMIC_RELAXED);
		return (int)pid;
	}
	b->ctx.placed = 0;
	if (pid == -EAGAIN || pid == -ENOMEM)
		return (int)pid;
	if (pid == -ENOSYS || pid == -EPERM || pid == -E2BIG)
		__atomic_store_n(&refused, 1, __ATOMIC_RELAXED); /* kernel or seccomp: never */
	return 0;
}
#else
static int clone3_into(struct spawn_block *b, unsigned long long flags, int *pidfd, int *ctid)
{
	(void)b;
	(void)flags;
	(void)pidfd;
	(void)ctid;
	return 0;
}
#endif

/* The vfork mode's clone, on the block's pooled stack. */
static int do_clone(struct spawn_block *b, int want_pidfd, int *pidfd)
{
	if (!b->stack && !(b->stack = stack_get()))
		return -ENOMEM;
	char *top = (char *)b->stack + CHILD_STACK_SIZE;
	struct child_ctx *c = &b->ctx;
	int flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
	pid_t pid = -1;
	if (b->spec.flags & PROC_CGROUP) {
		pid = clone3_into(b, CLONE_VM | CLONE_VFORK | (want_pidfd ? CLONE_PIDFD : 0), pidfd, NULL);
		if (pid != 0)
			return pid;
	}
	if (want_pidfd) {
		pid = clone(child_main, top, flags | CLONE_PIDFD, c, pidfd);
		if (pid >= 0 || errno != EINVAL)
			return pid >= 0 ? pid : -errno;
		*pidfd = -1; /* kernel without CLONE_PIDFD: pidfd_open later */
	}
	pid = clone(child_main, top, flags, c);
	return pid >= 0 ? pid : -errno;
}

/* The overlapped clone (PROC_ASYNC): CLONE_VM without CLONE_VFORK, the
 * kernel clearing b->ctid when the child leaves our memory.  Returns the
 * pid, -errno (EAGAIN, ENOMEM), or 0 when this kernel, a seccomp filter
 * or an emulator refuses the flags (the caller falls back to do_clone,
 * now and for every later spawn). */
static int async_clone(struct spawn_block *b, int want_pidfd, int *pidfd)
{
#ifdef PROC_RAW
	static int refused = -1;
	int r = __atomic_load_n(&refused, __ATOMIC_RELAXED);
	if (r < 0) {
		/* valgrind runs only vfork-style CLONE_VM children (it aborts
		 * the process on any other clone); it preloads vgpreload_*.so */
		const char *pre = getenv("LD_PRELOAD");
		r = pre && strstr(pre, "vgpreload") != NULL;
		__atomic_store_n(&refused, r, __ATOMIC_RELAXED);
	}
	if (r)
		return 0;
	b->stack = stack_get();
	if (!b->stack)
		return -ENOMEM;
	char *top = (char *)b->stack + CHILD_STACK_SIZE;
	int flags = CLONE_VM | CLONE_CHILD_CLEARTID | SIGCHLD | (want_pidfd ? CLONE_PIDFD : 0);
	b->ctid = -1;
	pid_t pid = 0;
	if (b->spec.flags & PROC_CGROUP) {
		pid = clone3_into(b, (unsigned)flags & ~(unsigned)SIGCHLD, pidfd, &b->ctid);
		if (pid > 0 || pid == -EAGAIN || pid == -ENOMEM) {
			if (pid < 0)
				b->ctid = 0;
			return pid;
		}
	}
	pid = clone(child_main, top, flags, &b->ctx, pidfd, NULL, &b->ctid);
	if (pid >= 0)
		return pid;
	int err = errno;
	b->ctid = 0;
	if (err == EAGAIN || err == ENOMEM)
		return -err;    /* out of processes or memory: so would vfork be */
	/* the flags refused (EINVAL, ENOSYS; EPERM from a seccomp filter):
	 * the vfork mode from now on */
	__atomic_store_n(&refused, 1, __ATOMIC_RELAXED);
	return 0;
#else
	(void)b;
	(void)want_pidfd;
	(void)pidfd;
	return 0;
#endif
}

/* Start a child; see proc.h for the result conventions. */
int proc_spawn(const struct proc_spec *spec, struct proc_result *res)
{
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
	struct spawn_block *b = block_new(spec);
	if (!b)
		return ENOMEM;
	ep[0] = ep[1] = -1;
	if (use_pipe && pipe2(ep, O_CLOEXEC) < 0) {
		err = errno;
		free(b);
		return err;
	}
	if (use_pipe && ep[1] < 3) { /* the child dup2s onto 0..2: keep the pipe above */
		int fd = fcntl(ep[1], F_DUPFD_CLOEXEC, 3);
		err = errno;
		close(ep[1]);
		if (fd < 0) {
			close(ep[0]);
			free(b);
			return err;
		}
		ep[1] = fd;
	}
	struct child_ctx *c = &b->ctx;
	c->parent = self_pid();
	c->errfd = ep[1];
	c->rep.step = PROC_STEP_NONE;
	c->rep.err = 0;

	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = 0;
	int async = 0;
	if (spec->flags & PROC_FORK) {
		pid = fork();
		if (pid == 0)
			child_main(c);
		if (pid < 0)
			pid = -errno;
	} else {
		if (spec->flags & PROC_ASYNC) {
			pthread_mutex_lock(&blocks_mu);
			sweep_locked();
			pthread_mutex_unlock(&blocks_mu);
			pid = async_clone(b, want_pidfd, &pidfd);
			async = pid > 0;
		}
		if (pid == 0)
			pid = do_clone(b, want_pidfd, &pidfd);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (use_pipe)
		close(ep[1]);
	if (pid < 0) {
		if (use_pipe)
			close(ep[0]);
		pthread_mutex_lock(&blocks_mu);
		block_free_locked(b);
		pthread_mutex_unlock(&blocks_mu);
		return -pid;
	}
	res->pid = pid;
	if (async) {
		/* The child runs on: its block stays until it is gone.  Make its
		 * process group here too (as shells do), so that the group can
		 * be signalled at once; the child's own setpgid is then a no-op
		 * (and this one fails harmlessly once it has exec'd). */
		if ((spec->flags & (PROC_NEWPGRP | PROC_SETSID)) == PROC_NEWPGRP)
			setpgid(pid, pid);
		b->pid = pid;
		pthread_mutex_lock(&blocks_mu);
		b->next = blocks;
		blocks = b;
		nblocks++;
		pthread_mutex_unlock(&blocks_mu);
		res->pidfd = pidfd;
		return 0;
	}

	/* written by the CLONE_VM child behind the compiler's back */
	volatile struct child_report *vr = &c->rep;
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
	pthread_mutex_lock(&blocks_mu);
	block_free_locked(b);
	pthread_mutex_unlock(&blocks_mu);
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
