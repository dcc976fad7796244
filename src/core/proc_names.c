/*
 * proc_names.c - name tables for the process layer: signals ("TERM",
 * "SIGTERM", case-insensitive) and resource limits ("nofile", ...).
 * Tables, not switch ladders; nothing else lives here.
 */
#include "config.h"

#include <signal.h>
#include <stddef.h>
#include <strings.h>
#include <sys/resource.h>

#include "proc.h"

static const struct {
	const char *name;
	int sig;
} signals[] = {
	{ "HUP", SIGHUP },     { "INT", SIGINT },       { "QUIT", SIGQUIT },
	{ "ILL", SIGILL },     { "TRAP", SIGTRAP },     { "ABRT", SIGABRT },
	{ "BUS", SIGBUS },     { "FPE", SIGFPE },       { "KILL", SIGKILL },
	{ "USR1", SIGUSR1 },   { "SEGV", SIGSEGV },     { "USR2", SIGUSR2 },
	{ "PIPE", SIGPIPE },   { "ALRM", SIGALRM },     { "TERM", SIGTERM },
	{ "CHLD", SIGCHLD },   { "CONT", SIGCONT },     { "STOP", SIGSTOP },
	{ "TSTP", SIGTSTP },   { "TTIN", SIGTTIN },     { "TTOU", SIGTTOU },
	{ "URG", SIGURG },     { "XCPU", SIGXCPU },     { "XFSZ", SIGXFSZ },
	{ "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },   { "WINCH", SIGWINCH },
	{ "IO", SIGIO },       { "SYS", SIGSYS },
#ifdef SIGPWR
	{ "PWR", SIGPWR },
#endif
#ifdef SIGSTKFLT
	{ "STKFLT", SIGSTKFLT },
#endif
	{ "ABRT", SIGABRT },   { "IOT", SIGABRT },      { "POLL", SIGIO },
	{ "CLD", SIGCHLD },
};

static const struct {
	const char *name;
	int res;
} rlimits[] = {
	{ "as", RLIMIT_AS },       { "core", RLIMIT_CORE },   { "cpu", RLIMIT_CPU },
	{ "data", RLIMIT_DATA },   { "fsize", RLIMIT_FSIZE }, { "nofile", RLIMIT_NOFILE },
	{ "stack", RLIMIT_STACK },
#ifdef RLIMIT_NPROC
	{ "nproc", RLIMIT_NPROC },
#endif
#ifdef RLIMIT_MEMLOCK
	{ "memlock", RLIMIT_MEMLOCK },
#endif
#ifdef RLIMIT_RSS
	{ "rss", RLIMIT_RSS },
#endif
#ifdef RLIMIT_LOCKS
	{ "locks", RLIMIT_LOCKS },
#endif
#ifdef RLIMIT_SIGPENDING
	{ "sigpending", RLIMIT_SIGPENDING },
#endif
#ifdef RLIMIT_MSGQUEUE
	{ "msgqueue", RLIMIT_MSGQUEUE },
#endif
#ifdef RLIMIT_NICE
	{ "nice", RLIMIT_NICE },
#endif
#ifdef RLIMIT_RTPRIO
	{ "rtprio", RLIMIT_RTPRIO },
#endif
#ifdef RLIMIT_RTTIME
	{ "rttime", RLIMIT_RTTIME },
#endif
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Signal number for "TERM", "SIGTERM", "term"...; 0 if unknown. */
int proc_signum(const char *name)
{
	if (!name)
		return 0;
	if (strncasecmp(name, "SIG", 3) == 0)
		name += 3;
	for (size_t i = 0; i < N(signals); i++)
		if (strcasecmp(name, signals[i].name) == 0)
			return signals[i].sig;
	return 0;
}

/* Name of sig without the SIG prefix, or NULL if it has none here. */
const char *proc_signame(int sig)
{
	for (size_t i = 0; i < N(signals); i++)
		if (signals[i].sig == sig)
			return signals[i].name;
	return NULL;
}

/* RLIMIT_* for a lower-case name, -1 if unknown. */
int proc_rlimit_resource(const char *name)
{
	if (!name)
		return -1;
	for (size_t i = 0; i < N(rlimits); i++)
		if (strcasecmp(name, rlimits[i].name) == 0)
			return rlimits[i].res;
	return -1;
}
