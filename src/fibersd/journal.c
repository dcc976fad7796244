/*
 * journal.c - where fibersd's log records go (doc/daemon.md §6 "Logging").
 *
 * To the journal with sd_journal_sendv (fields PRIORITY,
 * SYSLOG_IDENTIFIER=fibersd, FIBERS_TASK, FIBERS_SCOPE, FIBERS_STREAM,
 * CHILD_PID; a task's MESSAGE starts with "task: " or "task[pid]: ") when
 * stderr is the journal ($JOURNAL_STREAM matches stderr's dev:ino) or
 * log_target = journal; otherwise lines on stderr: "<N>task:
 * message" when stderr is not a terminal, "HH:MM:SS.mmm level task: message"
 * on a terminal.  If the journal cannot be written the record goes to
 * stderr - nothing is lost.  Multi-line messages get the prefix on every
 * line.  Filtering by level happens here too.  Never exits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fibersd.h"

#ifdef HAVE_SYSTEMD
#define SD_JOURNAL_SUPPRESS_LOCATION 1 /* no CODE_FILE= of our build tree */
#include <systemd/sd-journal.h>
#endif

/* sd_journal_sendv succeeds silently when the journal socket is missing,
 * so its presence is checked first (a stat per record is cheap enough). */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static const char *const level_names[8] = {
	"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

static int log_max = 6;  /* LOG_INFO */
static int use_journal;  /* decided by log_configure */
static int on_terminal;

/* Parse a level name (debug|info|notice|warning|err, also emerg, alert,
 * crit and the aliases error/warn) to a syslog priority; -1 when unknown. */
int log_level_parse(const char *name)
{
	for (int i = 0; i < 8; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	if (strcmp(name, "error") == 0)
		return 3;
	if (strcmp(name, "warn") == 0)
		return 4;
	return -1;
}

#ifdef HAVE_SYSTEMD
/* Is stderr connected to the journal ($JOURNAL_STREAM = "dev:ino")? */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	/* a malformed value cannot match a real dev:ino */
	// NOLINTNEXTLINE(cert-err34-c)
	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}
#endif

/* Set the maximum priority logged and the target. */
void log_configure(int level, enum log_target target)
{
	if (level >= 0 && level <= 7)
		log_max = level;
	on_terminal = isatty(2);
#ifdef HAVE_SYSTEMD
	use_journal = target == LOG_TARGET_JOURNAL ||
		      (target == LOG_TARGET_AUTO && stderr_is_journal());
#else
	(void)target;
	use_journal = 0;
#endif
}

static void write_all(const struct iovec *iov, int n)
{
	struct iovec v[8];
	memcpy(v, iov, (size_t)n * sizeof *v);
	struct iovec *p = v;
	while (n > 0) {
		ssize_t w = writev(2, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return; /* EAGAIN or a closed stderr: drop rather than block */
		}
		while (n > 0 && (size_t)w >= p->iov_len) {
			w -= (ssize_t)p->iov_len;
			p++;
			n--;
		}
		if (n > 0) {
			p->iov_base = (char *)p->iov_base + w;
			p->iov_len -= (size_t)w;
		}
	}
}

/* Who a record is from, as lines start with it: "task", "task[pid]" for a
 * child's output, "fibersd" for the daemon itself. */
static void format_who(char *who, size_t size, const struct log_fields *f)
{
	const char *task = f && f->task ? f->task : "fibersd";
	if (f && f->pid > 0)
		snprintf(who, size, "%s[%ld]", task, f->pid);
	else
		snprintf(who, size, "%s", task);
}

static void emit_stderr(int priority, const char *msg, size_t len, const struct log_fields *f)
{
	char prefix[256], who[160];
	format_who(who, sizeof who, f);
	if (on_terminal) {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		snprintf(prefix, sizeof prefix, "%02d:%02d:%02d.%03ld %s %s: ", tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, level_names[priority], who);
	} else {
		snprintf(prefix, sizeof prefix, "<%d>%s: ", priority, who);
	}
	do {
		const char *nl = memchr(msg, '\n', len);
		size_t n = nl ? (size_t)(nl - msg) : len;
		struct iovec iov[3] = {
			{ prefix, strlen(prefix) },
			{ (void *)msg, n },
			{ "\n", 1 },
		};
		write_all(iov, 3);
		msg += n + (nl != NULL);
		len -= n + (nl != NULL);
	} while (len > 0);
}

#ifdef HAVE_SYSTEMD
static int emit_journal(int priority, const char *msg, size_t len, const struct log_fields *f)
{
	char prio[16], task[160], scope[300], stream[64], pid[32], who[160] = "";
	struct iovec iov[7];
	int n = 0;
	struct stat st;
	if (stat(JOURNAL_SOCKET, &st) != 0 || !S_ISSOCK(st.st_mode))
		return -ENOENT;
	/* A task's MESSAGE starts with its name, as on stderr ("heartbeat:
	 * ready"), so `journalctl -u fibersd` and `systemctl status` say whose
	 * line it is; the daemon's own lines are named by SYSLOG_IDENTIFIER. */
	if (f && f->task) {
		format_who(who, sizeof who - 2, f);
		strcat(who, ": ");
	}
	size_t wl = strlen(who);
	char *m = malloc(8 + wl + len);
	if (m == NULL)
		return -ENOMEM;
	memcpy(m, "MESSAGE=", 8);
	memcpy(m + 8, who, wl);
	memcpy(m + 8 + wl, msg, len);
	iov[n++] = (struct iovec){ m, 8 + wl + len };
	snprintf(prio, sizeof prio, "PRIORITY=%d", priority);
	iov[n++] = (struct iovec){ prio, strlen(prio) };
	iov[n++] = (struct iovec){ "SYSLOG_IDENTIFIER=fibersd", 25 };
	if (f && f->task) {
		snprintf(task, sizeof task, "FIBERS_TASK=%s", f->task);
		iov[n++] = (struct iovec){ task, strlen(task) };
	}
	if (f && f->scope) {
		snprintf(scope, sizeof scope, "FIBERS_SCOPE=%s", f->scope);
		iov[n++] = (struct iovec){ scope, strlen(scope) };
	}
	if (f && f->stream) {
		snprintf(stream, sizeof stream, "FIBERS_STREAM=%s", f->stream);
		iov[n++] = (struct iovec){ stream, strlen(stream) };
	}
	if (f && f->pid > 0) {
		snprintf(pid, sizeof pid, "CHILD_PID=%ld", f->pid);
		iov[n++] = (struct iovec){ pid, strlen(pid) };
	}
	int r = sd_journal_sendv(iov, n);
	free(m);
	return r;
}
#endif

/* Emit one record; returns true when it was written (not filtered). */
bool log_emit(int priority, const char *msg, size_t len, const struct log_fields *f)
{
	if (priority < 0)
		priority = 0;
	if (priority > 7)
		priority = 7;
	if (priority > log_max)
		return false;
#ifdef HAVE_SYSTEMD
	if (use_journal && emit_journal(priority, msg, len, f) >= 0)
		return true;
#endif
	emit_stderr(priority, msg, len, f);
	return true;
}
