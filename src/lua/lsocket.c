/*
 * lsocket.c - `fibers.core`.socket: sockets for lib/fibers/io/socket.lua —
 * listening sockets (UNIX and TCP) as userdata (with __gc and __close,
 * unlinking an ephemeral path), non-blocking accept and connect,
 * SO_PEERCRED, adopting a listening fd (systemd socket activation), TCP
 * and UDP over IPv4 and IPv6, socket options, and the name resolver (the
 * thread pool of src/core/resolver.c) as userdata.
 *
 * Never waits: accept/connect/sendto/recvfrom return `false` when they
 * would block and the Lua layer waits for readiness.  Addresses given to
 * these functions are numeric literals only (parsed with AI_NUMERICHOST,
 * which never consults DNS); names go through the resolver.  Misuse
 * raises; OS failure returns nil, message, errno.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lbind.h"
#include "resolver.h"

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

/* ---- IPv4 / IPv6 ------------------------------------------------------ */

/*
 * Parse a numeric address literal and port into *ss (AI_NUMERICHOST: no
 * DNS, never blocks; IPv6 scope ids like "fe80::1%lo" work).  On failure
 * push nil, message, EINVAL and return 0.
 */
static int parse_inet(lua_State *L, const char *host, lua_Integer port,
		      struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints, *ai = NULL;
	char serv[16];
	int rc;

	if (port < 0 || port > 65535) {
		lua_pushnil(L);
		lua_pushfstring(L, "bad port %d (0..65535)", (int)port);
		lua_pushinteger(L, EINVAL);
		return 0;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_family = AF_UNSPEC;
	snprintf(serv, sizeof serv, "%d", (int)port);
	rc = getaddrinfo(host, serv, &hints, &ai);
	if (rc != 0 || !ai) {
		if (ai)
			freeaddrinfo(ai);
		lua_pushnil(L);
		lua_pushfstring(L, "not a numeric IPv4 or IPv6 address: %s", host);
		lua_pushinteger(L, EINVAL);
		return 0;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 1;
}

/* Push the numeric host and port of sa (an IPv4-mapped IPv6 address as
 * IPv4); returns 2, or 0 for a non-IP family. */
static int push_inet(lua_State *L, const struct sockaddr *sa)
{
	char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
		lua_pushstring(L, buf);
		lua_pushinteger(L, ntohs(in->sin_port));
		return 2;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, sizeof buf);
		else if (getnameinfo(sa, sizeof *in6, buf, sizeof buf, NULL, 0, NI_NUMERICHOST) != 0)
			inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
		lua_pushstring(L, buf);
		lua_pushinteger(L, ntohs(in6->sin6_port));
		return 2;
	}
	return 0;
}

/* socket.inet_family(host) -> "inet" | "inet6" | nil (not a literal) */
static int l_inet_family(lua_State *L)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (!parse_inet(L, luaL_checkstring(L, 1), 0, &ss, &len))
		return 0;
	lua_pushstring(L, ss.ss_family == AF_INET6 ? "inet6" : "inet");
	return 1;
}

static int setopt_int(int fd, int level, int name, int v)
{
	return setsockopt(fd, level, name, &v, sizeof v);
}

/*
 * Apply one option; 0 or errno.  keepalive: false, true, or the idle
 * seconds before the first probe (TCP_KEEPIDLE).
 */
static int apply_opt(lua_State *L, int fd, const char *name, int idx)
{
	int on = lua_toboolean(L, idx);

	if (strcmp(name, "nodelay") == 0)
		return setopt_int(fd, IPPROTO_TCP, TCP_NODELAY, on) < 0 ? errno : 0;
	if (strcmp(name, "keepalive") == 0) {
		if (setopt_int(fd, SOL_SOCKET, SO_KEEPALIVE, on) < 0)
			return errno;
		if (lua_type(L, idx) == LUA_TNUMBER) {
			lua_Integer idle = lua_tointeger(L, idx);
			if (idle < 1 || idle > 32767)
				luaL_error(L, "keepalive: idle seconds must be 1..32767");
			if (setopt_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, (int)idle) < 0)
				return errno;
		}
		return 0;
	}
	if (strcmp(name, "reuseaddr") == 0)
		return setopt_int(fd, SOL_SOCKET, SO_REUSEADDR, on) < 0 ? errno : 0;
	if (strcmp(name, "reuseport") == 0)
		return setopt_int(fd, SOL_SOCKET, SO_REUSEPORT, on) < 0 ? errno : 0;
	if (strcmp(name, "broadcast") == 0)
		return setopt_int(fd, SOL_SOCKET, SO_BROADCAST, on) < 0 ? errno : 0;
	return luaL_error(L, "unknown socket option '%s' (nodelay, keepalive, reuseaddr, reuseport, broadcast)", name);
}

/* socket.setsockopt(fd, name, value) -> true | nil, msg, errno */
static int l_setsockopt(lua_State *L)
{
	int fd = (int)luaL_checkinteger(L, 1);
	int err = apply_opt(L, fd, luaL_checkstring(L, 2), 3);

	if (err)
		return fl_pusherr(L, err);
	lua_pushboolean(L, 1);
	return 1;
}

/* socket.getsockopt(fd, name) -> boolean (nodelay, keepalive, reuseaddr,
 * reuseport, broadcast) | nil, msg, errno */
static int l_getsockopt(lua_State *L)
{
	static const char *const names[] = { "nodelay", "keepalive", "reuseaddr", "reuseport", "broadcast", NULL };
	static const int levels[] = { IPPROTO_TCP, SOL_SOCKET, SOL_SOCKET, SOL_SOCKET, SOL_SOCKET };
	static const int opts[] = { TCP_NODELAY, SO_KEEPALIVE, SO_REUSEADDR, SO_REUSEPORT, SO_BROADCAST };
	int fd = (int)luaL_checkinteger(L, 1);
	int i = luaL_checkoption(L, 2, NULL, names), v = 0;
	socklen_t len = sizeof v;

	if (getsockopt(fd, levels[i], opts[i], &v, &len) < 0)
		return fl_pusherr(L, errno);
	lua_pushboolean(L, v != 0);
	return 1;
}

/* Apply the options in table idx (nil: none); 0 or errno. */
static int apply_opts(lua_State *L, int fd, int idx)
{
	if (lua_isnoneornil(L, idx))
		return 0;
	luaL_checktype(L, idx, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		int err;
		if (lua_type(L, -2) != LUA_TSTRING)
			luaL_error(L, "socket options: keys must be strings");
		err = apply_opt(L, fd, lua_tostring(L, -2), lua_gettop(L));
		lua_pop(L, 1);
		if (err) {
			lua_pop(L, 1);
			return err;
		}
	}
	return 0;
}

/* New non-blocking close-on-exec socket of ss's family; fd or -errno.
 * IPv6 sockets take IPv4-mapped traffic too unless v6only. */
static int inet_socket(const struct sockaddr_storage *ss, int type, int v6only)
{
	int fd = socket(ss->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (ss->ss_family == AF_INET6)
		setopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only);
	return fd;
}

/*
 * A socket of `type` bound to host (a numeric literal) and port, with the
 * options of table opt_idx applied (v6only is taken out of it first).  fd,
 * or -1 with nil, msg, errno pushed.
 */
static int bound_socket(lua_State *L, int type, const char *host, lua_Integer port, int opt_idx)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, err, v6only = 0;

	if (!parse_inet(L, host, port, &ss, &len))
		return -1;
	if (lua_istable(L, opt_idx)) {
		lua_getfield(L, opt_idx, "v6only");
		v6only = lua_toboolean(L, -1);
		lua_pop(L, 1);
		lua_pushnil(L);
		lua_setfield(L, opt_idx, "v6only");
	}
	fd = inet_socket(&ss, type, v6only);
	if (fd < 0) {
		fl_pusherr(L, -fd);
		return -1;
	}
	err = apply_opts(L, fd, opt_idx);
	if (!err && bind(fd, (struct sockaddr *)&ss, len) < 0)
		err = errno;
	if (err) {
		close(fd);
		fl_pusherr(L, err);
		return -1;
	}
	return fd;
}

/*
 * socket.tcp_listen(host, port, backlog, opts) -> listener | nil, msg,
 * errno.  host is a numeric literal; opts: reuseaddr, reuseport, v6only
 * (the rest goes to apply_opt).
 */
static int l_tcp_listen(lua_State *L)
{
	const char *host = luaL_checkstring(L, 1);
	lua_Integer port = luaL_checkinteger(L, 2);
	int backlog = (int)luaL_optinteger(L, 3, SOMAXCONN);
	int fd = bound_socket(L, SOCK_STREAM, host, port, 4), err;

	if (fd < 0)
		return 3;
	if (listen(fd, backlog) < 0) {
		err = errno;
		close(fd);
		return fl_pusherr(L, err);
	}
	new_lsock(L, fd);
	return 1;
}

/* l:addr() -> host, port (IP listeners) | nil */
static int l_laddr(lua_State *L)
{
	lsock_t *ls = check_lsock(L);
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (ls->fd < 0 || getsockname(ls->fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	return push_inet(L, (struct sockaddr *)&ss);
}

/* socket.sockname(fd) / socket.peername(fd) -> host, port | nil, msg, errno */
static int names_common(lua_State *L, int peer)
{
	int fd = (int)luaL_checkinteger(L, 1);
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
		     : getsockname(fd, (struct sockaddr *)&ss, &len);

	if (r < 0)
		return fl_pusherr(L, errno);
	if (push_inet(L, (struct sockaddr *)&ss) == 0) {
		lua_pushnil(L);
		lua_pushliteral(L, "not an IPv4 or IPv6 socket");
		lua_pushinteger(L, EAFNOSUPPORT);
		return 3;
	}
	return 2;
}

static int l_sockname(lua_State *L) { return names_common(L, 0); }
static int l_peername(lua_State *L) { return names_common(L, 1); }

/*
 * socket.tcp_connect(host, port, opts?) -> fd, true (connected) | fd,
 * false (in progress: wait writable, then connect_result) | nil, msg,
 * errno.  host is a numeric literal; opts as for setsockopt.
 */
static int l_tcp_connect(lua_State *L)
{
	const char *host = luaL_checkstring(L, 1);
	lua_Integer port = luaL_checkinteger(L, 2);
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, r, err;

	if (!parse_inet(L, host, port, &ss, &len))
		return 3;
	fd = inet_socket(&ss, SOCK_STREAM, 0);
	if (fd < 0)
		return fl_pusherr(L, -fd);
	err = apply_opts(L, fd, 3);
	if (err) {
		close(fd);
		return fl_pusherr(L, err);
	}
	do
		r = connect(fd, (struct sockaddr *)&ss, len);
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno != EINPROGRESS) {
		err = errno;
		close(fd);
		return fl_pusherr(L, err);
	}
	lua_pushinteger(L, fd);
	lua_pushboolean(L, r == 0);
	return 2;
}

/*
 * socket.connect_result(fd) -> true (connected) | false (still in
 * progress) | nil, msg, errno (failed; the caller closes fd).
 */
static int l_connect_result(lua_State *L)
{
	int fd = (int)luaL_checkinteger(L, 1), err = 0;
	socklen_t len = sizeof err;
	struct sockaddr_storage ss;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return fl_pusherr(L, errno);
	if (err)
		return fl_pusherr(L, err);
	len = sizeof ss;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
		if (errno == ENOTCONN) {
			lua_pushboolean(L, 0);
			return 1;
		}
		return fl_pusherr(L, errno);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/*
 * socket.udp_bind(host, port, opts?) -> listener-type userdata (fileno,
 * close, addr) | nil, msg, errno: a non-blocking datagram socket; host a
 * numeric literal; opts.v6only.
 */
static int l_udp_bind(lua_State *L)
{
	const char *host = luaL_checkstring(L, 1);
	int fd = bound_socket(L, SOCK_DGRAM, host, luaL_checkinteger(L, 2), 3);

	if (fd < 0)
		return 3;
	new_lsock(L, fd);
	return 1;
}

/*
 * socket.sendto(fd, data, host, port) -> bytes sent | false (would block)
 * | nil, msg, errno.  An IPv4 destination from an IPv6 socket is sent as
 * an IPv4-mapped address.
 */
static int l_sendto(lua_State *L)
{
	int fd = (int)luaL_checkinteger(L, 1);
	size_t n;
	const char *data = luaL_checklstring(L, 2, &n);
	const char *host = luaL_checkstring(L, 3);
	lua_Integer port = luaL_checkinteger(L, 4);
	struct sockaddr_storage ss, own;
	socklen_t len, olen = sizeof own;
	ssize_t r;

	if (!parse_inet(L, host, port, &ss, &len))
		return 3;
	if (ss.ss_family == AF_INET && getsockname(fd, (struct sockaddr *)&own, &olen) == 0 &&
	    own.ss_family == AF_INET6) {
		struct sockaddr_in in4;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		memcpy(&in4, &ss, sizeof in4);
		memset(in6, 0, sizeof *in6);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = in4.sin_port;
		in6->sin6_addr.s6_addr[10] = 0xff;
		in6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&in6->sin6_addr.s6_addr[12], &in4.sin_addr, 4);
		len = sizeof *in6;
	}
	do
		r = sendto(fd, data, n, 0, (struct sockaddr *)&ss, len);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			lua_pushboolean(L, 0);
			return 1;
		}
		return fl_pusherr(L, errno);
	}
	lua_pushinteger(L, (lua_Integer)r);
	return 1;
}

#define UDP_MAX 65536

/*
 * socket.recvfrom(fd, max?) -> data, host, port | false (nothing now) |
 * nil, msg, errno.  A datagram longer than max (default and limit 65536)
 * is truncated.
 */
static int l_recvfrom(lua_State *L)
{
	int fd = (int)luaL_checkinteger(L, 1);
	lua_Integer max = luaL_optinteger(L, 2, UDP_MAX);
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char *buf;
	ssize_t r;

	if (max < 1)
		return luaL_error(L, "recvfrom: max must be positive");
	if (max > UDP_MAX)
		max = UDP_MAX;
	buf = malloc((size_t)max);
	if (!buf)
		return luaL_error(L, "out of memory");
	do
		r = recvfrom(fd, buf, (size_t)max, 0, (struct sockaddr *)&ss, &len);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		int err = errno;
		free(buf);
		if (err == EAGAIN || err == EWOULDBLOCK) {
			lua_pushboolean(L, 0);
			return 1;
		}
		return fl_pusherr(L, err);
	}
	lua_pushlstring(L, buf, (size_t)r);
	free(buf);
	if (push_inet(L, (struct sockaddr *)&ss) == 0)
		return 1;
	return 3;
}

/* ---- resolver ---------------------------------------------------------- */

#define RESOLVER_MT "fibers.core.resolver"
#define RREQ_MT "fibers.core.resolve_request"
#define RESOLVER_THREADS 4

typedef struct lresolver {
	struct resolver *r;
} lresolver_t;

typedef struct lrreq {
	struct resolver_req *q;
	char *host;
} lrreq_t;

static lresolver_t *check_resolver(lua_State *L)
{
	lresolver_t *lr = luaL_checkudata(L, 1, RESOLVER_MT);

	if (!lr->r)
		luaL_error(L, "resolver is closed");
	return lr;
}

/* socket.resolver() -> resolver | nil, msg, errno (a pool of up to 4
 * helper threads, started on demand) */
static int l_resolver(lua_State *L)
{
	lresolver_t *lr = lua_newuserdata(L, sizeof *lr);
	int err;

	lr->r = NULL;
	luaL_setmetatable(L, RESOLVER_MT);
	err = resolver_new(&lr->r, RESOLVER_THREADS);
	if (err)
		return fl_pusherr(L, err);
	return 1;
}

/* r:fd() -> the eventfd, readable when requests finished */
static int l_rfd(lua_State *L)
{
	lua_pushinteger(L, resolver_fd(check_resolver(L)->r));
	return 1;
}

/* r:threads() -> helper threads alive */
static int l_rthreads(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)resolver_threads(check_resolver(L)->r));
	return 1;
}

/* r:submit(host, family?) -> request | nil, msg, errno; family "inet" |
 * "inet6" | nil (both) */
static int l_rsubmit(lua_State *L)
{
	static const char *const fams[] = { "any", "inet", "inet6", NULL };
	static const int famv[] = { AF_UNSPEC, AF_INET, AF_INET6 };
	lresolver_t *lr = check_resolver(L);
	size_t n;
	const char *host = luaL_checklstring(L, 2, &n);
	int fam = famv[luaL_checkoption(L, 3, "any", fams)], err;
	lrreq_t *rq;

	if (n == 0 || strlen(host) != n)
		return luaL_error(L, "resolve: host must be a non-empty string without NUL bytes");
	rq = lua_newuserdata(L, sizeof *rq);
	rq->q = NULL;
	rq->host = strdup(host);
	luaL_setmetatable(L, RREQ_MT);
	if (!rq->host)
		return luaL_error(L, "out of memory");
	err = resolver_submit(lr->r, host, fam, &rq->q);
	if (err)
		return fl_pusherr(L, err);
	return 1;
}

/* r:drain() -> { id, ... } of requests finished since the last drain */
static int l_rdrain(lua_State *L)
{
	lresolver_t *lr = check_resolver(L);
	uint64_t ids[64];
	size_t n;
	int k = 0;

	lua_newtable(L);
	do {
		n = resolver_drain(lr->r, ids, sizeof ids / sizeof ids[0]);
		for (size_t i = 0; i < n; i++) {
			lua_pushinteger(L, (lua_Integer)ids[i]);
			lua_rawseti(L, -2, ++k);
		}
	} while (n == sizeof ids / sizeof ids[0]);
	return 1;
}

/* r:close(): drop the pool (threads finish what they run, then exit) */
static int l_rclose(lua_State *L)
{
	lresolver_t *lr = luaL_checkudata(L, 1, RESOLVER_MT);

	resolver_free(lr->r);
	lr->r = NULL;
	return 0;
}

static lrreq_t *check_rreq(lua_State *L)
{
	return luaL_checkudata(L, 1, RREQ_MT);
}

/* q:id() -> integer | nil once released */
static int l_qid(lua_State *L)
{
	lrreq_t *rq = check_rreq(L);

	if (!rq->q)
		return 0;
	lua_pushinteger(L, (lua_Integer)resolver_id(rq->q));
	return 1;
}

/*
 * q:result() -> false (pending) | { addr, ... } (numeric, duplicates
 * removed, in getaddrinfo's order) | nil, msg, code.  code is the errno of
 * EAI_SYSTEM, else the (negative) EAI_* code.
 */
static int l_qresult(lua_State *L)
{
	lrreq_t *rq = check_rreq(L);
	const struct addrinfo *ai, *p;
	int gai, sys, k = 0;

	if (!rq->q)
		return luaL_error(L, "resolve request is released");
	if (!resolver_result(rq->q, &ai, &gai, &sys)) {
		lua_pushboolean(L, 0);
		return 1;
	}
	if (gai != 0) {
		lua_pushnil(L);
		if (gai == EAI_SYSTEM) {
			lua_pushfstring(L, "resolve %s: %s", rq->host, strerror(sys));
			lua_pushinteger(L, sys);
		} else {
			lua_pushfstring(L, "resolve %s: %s", rq->host, gai_strerror(gai));
			lua_pushinteger(L, gai < 0 ? gai : -gai);
		}
		return 3;
	}
	lua_newtable(L);                        /* result */
	lua_newtable(L);                        /* seen */
	for (p = ai; p; p = p->ai_next) {
		if (p->ai_family != AF_INET && p->ai_family != AF_INET6)
			continue;
		push_inet(L, p->ai_addr);
		lua_pop(L, 1);                  /* the port */
		lua_pushvalue(L, -1);
		lua_rawget(L, -3);
		if (!lua_isnil(L, -1)) {
			lua_pop(L, 2);
			continue;
		}
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_pushboolean(L, 1);
		lua_rawset(L, -4);
		lua_rawseti(L, -3, ++k);
	}
	lua_pop(L, 1);
	return 1;
}

/* q:release(): drop the request (a pending lookup's answer is discarded) */
static int l_qrelease(lua_State *L)
{
	lrreq_t *rq = check_rreq(L);

	if (rq->q)
		resolver_release(rq->q);
	rq->q = NULL;
	free(rq->host);
	rq->host = NULL;
	return 0;
}

static const luaL_Reg resolver_methods[] = {
	{ "fd", l_rfd },
	{ "threads", l_rthreads },
	{ "submit", l_rsubmit },
	{ "drain", l_rdrain },
	{ "close", l_rclose },
	{ NULL, NULL },
};

static const luaL_Reg rreq_methods[] = {
	{ "id", l_qid },
	{ "result", l_qresult },
	{ "release", l_qrelease },
	{ NULL, NULL },
};

/* Register metatable `name` with methods and a __gc. */
static void new_mt(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc)
{
	if (luaL_newmetatable(L, name)) {
		lua_newtable(L);
		luaL_setfuncs(L, methods, 0);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
}

static const luaL_Reg lsock_methods[] = {
	{ "accept", l_accept },
	{ "fileno", l_fileno },
	{ "close", l_lclose },
	{ "addr", l_laddr },
	{ NULL, NULL },
};

static const luaL_Reg socket_funcs[] = {
	{ "listen_unix", l_listen_unix },
	{ "adopt", l_adopt },
	{ "connect_unix", l_connect_unix },
	{ "peer_cred", l_peer_cred },
	{ "shutdown", l_shutdown },
	{ "close_fd", l_close_fd },
	{ "inet_family", l_inet_family },
	{ "setsockopt", l_setsockopt },
	{ "getsockopt", l_getsockopt },
	{ "tcp_listen", l_tcp_listen },
	{ "tcp_connect", l_tcp_connect },
	{ "connect_result", l_connect_result },
	{ "sockname", l_sockname },
	{ "peername", l_peername },
	{ "udp_bind", l_udp_bind },
	{ "sendto", l_sendto },
	{ "recvfrom", l_recvfrom },
	{ "resolver", l_resolver },
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
	new_mt(L, RESOLVER_MT, resolver_methods, l_rclose);
	new_mt(L, RREQ_MT, rreq_methods, l_qrelease);
	luaL_newlib(L, socket_funcs);
	return 1;
}
