/*
 * tests/unit/signal.c - signal watchers on both backends (signalfd and the
 * self-pipe): delivery through the fd, masks (only watched signals are
 * blocked, and only what we blocked is unblocked), handler restore, bad
 * signals, FIBERS_SIGNAL selection.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "sigwatch.h"

static int blocked(int sig)
{
	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	return sigismember(&cur, sig) == 1;
}

static int readable(int fd, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	return poll(&p, 1, ms) == 1;
}

static void backend(enum sig_backend b, const char *name)
{
	struct sig_watch *w;
	int sigs[16], n;
	is_int(sig_open(&w, b), 0, "%s: open", name);
	ok(strcmp(sig_backend_name(w), name) == 0, "%s: backend name", name);
	ok(sig_fd(w) >= 0, "%s: has an fd", name);
	is_int(sig_add(w, SIGKILL), EINVAL, "%s: SIGKILL cannot be watched", name);
	is_int(sig_add(w, SIGSTOP), EINVAL, "%s: SIGSTOP cannot be watched", name);
	is_int(sig_add(w, 0), EINVAL, "%s: signal 0 is invalid", name);
	is_int(sig_add(w, 100000), EINVAL, "%s: huge signal is invalid", name);
	is_int(sig_add(w, SIGUSR1), 0, "%s: watch SIGUSR1", name);
	is_int(sig_add(w, SIGUSR1), 0, "%s: watching twice is fine", name);
	ok(sig_watched(w, SIGUSR1) && !sig_watched(w, SIGUSR2), "%s: sig_watched", name);
	if (b == SIG_BACKEND_SIGNALFD)
		ok(blocked(SIGUSR1) && !blocked(SIGUSR2), "%s: only the watched signal is blocked", name);
	else
		ok(!blocked(SIGUSR1), "%s: pipe backend leaves the signal unblocked", name);
	is_int(sig_read(w, sigs, 16, &n), 0, "%s: read with nothing pending", name);
	is_int(n, 0, "%s: nothing pending", name);
	kill(getpid(), SIGUSR1);
	ok(readable(sig_fd(w), 2000), "%s: fd readable after kill", name);
	sig_read(w, sigs, 16, &n);
	ok(n == 1 && sigs[0] == SIGUSR1, "%s: read reports SIGUSR1", name);
	ok(!readable(sig_fd(w), 0), "%s: drained", name);
	sig_add(w, SIGUSR2);
	kill(getpid(), SIGUSR2);
	kill(getpid(), SIGUSR1);
	ok(readable(sig_fd(w), 2000), "%s: readable again", name);
	int got1 = 0, got2 = 0, tries = 0;
	while ((!got1 || !got2) && tries++ < 100) {
		sig_read(w, sigs, 16, &n);
		for (int i = 0; i < n; i++) {
			got1 |= sigs[i] == SIGUSR1;
			got2 |= sigs[i] == SIGUSR2;
		}
		if (!got1 || !got2)
			readable(sig_fd(w), 20);
	}
	ok(got1 && got2, "%s: both signals delivered", name);
	is_int(sig_del(w, SIGUSR2), 0, "%s: stop watching SIGUSR2", name);
	ok(!blocked(SIGUSR2), "%s: SIGUSR2 unblocked again", name);
	sig_close(w);
	ok(!blocked(SIGUSR1), "%s: close unblocks what we blocked", name);
	if (b == SIG_BACKEND_PIPE) {
		struct sigaction sa;
		sigaction(SIGUSR1, NULL, &sa);
		ok(sa.sa_handler == SIG_DFL, "%s: close restores the previous handler", name);
	}
}

int main(void)
{
	struct sig_watch *w, *w2;
	sigset_t one;
	/* A signal blocked before we watch it stays blocked after we stop. */
	sigemptyset(&one);
	sigaddset(&one, SIGHUP);
	sigprocmask(SIG_BLOCK, &one, NULL);
	if (sig_open(&w, SIG_BACKEND_SIGNALFD) == 0) {
		sig_add(w, SIGHUP);
		sig_close(w);
		ok(blocked(SIGHUP), "a signal that was blocked before stays blocked");
	}
	sigprocmask(SIG_UNBLOCK, &one, NULL);

	backend(SIG_BACKEND_SIGNALFD, "signalfd");
	backend(SIG_BACKEND_PIPE, "pipe");

	is_int(sig_open(&w, SIG_BACKEND_PIPE), 0, "pipe watcher");
	is_int(sig_open(&w2, SIG_BACKEND_PIPE), EBUSY, "only one pipe watcher per process");
	sig_close(w);
	setenv("FIBERS_SIGNAL", "pipe", 1);
	ok(sig_open(&w, SIG_BACKEND_DEFAULT) == 0 && strcmp(sig_backend_name(w), "pipe") == 0,
	   "FIBERS_SIGNAL=pipe forces the self-pipe");
	sig_close(w);
	setenv("FIBERS_SIGNAL", "bogus", 1);
	is_int(sig_open(&w, SIG_BACKEND_DEFAULT), EINVAL, "unknown FIBERS_SIGNAL is EINVAL");
	unsetenv("FIBERS_SIGNAL");
	ok(sig_open(&w, SIG_BACKEND_DEFAULT) == 0 && strcmp(sig_backend_name(w), "signalfd") == 0,
	   "default backend is signalfd on Linux");
	sig_close(w);
	return done_testing();
}
