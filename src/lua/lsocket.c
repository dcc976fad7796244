/*
 * lsocket.c - `fibers.core`.socket: UNIX stream sockets for
 * lib/fibers/io/socket.lua — listening sockets as userdata (with __gc and
 * __close, unlinking an ephemeral path), non-blocking accept and connect,
 * SO_PEERCRED, and adopting a listening fd (systemd socket activation).
 *
 * Never waits: accept/connect return `false` when they would block and the
 * Lua layer waits for readiness.  Misuse raises; OS failure returns nil,
 * message, errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lbind.h"

#define LSOCK_MT "fibers.core.listener"

typedef struct lsock {
	int fd;
	char *unlink_path; /* ephemeral: unlinked on close */
} lsock_t;

/*
 * Fill a sockaddr_un; on a path that does not fit sun_path push
 * nil, message, ENAMETOOLONG and return 0.
 */
static int make_addr(lua_State *L, const char *path, size_t n, struct sockaddr_un *sa, socklen_t *len)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (n == 0 || n >= sizeof sa->sun_path) {
		lua_pushnil(L);
		lua_pushfstring(L, "socket path too long or empty (%d bytes, limit %d): %s",
				(int)n, (int)sizeof sa->sun_path - 1, path);
		lua_pushinteger(L, ENAMETOOLONG);
		return 0;
	}
	memcpy(sa->sun_path, path, n);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 1;
}

static lsock_t *new_lsock(lua_State *L, int fd)
{
	lsock_t *ls = lua_newuserdata(L, sizeof *ls);

	ls->fd = fd;
	ls->unlink_path = NULL;
	luaL_setmetatable(L, LSOCK_MT);
	return ls;
}

static lsock_t *check_lsock(lua_State *L)
{
	return luaL_checkudata(L, 1, LSOCK_MT);
}

/*
 * socket.listen_unix(path, backlog?, ephemeral?, mode?) -> listener |
 * nil, msg, errno.  Non-blocking, close-on-exec; mode is chmod'ed onto the
 * socket file.
 */
static int l_listen_unix(lua_State *L)
{
	size_t n;
	const char *path = luaL_checklstring(L, 1, &n);
	int backlog = (int)luaL_optinteger(L, 2, SOMAXCONN);
	int ephemeral = lua_toboolean(L, 3), fd, err;
	struct sockaddr_un sa;
	socklen_t len;
	lsock_t *ls;

	if (!make_addr(L, path, n, &sa, &len))
		return 3;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fl_pusherr(L, errno);
	if (bind(fd, (struct sockaddr *)&sa, len) < 0)
		goto fail;
	if (!lua_isnoneornil(L, 4) && chmod(path, (mode_t)luaL_checkinteger(L, 4)) < 0) {
		err = errno;
		unlink(path);
		close(fd);
		return fl_pusherr(L, err);
	}
	if (listen(fd, backlog) < 0) {
		err = errno;
		unlink(path);
		close(fd);
		return fl_pusherr(L, err);
	}
	ls = new_lsock(L, fd);
	if (ephemeral) {
		ls->unlink_path = strdup(path);
		if (!ls->unlink_path)
			return luaL_error(L, "out of memory");
	}
	return 1;
fail:
	err = errno;
	close(fd);
	return fl_pusherr(L, err);
}

/*
 * socket.adopt(fd) -> listener | nil, msg, errno: wrap an inherited
 * listening stream socket (systemd LISTEN_FDS); made non-blocking.
 */
static int l_adopt(lua_State *L)
{
	int fd = (int)luaL_checkinteger(L, 1), v = 0, fl;
	socklen_t len = sizeof v;

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0)
		return fl_pusherr(L, errno);
	if (!v) {
		lua_pushnil(L);
		lua_pushfstring(L, "fd %d is not a listening socket", fd);
		lua_pushinteger(L, EINVAL);
		return 3;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return fl_pusherr(L, errno);
	new_lsock(L, fd);
	return 1;
}

/* l:accept() -> fd | false (would block) | nil, msg, errno */
static int l_accept(lua_State *L)
{
	lsock_t *ls = check_lsock(L);
	int fd;

	if (ls->fd < 0)
		return luaL_error(L, "socket is closed");
	do
		fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED)
			goto again;
		return fl_pusherr(L, errno);
	}
	lua_pushinteger(L, fd);
	return 1;
again:
	lua_pushboolean(L, 0);
	return 1;
}

/* l:fileno() -> fd | nil when closed */
static int l_fileno(lua_State *L)
{
	lsock_t *ls = check_lsock(L);

	if (ls->fd < 0)
		return 0;
	lua_pushinteger(L, ls->fd);
	return 1;
}

/* l:close() -> true | nil, msg, errno (idempotent; unlinks an ephemeral path) */
static int l_lclose(lua_State *L)
{
	lsock_t *ls = check_lsock(L);
	int err = 0;

	if (ls->unlink_path) {
		if (unlink(ls->unlink_path) < 0 && errno != ENOENT)
			err = errno;
		free(ls->unlink_path);
		ls->unlink_path = NULL;
	}
	if (ls->fd >= 0) {
		if (close(ls->fd) < 0 && errno != EINTR && !err)
			err = errno;
		ls->fd = -1;
	}
	if (err)
		return fl_pusherr(L, err);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_lgc(lua_State *L)
{
	l_lclose(L);
	return 0;
}

/*
 * socket.connect_unix(path) -> fd, true (connected) | fd, false (retry:
 * the listener's backlog is full) | nil, msg, errno.
 */
static int l_connect_unix(lua_State *L)
{
	size_t n;
	const char *path = luaL_checklstring(L, 1, &n);
	int fd = (int)luaL_optinteger(L, 2, -1), err, r;
	struct sockaddr_un sa;
	socklen_t len;

	if (!make_addr(L, path, n, &sa, &len))
		return 3;
	if (fd < 0) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return fl_pusherr(L, errno);
	}
	do
		r = connect(fd, (struct sockaddr *)&sa, len);
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno != EISCONN) {
		err = errno;
		if (err == EAGAIN || err == EINPROGRESS) {
			lua_pushinteger(L, fd);
			lua_pushboolean(L, 0);
			return 2;
		}
		close(fd);
		return fl_pusherr(L, err);
	}
	lua_pushinteger(L, fd);
	lua_pushboolean(L, 1);
	return 2;
}

/* socket.peer_cred(fd) -> pid, uid, gid | nil, msg, errno (SO_PEERCRED) */
static int l_peer_cred(lua_State *L)
{
	struct ucred uc;
	socklen_t len = sizeof uc;
	int fd = (int)luaL_checkinteger(L, 1);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return fl_pusherr(L, errno);
	lua_pushinteger(L, uc.pid);
	lua_pushinteger(L, uc.uid);
	lua_pushinteger(L, uc.gid);
	return 3;
}

/* socket.shutdown(fd, how) -> true | nil, msg, errno; how = "r"|"w"|"rw" */
static int l_shutdown(lua_State *L)
{
	static const char *const names[] = { "r", "w", "rw", NULL };
	static const int hows[] = { SHUT_RD, SHUT_WR, SHUT_RDWR };
	int fd = (int)luaL_checkinteger(L, 1);
	int how = luaL_checkoption(L, 2, "rw", names);

	if (shutdown(fd, hows[how]) < 0)
		return fl_pusherr(L, errno);
	lua_pushboolean(L, 1);
	return 1;
}

/* socket.close_fd(fd) -> true (closes a connecting fd given up on) */
static int l_close_fd(lua_State *L)
{
	close((int)luaL_checkinteger(L, 1));
	lua_pushboolean(L, 1);
	return 1;
}

static const luaL_Reg lsock_methods[] = {
	{ "accept", l_accept },
	{ "fileno", l_fileno },
	{ "close", l_lclose },
	{ NULL, NULL },
};

static const luaL_Reg socket_funcs[] = {
	{ "listen_unix", l_listen_unix },
	{ "adopt", l_adopt },
	{ "connect_unix", l_connect_unix },
	{ "peer_cred", l_peer_cred },
	{ "shutdown", l_shutdown },
	{ "close_fd", l_close_fd },
	{ NULL, NULL },
};

/* Open `fibers.core`.socket: listener metatable and socket functions. */
int fl_open_socket(lua_State *L)
{
	if (luaL_newmetatable(L, LSOCK_MT)) {
		luaL_newlib(L, lsock_methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, l_lgc);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, l_lgc);
		lua_setfield(L, -2, "__close");
	}
	lua_pop(L, 1);
	luaL_newlib(L, socket_funcs);
	return 1;
}
