/*
 * proc_test.h - helpers shared by the process-core unit tests
 * (tests/unit/proc.c, tests/unit/proc_reap.c): the TAP helpers of tap.h,
 * waiting for one child, and running a spec with stdout captured through
 * a pipe.
 */
#ifndef FIBERS_PROC_TEST_H
#define FIBERS_PROC_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "tap.h"

/* Wait for one specific child (tests only; the library reaps with -1). */
static inline int t_wait(pid_t pid)
{
	int st = -1;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return st;
}

/* Run spec with stdout to a pipe; store up to cap-1 bytes of output in out,
 * return the wait status (or -1000 - errno for a parent failure). */
static inline int t_capture(struct proc_spec *spec, char *out, size_t cap,
			    struct proc_result *res)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1000 - errno;
	spec->stdio[1].kind = PROC_STDIO_FD;
	spec->stdio[1].fd = p[1];
	int err = proc_spawn(spec, res);
	close(p[1]);
	size_t len = 0;
	if (err == 0 && res->child_step == PROC_STEP_NONE) {
		ssize_t n;
		while ((n = read(p[0], out + len, cap - 1 - len)) > 0)
			len += (size_t)n;
	}
	out[len] = '\0';
	close(p[0]);
	if (err)
		return -1000 - err;
	if (res->pidfd >= 0)
		close(res->pidfd);
	if (res->child_step != PROC_STEP_NONE)
		return res->status;
	int st = t_wait(res->pid);
	/* an overlapped spawn's child reports a failure once reaped */
	if ((spec->flags & PROC_ASYNC) &&
	    proc_take_report(res->pid, &res->child_step, &res->child_errno))
		res->status = st;
	return st;
}

#endif
