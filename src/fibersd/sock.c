/*
 * sock.c - `_fibersd` helpers about files the daemon trusts or owns: the
 * control socket (bind with a lock file deciding who may replace a stale
 * socket, safe umask, mode and group) and the StrictModes-like trust check
 * of task files, directories and the config when running as root.
 *
 * OS failures return nil, message (and an exit code where main cares);
 * nothing here logs or exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "fibersd.h"

static int lock_fd = -1;          /* held for the daemon's lifetime */
static char lock_socket[PATH_MAX]; /* the socket path the lock protects */

static int fail(lua_State *L, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(lua_State *L, int code, const char *fmt, ...)
{
	char msg[PATH_MAX + 200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	lua_pushnil(L);
	lua_pushstring(L, msg);
	lua_pushinteger(L, code);
	return 3;
}

/* Take the lock file PATH.lock (kept open for the daemon's lifetime). */
static int take_lock(lua_State *L, const char *path)
{
	char lpath[PATH_MAX];
	if (lock_fd >= 0 && strcmp(lock_socket, path) == 0)
		return 0;
	snprintf(lpath, sizeof lpath, "%s.lock", path);
	int fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return fail(L, 2, "cannot open lock file %s: %s", lpath, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return fail(L, 2, "control socket %s is in use by another fibersd (%s is locked)",
				    path, lpath);
		return fail(L, 2, "cannot lock %s: %s", lpath, strerror(e));
	}
	if (lock_fd >= 0)
		close(lock_fd);
	lock_fd = fd;
	snprintf(lock_socket, sizeof lock_socket, "%s", path);
	return 0;
}

/* Resolve a group given by name (string) or number; -1 when unknown. */
static gid_t group_id(lua_State *L, int idx, const char **name)
{
	*name = NULL;
	if (lua_type(L, idx) == LUA_TNUMBER)
		return (gid_t)lua_tointeger(L, idx);
	*name = lua_tostring(L, idx);
	struct group *gr = getgrnam(*name);
	return gr ? gr->gr_gid : (gid_t)-1;
}

/* bind_control(path, mode, group?) -> fd, warning? | nil, message, exitcode.
 * A live socket at path (it answers) -> refuse; a stale one is replaced,
 * but only by the holder of the lock file path..".lock".  A group that does
 * not exist (or cannot be set) is a warning, not an error. */
static int l_bind_control(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	mode_t mode = (mode_t)luaL_optinteger(L, 2, 0660);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	char warning[PATH_MAX + 200] = "";

	if (strlen(path) >= sizeof sa.sun_path)
		return fail(L, 2, "control socket path too long (max %zu bytes): %s",
			    sizeof sa.sun_path - 1, path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int r = take_lock(L, path);
	if (r)
		return r;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return fail(L, 2, "%s exists and is not a socket", path);
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0)
			return fail(L, 2, "socket: %s", strerror(errno));
		r = connect(probe, (struct sockaddr *)&sa, sizeof sa);
		int e = errno;
		close(probe);
		if (r == 0)
			return fail(L, 2, "control socket %s is in use by a running daemon", path);
		if (e != ECONNREFUSED && e != ENOENT)
			return fail(L, 2, "cannot probe %s: %s", path, strerror(e));
		if (unlink(path) != 0 && errno != ENOENT)
			return fail(L, 2, "cannot remove stale socket %s: %s", path, strerror(errno));
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fail(L, 2, "socket: %s", strerror(errno));
	mode_t old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	int e = errno;
	umask(old);
	if (r != 0 || listen(fd, SOMAXCONN) != 0) {
		e = r ? e : errno;
		close(fd);
		return fail(L, 2, "cannot listen on %s: %s", path, strerror(e));
	}
	if (chmod(path, mode & 07777) != 0) {
		e = errno;
		close(fd);
		unlink(path);
		return fail(L, 2, "cannot chmod %s: %s", path, strerror(e));
	}
	if (!lua_isnoneornil(L, 3)) {
		const char *gname;
		gid_t gid = group_id(L, 3, &gname);
		if (gid == (gid_t)-1)
			snprintf(warning, sizeof warning,
				 "group '%s' does not exist; %s keeps its group", gname, path);
		else if (chown(path, (uid_t)-1, gid) != 0)
			snprintf(warning, sizeof warning, "cannot set group of %s to %s: %s", path,
				 gname ? gname : lua_tostring(L, 3), strerror(errno));
	}
	lua_pushinteger(L, fd);
	if (warning[0]) {
		lua_pushstring(L, warning);
		return 2;
	}
	return 1;
}

/* unlink_control(path) -> bool: remove the socket file at exit, only when
 * this process holds its lock (never a socket adopted from systemd). */
static int l_unlink_control(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	bool ok = lock_fd >= 0 && strcmp(lock_socket, path) == 0 && unlink(path) == 0;
	lua_pushboolean(L, ok);
	return 1;
}

/*
 * The trust rule for what runs as root (StrictModes-like): NULL when path
 * may be trusted, else the reason, written to why.  Only for root; path
 * and every ancestor must be owned by root and not writable by group or
 * others, except that an ancestor may be a root-owned sticky directory
 * such as /tmp (path itself may not: a 1777 task directory lets anybody
 * add tasks).
 */
const char *fd_trust(const char *path, char *why, size_t n)
{
	char real[PATH_MAX];
	struct stat st;
	bool first = true;
	if (geteuid() != 0)
		return NULL;
	if (realpath(path, real) == NULL) {
		snprintf(why, n, "%s: %s", path, strerror(errno));
		return why;
	}
	for (;;) {
		if (stat(real, &st) != 0) {
			snprintf(why, n, "%s: %s", real, strerror(errno));
			return why;
		}
		if (st.st_uid != 0) {
			snprintf(why, n, "%s is owned by uid %d, not root", real, (int)st.st_uid);
			return why;
		}
		if ((st.st_mode & 022) && (first || !(S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX)))) {
			snprintf(why, n, "%s is writable by group or others (mode %04o)", real,
				 (unsigned)(st.st_mode & 07777));
			return why;
		}
		first = false;
		char *slash = strrchr(real, '/');
		if (slash == NULL || slash == real) {
			if (real[1] == '\0')
				break;
			real[1] = '\0'; /* continue with "/" */
			continue;
		}
		*slash = '\0';
	}
	return NULL;
}

/* check_trust(path) -> true | nil, reason (see fd_trust; true unless root) */
static int l_check_trust(lua_State *L)
{
	char why[PATH_MAX + 100];
	if (fd_trust(luaL_checkstring(L, 1), why, sizeof why) != NULL) {
		lua_pushnil(L);
		lua_pushstring(L, why);
		return 2;
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* The functions of this file, merged into `_fibersd` by lhost.c. */
const luaL_Reg fd_sock_funcs[] = {
	{ "bind_control", l_bind_control },
	{ "unlink_control", l_unlink_control },
	{ "check_trust", l_check_trust },
	{ NULL, NULL },
};
