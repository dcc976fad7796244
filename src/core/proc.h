/*
 * proc.h - process spawning, reaping and signalling (plain C, no Lua).
 *
 * Owns: starting a child with wired stdio, cwd, environment, process group,
 * credentials, umask and rlimits (proc.c); collecting exit statuses with one
 * waitpid(-1, WNOHANG) reaper, signalling through pidfds or kill(2), and the
 * backend choice pidfd / SIGCHLD (proc_pidfd.c); a SIGCHLD self-pipe for
 * hosts without a signal layer (proc_sigchld.c); signal and rlimit names
 * (proc_names.c).
 * Must not: keep a table of children (the caller dispatches reaped pids;
 * overlapped spawns keep only the memory their child still reads, and its
 * failure report), print, exit, or block except where documented (spawn
 * waits for the child's exec, as vfork does, unless PROC_ASYNC).
 */
#ifndef FIBERS_PROC_H
#define FIBERS_PROC_H

#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

/* How one of the child's fds 0..2 is set up. */
enum proc_stdio_kind {
	PROC_STDIO_INHERIT = 0, /* leave the parent's fd as it is */
	PROC_STDIO_NULL,        /* /dev/null (opened in the child, blocking) */
	PROC_STDIO_FD,          /* dup2 of the given fd */
	PROC_STDIO_STDOUT,      /* stderr only: a copy of the child's stdout */
};

struct proc_stdio {
	int kind;
	int fd;
};

struct proc_rlimit {
	int resource;
	struct rlimit lim;
};

/* Spec flags. */
#define PROC_NEWPGRP 0x1u   /* setpgid(0, 0): own process group */
#define PROC_SETSID 0x2u    /* setsid(): own session and group */
#define PROC_PDEATHSIG 0x4u /* SIGKILL on parent death, then getppid check */
#define PROC_PIDFD 0x8u     /* obtain a pidfd (CLONE_PIDFD or pidfd_open) */
#define PROC_FORK 0x10u     /* use fork() instead of clone(CLONE_VM|CLONE_VFORK) */
#define PROC_FDWALK 0x20u   /* close fds by walking /proc/self/fd, as where
			     * close_range is missing (tests the fallback) */
#define PROC_ASYNC 0x40u    /* overlapped: return once the child exists, not
			     * once it has exec'd (CLONE_VM without
			     * CLONE_VFORK, raw system calls in the child;
			     * x86-64 and AArch64, else the vfork mode).  A
			     * failure in the child is then reported after it
			     * is reaped: proc_take_report */
#define PROC_CGROUP 0x80u   /* start the child in the cgroup v2 directory
			     * cgroup_fd: clone3(CLONE_INTO_CGROUP) where the
			     * kernel has it, else the child writes its
			     * cgroup.procs first thing, before anything else
			     * of its setup (it never execs outside) */

struct proc_spec {
	const char *file;    /* program; searched on `path` unless it has a '/' */
	char *const *argv;   /* NULL-terminated */
	char *const *envp;   /* NULL-terminated, or NULL for the parent's environ */
	const char *path;    /* search path; NULL: PATH of envp, else a default */
	const char *cwd;     /* NULL: unchanged */
	struct proc_stdio stdio[3];
	unsigned flags;
	int set_groups, set_gid, set_uid, set_umask;
	const gid_t *groups;
	size_t ngroups;
	gid_t gid;
	uid_t uid;
	mode_t umask;
	const struct proc_rlimit *rlimits;
	size_t nrlimits;
	int cgroup_fd; /* PROC_CGROUP: an fd of the cgroup's directory
			* (O_PATH is enough) */
};

/* Steps of the child's setup; a failure reports one of these and an errno. */
enum proc_step {
	PROC_STEP_NONE = 0,
	PROC_STEP_SIGNALS,
	PROC_STEP_SETSID,
	PROC_STEP_SETPGID,
	PROC_STEP_STDIO,
	PROC_STEP_DEVNULL,
	PROC_STEP_CHDIR,
	PROC_STEP_RLIMIT,
	PROC_STEP_SETGROUPS,
	PROC_STEP_SETGID,
	PROC_STEP_SETUID,
	PROC_STEP_PDEATHSIG,
	PROC_STEP_GETPPID,
	PROC_STEP_CLOSEFDS,
	PROC_STEP_EXEC,
	PROC_STEP_CGROUP,
	PROC_STEP_MAX
};

struct proc_result {
	pid_t pid;       /* > 0 once a child existed */
	int pidfd;       /* -1 unless PROC_PIDFD and supported */
	int child_step;  /* PROC_STEP_NONE, or the step that failed in the child */
	int child_errno; /* errno of that step */
	int status;      /* wait status when child_step != NONE (already reaped) */
};

/* Start a child.  Returns 0 with res->pid set when a child was created; if
 * its setup failed before exec, res->child_step/child_errno say why and the
 * child has already been reaped (it exited with 127) - except with
 * PROC_ASYNC, where it exits with 127 and proc_take_report says why.
 * Returns an errno for failures in the parent (no child then,
 * res->pid == 0). */
int proc_spawn(const struct proc_spec *spec, struct proc_result *res);
/* How the last PROC_CGROUP spawn of this process was placed: 1 by
 * clone3(CLONE_INTO_CGROUP), 0 by the child's cgroup.procs write (for
 * tests and the benchmark). */
int proc_cgroup_clone3(void);
/* Name of a child step ("chdir", "setuid", "exec", ...). */
const char *proc_step_name(int step);
/* After reaping pid: 1 with *step and *err (either may be NULL) if it was an
 * overlapped spawn (PROC_ASYNC) whose child failed before exec, else 0.
 * Releases what the spawn kept for that child. */
int proc_take_report(pid_t pid, int *step, int *err);
/* Overlapped spawns whose memory is still kept: children not yet past
 * exec, and failure reports not yet taken (for tests). */
size_t proc_blocks_held(void);

/* Exit backends. */
enum proc_backend { PROC_BACKEND_PIDFD = 1, PROC_BACKEND_SIGCHLD = 2 };
/* The backend to use: pidfd when the kernel has it, unless the environment
 * variable FIBERS_PROC=sigchld forces the fallback.  Probed once. */
int proc_backend(void);
/* Open a pidfd for pid (O_CLOEXEC).  Returns the fd or -errno. */
int proc_pidfd_open(pid_t pid);
/* Send sig to one process: through pidfd when >= 0, else kill(pid).  0 or
 * errno (ESRCH when it is gone). */
int proc_send_signal(pid_t pid, int pidfd, int sig);
/* Send sig to the process group pgid.  0 or errno. */
int proc_killpg(pid_t pgid, int sig);
/* 1 if a live process (not a zombie) is in group pgid, else 0. */
int proc_group_alive(pid_t pgid);

/* Called by proc_reap for each collected child. */
typedef void (*proc_reap_fn)(void *ud, pid_t pid, int status);
/* Collect every exited child with waitpid(-1, WNOHANG), calling fn for each
 * (the caller dispatches by pid, and treats unknown pids as orphans).
 * Returns the number collected. */
int proc_reap(proc_reap_fn fn, void *ud);
/* Decode a wait status: returns 1 and sets *code for a normal exit, 2 and
 * *code = signal number for death by signal, 0 otherwise (stopped). */
int proc_decode_status(int status, int *code);

/* SIGCHLD self-pipe backend, for hosts without a signal layer: installs a
 * SIGCHLD handler writing one byte to a non-blocking pipe.  Returns the read
 * end (poll it for input, then call proc_sigchld_drain and proc_reap) or
 * -errno.  Idempotent. */
int proc_sigchld_open(void);
/* Empty the self-pipe. */
void proc_sigchld_drain(void);
/* Restore the previous SIGCHLD disposition and close the pipe. */
void proc_sigchld_close(void);

/* Signal number for a name ("TERM", "SIGTERM", "term"); 0 if unknown. */
int proc_signum(const char *name);
/* Name of a signal without the SIG prefix ("TERM"), or NULL. */
const char *proc_signame(int sig);
/* RLIMIT_* for a name ("nofile", "core", ...); -1 if unknown. */
int proc_rlimit_resource(const char *name);

#endif
