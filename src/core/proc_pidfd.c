/*
 * proc_pidfd.c - the exit side of processes: backend choice (pidfd or
 * SIGCHLD), pidfds, signalling, and the one reaper.
 *
 * Why one waitpid(-1) reaper: a host that is a child subreaper must reap
 * orphans, and a second, per-pid waiter would race it for a Command's
 * status.  So every exit is collected here and handed to the caller, which
 * dispatches by pid; pids it does not know are orphans.  pidfds are used for
 * wake-ups (a pidfd polls readable when its process exits) and for
 * signalling without pid-reuse races; the reaper itself never needs them.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"

static int backend;

static int sys_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0u);
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* The backend to use, probed once (FIBERS_PROC=sigchld forces SIGCHLD). */
int proc_backend(void)
{
	if (backend)
		return backend;
	const char *force = getenv("FIBERS_PROC");
	if (force && strcmp(force, "sigchld") == 0) {
		backend = PROC_BACKEND_SIGCHLD;
		return backend;
	}
	/* probe with ourselves: works on Linux >= 5.3 */
	int fd = sys_pidfd_open(getpid());
	if (fd >= 0) {
		close(fd);
		backend = PROC_BACKEND_PIDFD;
	} else {
		backend = PROC_BACKEND_SIGCHLD;
	}
	return backend;
}

/* Open a pidfd for pid (close-on-exec by kernel default). */
int proc_pidfd_open(pid_t pid)
{
	int fd = sys_pidfd_open(pid);
	return fd >= 0 ? fd : -errno;
}

/* Send sig to one process, through its pidfd when there is one. */
int proc_send_signal(pid_t pid, int pidfd, int sig)
{
#ifdef SYS_pidfd_send_signal
	if (pidfd >= 0) {
		if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0u) == 0)
			return 0;
		if (errno != ENOSYS)
			return errno;
	}
#else
	(void)pidfd;
#endif
	if (pid <= 0)
		return EINVAL;
	return kill(pid, sig) == 0 ? 0 : errno;
}

/* Send sig to every process of group pgid. */
int proc_killpg(pid_t pgid, int sig)
{
	if (pgid <= 1)
		return EINVAL; /* never -1 (everyone) or the init group */
	return kill(-pgid, sig) == 0 ? 0 : errno;
}

/* 1 while any process, zombies included, is a member of group pgid. */
int proc_group_alive(pid_t pgid)
{
	if (pgid <= 1)
		return 0;
	return kill(-pgid, 0) == 0 || errno == EPERM;
}

/* Collect every exited child, calling fn(ud, pid, status) for each. */
int proc_reap(proc_reap_fn fn, void *ud)
{
	int n = 0;
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			break;
		n++;
		if (fn)
			fn(ud, pid, st);
	}
	return n;
}

/* Decode a wait status into exited (1, code) or signalled (2, signo). */
int proc_decode_status(int status, int *code)
{
	if (WIFEXITED(status)) {
		*code = WEXITSTATUS(status);
		return 1;
	}
	if (WIFSIGNALED(status)) {
		*code = WTERMSIG(status);
		return 2;
	}
	*code = 0;
	return 0;
}
