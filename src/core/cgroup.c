/*
 * cgroup.c - the cgroup v2 mechanism of cgroup.h: interface files read and
 * written with open/read/write (cgroupfs files are small and never block),
 * the unified mount found in /proc/self/mountinfo, a process's cgroup in
 * /proc/PID/cgroup.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"

/* path + "/" + file into buf. */
static int join(char *buf, size_t cap, const char *path, const char *file)
{
	int n = snprintf(buf, cap, "%s/%s", path, file);
	return n < 0 || (size_t)n >= cap ? ENAMETOOLONG : 0;
}

/* Read a whole small file (at most cap-1 bytes) into buf. */
static int read_file(const char *fn, char *buf, size_t cap)
{
	int fd = open(fn, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	size_t got = 0;
	while (got + 1 < cap) {
		ssize_t r = read(fd, buf + got, cap - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = errno;
			close(fd);
			return err;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	close(fd);
	return 0;
}

int cg_read(const char *path, const char *file, char *buf, size_t cap)
{
	char fn[4096];
	int err = join(fn, sizeof fn, path, file);
	if (err)
		return err;
	return read_file(fn, buf, cap);
}

int cg_write(const char *path, const char *file, const char *val)
{
	char fn[4096];
	int err = join(fn, sizeof fn, path, file);
	if (err)
		return err;
	int fd = open(fn, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	size_t len = strlen(val);
	ssize_t w;
	do
		w = write(fd, val, len);
	while (w < 0 && errno == EINTR);
	err = w < 0 ? errno : (size_t)w != len ? EIO : 0;
	if (close(fd) < 0 && !err && errno != EINTR)
		err = errno;
	return err;
}

/* Unescape the octal escapes (\040 ...) of a mountinfo field in place. */
static void unescape(char *s)
{
	char *d = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

/* The first cgroup2 mount: its mount point and its root within the
 * hierarchy (mountinfo fields 5 and 4). */
static int find_mount(char *mnt, size_t mcap, char *root, size_t rcap)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return errno;
	char *line = NULL;
	size_t lcap = 0;
	int err = ENOENT;
	while (getline(&line, &lcap, f) > 0) {
		/* id parent major:minor root mountpoint opts [optional...] - fstype src superopts */
		char *sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		char *save = NULL, *fld[5];
		int i = 0;
		for (char *t = strtok_r(line, " ", &save); t && i < 5; t = strtok_r(NULL, " ", &save))
			fld[i++] = t;
		if (i < 5)
			continue;
		unescape(fld[3]);
		unescape(fld[4]);
		if (strlen(fld[4]) >= mcap || strlen(fld[3]) >= rcap) {
			err = ENAMETOOLONG;
			break;
		}
		strcpy(mnt, fld[4]);
		strcpy(root, fld[3]);
		err = 0;
		break;
	}
	free(line);
	fclose(f);
	return err;
}

int cg_mount(char *out, size_t n)
{
	char root[4096];
	return find_mount(out, n, root, sizeof root);
}

int cg_path_of(pid_t pid, char *out, size_t n)
{
	char mnt[4096], root[4096], fn[64], buf[8192];
	int err = find_mount(mnt, sizeof mnt, root, sizeof root);
	if (err)
		return err;
	if (pid)
		snprintf(fn, sizeof fn, "/proc/%ld/cgroup", (long)pid);
	else
		snprintf(fn, sizeof fn, "/proc/self/cgroup");
	if ((err = read_file(fn, buf, sizeof buf)))
		return err;
	const char *rel = NULL;
	for (char *l = buf; l && *l;) {
		char *nl = strchr(l, '\n');
		if (nl)
			*nl = '\0';
		if (strncmp(l, "0::", 3) == 0) {
			rel = l + 3;
			break;
		}
		l = nl ? nl + 1 : NULL;
	}
	if (!rel || rel[0] != '/')
		return ENOENT;
	/* rel is relative to our cgroup namespace, as the mount's root is */
	size_t rl = strlen(root);
	if (strcmp(root, "/") != 0 && strncmp(rel, root, rl) == 0 && (rel[rl] == '/' || !rel[rl]))
		rel += rl;
	if (strcmp(rel, "/") == 0)
		rel = "";
	int k = snprintf(out, n, "%s%s", mnt, rel);
	return k < 0 || (size_t)k >= n ? ENAMETOOLONG : 0;
}

int cg_create(const char *path)
{
	if (mkdir(path, 0755) == 0 || errno == EEXIST)
		return 0;
	return errno;
}

int cg_remove(const char *path)
{
	if (rmdir(path) == 0 || errno == ENOENT)
		return 0;
	return errno;
}

int cg_attach(const char *path, pid_t pid)
{
	char v[32];
	snprintf(v, sizeof v, "%ld", (long)pid);
	return cg_write(path, "cgroup.procs", v);
}

int cg_populated(const char *path, int *populated)
{
	char buf[512];
	int err = cg_read(path, "cgroup.events", buf, sizeof buf);
	if (err)
		return err;
	for (char *l = buf; l && *l;) {
		if (strncmp(l, "populated ", 10) == 0) {
			*populated = l[10] == '1';
			return 0;
		}
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return EINVAL;
}

int cg_procs(const char *path, pid_t **out, size_t *n)
{
	char fn[4096];
	*out = NULL;
	*n = 0;
	int err = join(fn, sizeof fn, path, "cgroup.procs");
	if (err)
		return err;
	FILE *f = fopen(fn, "re");
	if (!f)
		return errno;
	size_t cap = 0;
	long v;
	while (fscanf(f, "%ld", &v) == 1) {
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			pid_t *p = realloc(*out, nc * sizeof *p);
			if (!p) {
				fclose(f);
				free(*out);
				*out = NULL;
				*n = 0;
				return ENOMEM;
			}
			*out = p;
			cap = nc;
		}
		(*out)[(*n)++] = (pid_t)v;
	}
	err = ferror(f) ? EIO : 0;
	fclose(f);
	return err;
}

int cg_kill(const char *path)
{
	int err = cg_write(path, "cgroup.kill", "1");
	if (err != ENOENT)
		return err;
	/* no cgroup.kill (Linux < 5.14): signal each member until none is
	 * left; a fork racing a pass is caught by the next one */
	for (int pass = 0; pass < 100; pass++) {
		pid_t *p;
		size_t n;
		if ((err = cg_procs(path, &p, &n)))
			return err;
		size_t sent = 0;
		for (size_t i = 0; i < n; i++)
			sent += kill(p[i], SIGKILL) == 0;
		free(p);
		if (sent == 0)
			return 0;
	}
	return EAGAIN;
}

int cg_cpu_stat(const char *path, unsigned long long *user_usec,
		unsigned long long *system_usec)
{
	char buf[2048];
	int err = cg_read(path, "cpu.stat", buf, sizeof buf);
	if (err)
		return err;
	int found = 0;
	*user_usec = *system_usec = 0;
	for (char *l = buf; l && *l;) {
		if (sscanf(l, "user_usec %llu", user_usec) == 1)
			found |= 1;
		else if (sscanf(l, "system_usec %llu", system_usec) == 1)
			found |= 2;
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return found == 3 ? 0 : EINVAL;
}

int cg_watch(const char *path)
{
	char fn[4096];
	int err = join(fn, sizeof fn, path, "cgroup.events");
	if (err)
		return -err;
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (inotify_add_watch(fd, fn, IN_MODIFY) < 0) {
		err = errno;
		close(fd);
		return -err;
	}
	return fd;
}
