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

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
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

/* The state letter and process group of /proc/<name>/stat: 1, or 0 when
 * it cannot be read (the process is gone).  The command name may hold
 * spaces and ')', so the fields are read after its last ')'. */
static int stat_of(const char *name, char *state, long *pgrp)
{
	char path[64], buf[512];
	if (snprintf(path, sizeof path, "/proc/%s/stat", name) >= (int)sizeof path)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n;
	do
		n = read(fd, buf, sizeof buf - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	long ppid;
	return p && sscanf(p + 1, " %c %ld %ld", state, &ppid, pgrp) == 3;
}

/* 1 while a live process is a member of group pgid.  Zombies do not
 * count: an orphan's zombie waits for a reaper that may take seconds
 * (an init that reaps in batches) or never come (a container without a
 * reaping init), and waiting on it would hold a shutdown for its whole
 * grace.  Without a readable /proc every member counts. */
int proc_group_alive(pid_t pgid)
{
	if (pgid <= 1)
		return 0;
	if (kill(-pgid, 0) != 0 && errno != EPERM)
		return 0;
	char name[24], state;
	long pgrp;
	snprintf(name, sizeof name, "%ld", (long)pgid);
	if (stat_of(name, &state, &pgrp) && pgrp == pgid && state != 'Z' && state != 'X')
		return 1;               /* the leader itself, still running */
	DIR *d = opendir("/proc");
	if (!d)
		return 1;
	int alive = 0;
	struct dirent *e;
	while (!alive && (e = readdir(d)) != NULL) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		if (stat_of(e->d_name, &state, &pgrp) && pgrp == pgid && state != 'Z' && state != 'X')
			alive = 1;
	}
	closedir(d);
	return alive;
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
