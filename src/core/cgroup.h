/*
 * cgroup.h - cgroup v2 mechanism (plain C, no Lua): finding the process's
 * own cgroup on the unified hierarchy, creating and removing child
 * cgroups, moving processes, reading cgroup.procs / cgroup.events /
 * cpu.stat / other interface files, cgroup.kill, and an inotify fd that
 * becomes readable when cgroup.events changes (for waiting on
 * "populated 0" without polling).
 * Must not: keep state, print, exit, or block (all calls are short file
 * operations on cgroupfs).  Paths are absolute directories on the unified
 * mount.  Errors are returned as errno values (0 = success).
 */
#ifndef FIBERS_CGROUP_H
#define FIBERS_CGROUP_H

#include <stddef.h>
#include <sys/types.h>

/* The cgroup v2 directory of process pid (0: this process): the unified
 * mount point (first cgroup2 entry of /proc/self/mountinfo) joined with
 * the "0::" line of /proc/PID/cgroup.  ENOENT: no unified hierarchy or no
 * "0::" line; ENAMETOOLONG: out too small. */
int cg_path_of(pid_t pid, char *out, size_t n);
/* The unified mount point into out (ENOENT when there is none). */
int cg_mount(char *out, size_t n);
/* mkdir path (0755); an existing directory is success. */
int cg_create(const char *path);
/* rmdir path; ENOENT counts as success.  EBUSY while populated. */
int cg_remove(const char *path);
/* Move pid (0: the calling process) into path (writes cgroup.procs). */
int cg_attach(const char *path, pid_t pid);
/* *populated = the "populated" value of path/cgroup.events (0 or 1). */
int cg_populated(const char *path, int *populated);
/* End every process in path: cgroup.kill where the kernel has it (5.14),
 * else SIGKILL to each pid of cgroup.procs until it reads empty or
 * nothing more could be signalled.  Do not start new processes in a
 * killed cgroup: some kernels (6.18 seen) compare the kill count of the
 * new child's parent's cgroup with the target's and SIGKILL every child
 * that clone3(CLONE_INTO_CGROUP) places there; remove it once empty and
 * create a fresh one. */
int cg_kill(const char *path);
/* The pids in path/cgroup.procs: *out malloc'd (free it), *n entries. */
int cg_procs(const char *path, pid_t **out, size_t *n);
/* Read path/file into buf (NUL-terminated, trailing newline kept); at
 * most cap-1 bytes.  ENOENT when the file does not exist. */
int cg_read(const char *path, const char *file, char *buf, size_t cap);
/* Write val to path/file (one write(2), as the kernel wants). */
int cg_write(const char *path, const char *file, const char *val);
/* user_usec and system_usec of path/cpu.stat. */
int cg_cpu_stat(const char *path, unsigned long long *user_usec,
		unsigned long long *system_usec);
/* A non-blocking, close-on-exec inotify fd watching path/cgroup.events
 * for modification: readable after each change of "populated".  Returns
 * the fd or -errno. */
int cg_watch(const char *path);

#endif
