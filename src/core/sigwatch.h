/*
 * sigwatch.h - POSIX signals delivered as a readable fd, for the event loop.
 *
 * A watcher owns one fd that becomes readable when a watched signal
 * arrives; sig_read() then says which ones.  Two backends, both compiled:
 *
 *   signalfd  (Linux) the watched signals are BLOCKED in the process mask
 *             and read from a signalfd; only the signals asked for are
 *             blocked, and close/del unblock exactly what we blocked;
 *   pipe      (portable) a handler writes the signal number to a
 *             non-blocking self-pipe; del/close restore the old handler.
 *
 * FIBERS_SIGNAL=pipe forces the self-pipe backend (tests run both).  Only
 * one pipe-backend watcher can exist per process (the handler needs a
 * global fd).  Children spawned by the process inherit the blocked mask
 * unless the spawner resets it (proc.c does).
 */
#ifndef FIBERS_SIGWATCH_H
#define FIBERS_SIGWATCH_H

enum sig_backend {
	SIG_BACKEND_DEFAULT,    /* FIBERS_SIGNAL, else signalfd where available */
	SIG_BACKEND_SIGNALFD,
	SIG_BACKEND_PIPE,
};

struct sig_watch;

/* Open a watcher: 0 and *out, EINVAL (bad FIBERS_SIGNAL), ENOSYS (backend
 * not compiled), EBUSY (a second pipe watcher), or an OS errno. */
int sig_open(struct sig_watch **out, enum sig_backend backend);
/* Stop watching everything (restoring masks/handlers) and close the fd. */
void sig_close(struct sig_watch *w);
/* "signalfd" or "pipe". */
const char *sig_backend_name(const struct sig_watch *w);
/* The fd to poll for input. */
int sig_fd(const struct sig_watch *w);
/* Start watching signum: 0, or EINVAL (bad number, SIGKILL, SIGSTOP). */
int sig_add(struct sig_watch *w, int signum);
/* Stop watching signum (no-op if not watched): 0 or EINVAL. */
int sig_del(struct sig_watch *w, int signum);
/* 1 if signum is watched. */
int sig_watched(const struct sig_watch *w, int signum);
/* Read the signals that arrived, without blocking: up to max numbers into
 * out, *n = how many (0 if none).  0 or an OS errno. */
int sig_read(struct sig_watch *w, int *out, int max, int *n);

#endif
