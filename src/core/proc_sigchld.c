/*
 * proc_sigchld.c - the SIGCHLD wake-up backend for hosts without a signal
 * layer: a SA_RESTART handler writes one byte to a non-blocking self-pipe,
 * whose read end the host polls; then it drains the pipe and calls
 * proc_reap.  Signals coalesce, so a wake-up means "reap until nothing is
 * left", never "one child exited".
 *
 * The Lua runtime does not use this file: there SIGCHLD arrives through the
 * runtime's own signal layer (core.signal), which owns signal delivery.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

static int sp[2] = { -1, -1 };
static struct sigaction old_sa;

static void on_sigchld(int sig)
{
	int saved = errno;
	char b = (char)sig;
	ssize_t r = write(sp[1], &b, 1); /* full pipe: a wake-up is pending */
	(void)r;
	errno = saved;
}

/* Install the SIGCHLD handler and return the self-pipe's read end. */
int proc_sigchld_open(void)
{
	if (sp[0] >= 0)
		return sp[0];
	if (pipe2(sp, O_CLOEXEC | O_NONBLOCK) < 0) {
		sp[0] = sp[1] = -1;
		return -errno;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigchld;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGCHLD, &sa, &old_sa) < 0) {
		int err = errno;
		close(sp[0]);
		close(sp[1]);
		sp[0] = sp[1] = -1;
		return -err;
	}
	/* make sure SIGCHLD is not blocked in this thread */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	return sp[0];
}

/* Empty the self-pipe. */
void proc_sigchld_drain(void)
{
	char buf[64];
	if (sp[0] < 0)
		return;
	while (read(sp[0], buf, sizeof buf) > 0)
		;
}

/* Restore the previous SIGCHLD disposition and close the pipe. */
void proc_sigchld_close(void)
{
	if (sp[0] < 0)
		return;
	sigaction(SIGCHLD, &old_sa, NULL);
	close(sp[0]);
	close(sp[1]);
	sp[0] = sp[1] = -1;
}
