/*
 * sigwatch.c - signal delivery into the event loop: a signalfd backend
 * (Linux) and a self-pipe backend (portable fallback), see sigwatch.h.
 *
 * Masks: with signalfd a watched signal must be blocked, or its default
 * action (terminate, for INT/TERM/HUP) would still run.  We block exactly
 * the signals asked for and remember which of them were not blocked
 * before, so that sig_del/sig_close unblock only what we blocked.  The
 * self-pipe backend instead installs a handler (SA_RESTART) and keeps the
 * previous action to restore; the handler only write()s, which is
 * async-signal-safe, and preserves errno.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_SYS_SIGNALFD_H
#include <sys/signalfd.h>
#endif

#include "sigwatch.h"

#ifndef NSIG
#define NSIG 65
#endif

struct sig_watch {
	enum sig_backend backend;
	int fd;                 /* signalfd, or the pipe's read end */
	int wfd;                /* the pipe's write end (pipe backend) */
	sigset_t mask;          /* watched */
	sigset_t ours;          /* blocked by us (signalfd backend) */
	struct sigaction old[NSIG];     /* previous actions (pipe backend) */
};

static volatile int pipe_wfd = -1;

static void on_signal(int signum)
{
	int saved = errno;
	unsigned char b = (unsigned char)signum;
	if (pipe_wfd >= 0)
		(void)!write(pipe_wfd, &b, 1);
	errno = saved;
}

static int set_flags(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return errno;
	return 0;
}

int sig_open(struct sig_watch **out, enum sig_backend backend)
{
	if (backend == SIG_BACKEND_DEFAULT) {
		const char *env = getenv("FIBERS_SIGNAL");
		if (env && strcmp(env, "pipe") == 0)
			backend = SIG_BACKEND_PIPE;
		else if (env && *env && strcmp(env, "signalfd") != 0)
			return EINVAL;
		else
#ifdef HAVE_SIGNALFD
			backend = SIG_BACKEND_SIGNALFD;
#else
			backend = SIG_BACKEND_PIPE;
#endif
	}
	struct sig_watch *w = calloc(1, sizeof *w);
	if (!w)
		return ENOMEM;
	w->backend = backend;
	w->fd = w->wfd = -1;
	sigemptyset(&w->mask);
	sigemptyset(&w->ours);
	if (backend == SIG_BACKEND_SIGNALFD) {
#ifdef HAVE_SIGNALFD
		w->fd = signalfd(-1, &w->mask, SFD_NONBLOCK | SFD_CLOEXEC);
		if (w->fd < 0) {
			int err = errno;
			free(w);
			return err;
		}
#else
		free(w);
		return ENOSYS;
#endif
	} else {
		int p[2], err;
		if (pipe_wfd >= 0) {
			free(w);
			return EBUSY;
		}
		if (pipe(p) != 0) {
			err = errno;
			free(w);
			return err;
		}
		if ((err = set_flags(p[0])) != 0 || (err = set_flags(p[1])) != 0) {
			close(p[0]);
			close(p[1]);
			free(w);
			return err;
		}
		w->fd = p[0];
		w->wfd = p[1];
		pipe_wfd = p[1];
	}
	*out = w;
	return 0;
}

const char *sig_backend_name(const struct sig_watch *w)
{
	return w->backend == SIG_BACKEND_SIGNALFD ? "signalfd" : "pipe";
}

int sig_fd(const struct sig_watch *w)
{
	return w->fd;
}

static int valid(int signum)
{
	return signum > 0 && signum < NSIG && signum != SIGKILL && signum != SIGSTOP;
}

int sig_watched(const struct sig_watch *w, int signum)
{
	return signum > 0 && signum < NSIG && sigismember(&w->mask, signum) == 1;
}

int sig_add(struct sig_watch *w, int signum)
{
	if (!valid(signum))
		return EINVAL;
	if (sig_watched(w, signum))
		return 0;
	sigset_t one, old;
	sigemptyset(&one);
	sigaddset(&one, signum);
	if (w->backend == SIG_BACKEND_PIPE) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_signal;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		if (sigaction(signum, &sa, &w->old[signum]) != 0)
			return errno;
		/* a blocked signal would never reach the handler */
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		sigaddset(&w->mask, signum);
		return 0;
	}
#ifdef HAVE_SIGNALFD
	if (sigprocmask(SIG_BLOCK, &one, &old) != 0)
		return errno;
	if (!sigismember(&old, signum))
		sigaddset(&w->ours, signum);
	sigaddset(&w->mask, signum);
	if (signalfd(w->fd, &w->mask, 0) < 0) {
		int err = errno;
		sig_del(w, signum);
		return err;
	}
	return 0;
#else
	(void)old;
	return ENOSYS;
#endif
}

int sig_del(struct sig_watch *w, int signum)
{
	if (signum <= 0 || signum >= NSIG)
		return EINVAL;
	if (!sig_watched(w, signum))
		return 0;
	sigdelset(&w->mask, signum);
	if (w->backend == SIG_BACKEND_PIPE) {
		sigaction(signum, &w->old[signum], NULL);
		return 0;
	}
#ifdef HAVE_SIGNALFD
	signalfd(w->fd, &w->mask, 0);
	if (sigismember(&w->ours, signum)) {
		sigset_t one;
		sigemptyset(&one);
		sigaddset(&one, signum);
		sigdelset(&w->ours, signum);
		sigprocmask(SIG_UNBLOCK, &one, NULL);
	}
#endif
	return 0;
}

int sig_read(struct sig_watch *w, int *out, int max, int *n)
{
	*n = 0;
	if (w->backend == SIG_BACKEND_PIPE) {
		unsigned char buf[64];
		if (max > (int)sizeof buf)
			max = (int)sizeof buf;
		ssize_t r = read(w->fd, buf, (size_t)max);
		if (r < 0)
			return (errno == EAGAIN || errno == EINTR) ? 0 : errno;
		for (ssize_t i = 0; i < r; i++)
			out[i] = buf[i];
		*n = (int)r;
		return 0;
	}
#ifdef HAVE_SIGNALFD
	struct signalfd_siginfo si[16];
	if (max > 16)
		max = 16;
	ssize_t r = read(w->fd, si, (size_t)max * sizeof si[0]);
	if (r < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : errno;
	int k = (int)((size_t)r / sizeof si[0]);
	for (int i = 0; i < k; i++)
		out[i] = (int)si[i].ssi_signo;
	*n = k;
#endif
	return 0;
}

void sig_close(struct sig_watch *w)
{
	if (!w)
		return;
	for (int s = 1; s < NSIG; s++)
		if (sig_watched(w, s))
			sig_del(w, s);
	if (w->fd >= 0)
		close(w->fd);
	if (w->wfd >= 0) {
		pipe_wfd = -1;
		close(w->wfd);
	}
	free(w);
}
