/*
 * lcontrol.c - `_fibersd`.control: what the control server (lib/fibersd/
 * control.lua) needs from C.  JSON encoding/decoding through jansson (no
 * hand-written parser), UTF-8 sanitising (invalid bytes -> U+FFFD), peer
 * credentials and roles (SO_PEERCRED, SO_PEERGROUPS else getgrouplist),
 * signal names, RFC 3339 timestamps, and the protocol constants and
 * method table of protocol.h.  It owns no sockets; its only state is the dump buffer it
 * reuses between replies.  Objects are built with their keys in sorted
 * order (so dumps need no JSON_SORT_KEYS); lstatus.c builds the status
 * reply with ctl_to_json and ctl_push_dump.  Misuse raises, OS failure
 * returns nil, message, errno.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <math.h>
#include <stdio.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "lcontrol.h"
#include "protocol.h"

#ifndef FIBERSD_VERSION
#define FIBERSD_VERSION PACKAGE_VERSION
#endif

static int pusherr(lua_State *L, int err)
{
	lua_pushnil(L);
	lua_pushstring(L, strerror(err));
	lua_pushinteger(L, err);
	return 3;
}

/* ---- peers ------------------------------------------------------------------ */

/* control.peer_cred(fd) -> pid, uid, gid | nil, msg, errno. */
static int l_peer_cred(lua_State *L)
{
	int fd = (int)luaL_checkinteger(L, 1);
	struct ucred cr;
	socklen_t sl = sizeof cr;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &sl) < 0)
		return pusherr(L, errno);
	lua_pushinteger(L, cr.pid);
	lua_pushinteger(L, cr.uid);
	lua_pushinteger(L, cr.gid);
	return 3;
}

/* Fill groups (cap entries) with the peer's supplementary groups; returns
 * the count or -1 (errno set). */
static int peer_groups(int fd, uid_t uid, gid_t gid, gid_t *groups, int cap)
{
#ifdef SO_PEERGROUPS
	socklen_t sl = (socklen_t)(cap * (int)sizeof(gid_t));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &sl) == 0)
		return (int)(sl / sizeof(gid_t));
	if (errno != ENOPROTOOPT && errno != EINVAL)
		return -1;
#endif
	struct passwd *pw = getpwuid(uid);
	if (!pw)
		return 0;
	int n = cap;
	if (getgrouplist(pw->pw_name, gid, groups, &n) < 0)
		n = cap;
	return n;
}

/* control.peer_groups(fd) -> { gid... } | nil, msg, errno. */
static int l_peer_groups(lua_State *L)
{
	int fd = (int)luaL_checkinteger(L, 1);
	struct ucred cr;
	socklen_t sl = sizeof cr;
	gid_t groups[1024];
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &sl) < 0)
		return pusherr(L, errno);
	int n = peer_groups(fd, cr.uid, cr.gid, groups, 1024);
	if (n < 0)
		return pusherr(L, errno);
	lua_createtable(L, n, 0);
	for (int i = 0; i < n; i++) {
		lua_pushinteger(L, groups[i]);
		lua_rawseti(L, -2, i + 1);
	}
	return 1;
}

/* control.peer_role(fd, control_gid?, admin_gid?) -> role|false, pid, uid, gid
 * | nil, msg, errno.  uid 0 or the daemon's uid -> "admin"; a peer whose
 * groups (primary or supplementary) hold admin_gid -> "admin", control_gid
 * -> "read"; anyone else -> false. */
static int l_peer_role(lua_State *L)
{
	int fd = (int)luaL_checkinteger(L, 1);
	lua_Integer control = luaL_optinteger(L, 2, -1);
	lua_Integer admin = luaL_optinteger(L, 3, -1);
	struct ucred cr;
	socklen_t sl = sizeof cr;
	gid_t groups[1024];
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &sl) < 0)
		return pusherr(L, errno);
	const char *role = NULL;
	if (cr.uid == 0 || cr.uid == geteuid()) {
		role = FIBERSD_ROLE_ADMIN;
	} else {
		int n = peer_groups(fd, cr.uid, cr.gid, groups, 1024);
		if (n < 0)
			return pusherr(L, errno);
		int is_admin = admin >= 0 && (lua_Integer)cr.gid == admin;
		int is_read = control >= 0 && (lua_Integer)cr.gid == control;
		for (int i = 0; i < n; i++) {
			is_admin |= admin >= 0 && (lua_Integer)groups[i] == admin;
			is_read |= control >= 0 && (lua_Integer)groups[i] == control;
		}
		role = is_admin ? FIBERSD_ROLE_ADMIN : is_read ? FIBERSD_ROLE_READ : NULL;
	}
	if (role)
		lua_pushstring(L, role);
	else
		lua_pushboolean(L, 0);
	lua_pushinteger(L, cr.pid);
	lua_pushinteger(L, cr.uid);
	lua_pushinteger(L, cr.gid);
	return 4;
}

/* control.gid(name_or_number) -> gid | nil, message (the group is unknown). */
static int l_gid(lua_State *L)
{
	if (lua_type(L, 1) == LUA_TNUMBER || (lua_type(L, 1) == LUA_TSTRING && lua_isnumber(L, 1))) {
		lua_pushinteger(L, lua_tointeger(L, 1));
		return 1;
	}
	const char *name = luaL_checkstring(L, 1);
	struct group gr, *res = NULL;
	char buf[16384];
	int e = getgrnam_r(name, &gr, buf, sizeof buf, &res);
	if (res) {
		lua_pushinteger(L, res->gr_gid);
		return 1;
	}
	lua_pushnil(L);
	if (e)
		lua_pushfstring(L, "group '%s': %s", name, strerror(e));
	else
		lua_pushfstring(L, "group '%s' does not exist", name);
	return 2;
}

/* ---- signals, time ----------------------------------------------------------- */

static const struct { const char *name; int num; } signames[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "ILL", SIGILL },
	{ "TRAP", SIGTRAP }, { "ABRT", SIGABRT }, { "BUS", SIGBUS }, { "FPE", SIGFPE },
	{ "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },
	{ "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "CHLD", SIGCHLD },
	{ "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN },
	{ "TTOU", SIGTTOU }, { "URG", SIGURG }, { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
	{ "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO },
	{ "SYS", SIGSYS },
};

/* control.signum(name_or_number) -> signo, "NAME" | nil, message.  Names are
 * case-insensitive, with or without the SIG prefix. */
static int l_signum(lua_State *L)
{
	const size_t nsig = sizeof signames / sizeof signames[0];
	if (lua_type(L, 1) == LUA_TNUMBER || (lua_type(L, 1) == LUA_TSTRING && lua_isnumber(L, 1))) {
		lua_Integer n = lua_tointeger(L, 1);
		for (size_t i = 0; i < nsig; i++)
			if (signames[i].num == n) {
				lua_pushinteger(L, n);
				lua_pushstring(L, signames[i].name);
				return 2;
			}
		if (n >= SIGRTMIN && n <= SIGRTMAX) {
			lua_pushinteger(L, n);
			lua_pushfstring(L, "%d", (int)n);
			return 2;
		}
	} else {
		const char *s = luaL_checkstring(L, 1);
		if (strncasecmp(s, "SIG", 3) == 0)
			s += 3;
		for (size_t i = 0; i < nsig; i++)
			if (strcasecmp(signames[i].name, s) == 0) {
				lua_pushinteger(L, signames[i].num);
				lua_pushstring(L, signames[i].name);
				return 2;
			}
	}
	const char *what = luaL_tolstring(L, 1, NULL);
	lua_pushnil(L);
	lua_pushfstring(L, "unknown signal '%s'", what);
	return 2;
}

/* control.rfc3339(epoch_seconds) -> "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC). */
static int l_rfc3339(lua_State *L)
{
	double t = (double)luaL_checknumber(L, 1);
	time_t sec = (time_t)floor(t);
	int ms = (int)((t - floor(t)) * 1000.0);
	struct tm tm;
	char buf[64];
	if (ms > 999)
		ms = 999;
	gmtime_r(&sec, &tm);
	size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof buf - n, ".%03dZ", ms);
	lua_pushstring(L, buf);
	return 1;
}

static const luaL_Reg control_funcs[] = {
	{ "peer_cred", l_peer_cred },
	{ "peer_groups", l_peer_groups },
	{ "peer_role", l_peer_role },
	{ "signum", l_signum },
	{ "gid", l_gid },
	{ "rfc3339", l_rfc3339 },
	{ NULL, NULL },
};

/* Push the method table of protocol.h as an array of { name, args, min,
 * max, role = "read"|"admin", stream = bool, help }. */
static void push_methods(lua_State *L)
{
	static const struct {
		const char *name, *args, *role, *help;
		int min, max, stream;
	} rows[] = {
#define READ "read"
#define ADMIN "admin"
#define X(name, args, min, max, role, stream, help) { #name, args, role, help, min, max, stream },
		FIBERSD_METHODS(X)
#undef X
#undef READ
#undef ADMIN
	};
	lua_createtable(L, (int)(sizeof rows / sizeof rows[0]), 0);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		lua_createtable(L, 0, 7);
		lua_pushstring(L, rows[i].name);
		lua_setfield(L, -2, "name");
		lua_pushstring(L, rows[i].args);
		lua_setfield(L, -2, "args");
		lua_pushinteger(L, rows[i].min);
		lua_setfield(L, -2, "min");
		lua_pushinteger(L, rows[i].max);
		lua_setfield(L, -2, "max");
		lua_pushstring(L, rows[i].role);
		lua_setfield(L, -2, "role");
		lua_pushboolean(L, rows[i].stream);
		lua_setfield(L, -2, "stream");
		lua_pushstring(L, rows[i].help);
		lua_setfield(L, -2, "help");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
}

/* Push the `control` sub-module table (an entry of lhost.c's subs[]). */
int fd_open_control(lua_State *L)
{
	luaL_newlib(L, control_funcs);
	ctl_open_json(L);
	ctl_open_status(L);
	lua_pushstring(L, FIBERSD_VERSION);
	lua_setfield(L, -2, "VERSION");
	lua_pushinteger(L, FIBERSD_PROTOCOL_VERSION);
	lua_setfield(L, -2, "PROTOCOL");
	lua_pushinteger(L, FIBERSD_PROTO_MAX_REQUEST);
	lua_setfield(L, -2, "MAX_REQUEST");
	lua_pushinteger(L, FIBERSD_PROTO_MAX_REPLY);
	lua_setfield(L, -2, "MAX_REPLY");
	lua_pushinteger(L, FIBERSD_PROTO_MAX_CLIENTS);
	lua_setfield(L, -2, "MAX_CLIENTS");
	lua_pushinteger(L, FIBERSD_PROTO_ADMIN_RESERVED);
	lua_setfield(L, -2, "ADMIN_RESERVED");
	lua_pushinteger(L, FIBERSD_PROTO_MAX_UNSENT);
	lua_setfield(L, -2, "MAX_UNSENT");
	lua_newtable(L); /* errors: code -> code, so typos fail loudly in Lua */
#define X(id, s, ex) lua_pushstring(L, s); lua_setfield(L, -2, s);
	FIBERSD_PROTO_ERRORS(X)
#undef X
	lua_setfield(L, -2, "errors");
	push_methods(L);
	lua_setfield(L, -2, "methods");
	return 1;
}
