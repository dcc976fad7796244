/*
 * lproc.c - `fibers.core`.proc: the Lua binding of the process core
 * (src/core/proc.h).  Private to lib/fibers/exec.lua, which owns all policy
 * (defaults, scopes, streams); this file only converts tables to a
 * proc_spec and results back.  Misuse raises; OS failure returns
 * nil, message, errno.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <math.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lbind.h"
#include "proc.h"

#define MAX_GROUPS 1024
#define MAX_RLIMITS 16

/* Collect t[1..n] (strings only) into a NULL-terminated array in a
 * userdata left on the stack; the strings stay anchored by t. */
static char **str_array(lua_State *L, int t, const char *what)
{
	lua_Integer n = (lua_Integer)lua_rawlen(L, t);
	char **a = lua_newuserdata(L, sizeof(char *) * (size_t)(n + 1));
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, t, i);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "spawn: %s[%d] must be a string", what, (int)i);
		a[i - 1] = (char *)lua_tostring(L, -1);
		lua_pop(L, 1);
	}
	a[n] = NULL;
	return a;
}

static int opt_bool(lua_State *L, int t, const char *k, int def)
{
	lua_getfield(L, t, k);
	int v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
	lua_pop(L, 1);
	return v;
}

static void get_stdio(lua_State *L, int t, const char *k, struct proc_stdio *io)
{
	lua_getfield(L, t, k);
	io->kind = PROC_STDIO_INHERIT;
	io->fd = -1;
	if (lua_isinteger(L, -1)) {
		io->kind = PROC_STDIO_FD;
		io->fd = (int)lua_tointeger(L, -1);
	} else if (lua_type(L, -1) == LUA_TSTRING) {
		const char *s = lua_tostring(L, -1);
		if (strcmp(s, "null") == 0)
			io->kind = PROC_STDIO_NULL;
		else if (strcmp(s, "stdout") == 0 && strcmp(k, "stderr") == 0)
			io->kind = PROC_STDIO_STDOUT;
		else if (strcmp(s, "inherit") != 0)
			luaL_error(L, "spawn: bad %s mode '%s'", k, s);
	} else if (!lua_isnil(L, -1)) {
		luaL_error(L, "spawn: bad %s", k);
	}
	lua_pop(L, 1);
}

static rlim_t to_rlim(lua_State *L, int idx)
{
	if (lua_type(L, idx) == LUA_TSTRING && strcmp(lua_tostring(L, idx), "unlimited") == 0)
		return RLIM_INFINITY;
	lua_Number v = luaL_checknumber(L, idx);
	if (v == HUGE_VAL)
		return RLIM_INFINITY;
	if (v < 0)
		luaL_error(L, "spawn: negative rlimit");
	return (rlim_t)v;
}

/* rlimits = { name = n | {soft, hard} | "unlimited" }; a bare number sets
 * the soft limit and raises the hard one only if it must. */
static size_t get_rlimits(lua_State *L, int t, struct proc_rlimit *out)
{
	size_t n = 0;
	lua_getfield(L, t, "rlimits");
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return 0;
	}
	luaL_checktype(L, -1, LUA_TTABLE);
	int rt = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, rt)) {
		const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		int res = proc_rlimit_resource(name);
		if (res < 0)
			luaL_error(L, "unknown rlimit '%s'", name ? name : "?");
		if (n >= MAX_RLIMITS)
			luaL_error(L, "too many rlimits");
		struct rlimit cur;
		if (getrlimit(res, &cur) < 0)
			cur.rlim_max = RLIM_INFINITY;
		out[n].resource = res;
		if (lua_istable(L, -1)) {
			lua_rawgeti(L, -1, 1);
			out[n].lim.rlim_cur = to_rlim(L, -1);
			lua_rawgeti(L, -2, 2);
			out[n].lim.rlim_max = lua_isnil(L, -1) ? out[n].lim.rlim_cur : to_rlim(L, -1);
			lua_pop(L, 2);
		} else {
			rlim_t soft = to_rlim(L, -1);
			out[n].lim.rlim_cur = soft;
			out[n].lim.rlim_max = (cur.rlim_max == RLIM_INFINITY ||
					       (soft != RLIM_INFINITY && soft <= cur.rlim_max))
						      ? cur.rlim_max : soft;
		}
		if (out[n].lim.rlim_max != RLIM_INFINITY &&
		    (out[n].lim.rlim_cur == RLIM_INFINITY || out[n].lim.rlim_cur > out[n].lim.rlim_max))
			luaL_error(L, "rlimit '%s': soft limit above hard limit", name);
		n++;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return n;
}

/* proc.spawn{ file, argv, env?, path?, cwd?, stdin?, stdout?, stderr?,
 *   pgroup?, setsid?, pdeathsig?, pidfd?, fork?, async?, uid?, gid?, groups?,
 *   umask?, rlimits?, cgroup? (fd of a cgroup v2 directory) } -> pid, pidfd|false
 *   | nil, "<step>: <strerror>", errno, "child", status-kind, code
 *   | nil, strerror, errno (failure in the parent) */
static int l_spawn(lua_State *L)
{
	struct proc_spec s;
	struct proc_result r;
	struct proc_rlimit rl[MAX_RLIMITS];
	gid_t groups[MAX_GROUPS];

	luaL_checktype(L, 1, LUA_TTABLE);
	memset(&s, 0, sizeof s);
	lua_settop(L, 1);
	lua_getfield(L, 1, "argv"); /* 2 */
	luaL_argcheck(L, lua_istable(L, 2), 1, "argv must be a table");
	s.argv = str_array(L, 2, "argv"); /* 3 */
	if (!s.argv[0])
		luaL_error(L, "spawn: empty argv");
	lua_getfield(L, 1, "file"); /* 4 */
	s.file = lua_isnil(L, 4) ? s.argv[0] : luaL_checkstring(L, 4);
	lua_getfield(L, 1, "env"); /* 5 */
	if (!lua_isnil(L, 5)) {
		luaL_checktype(L, 5, LUA_TTABLE);
		s.envp = str_array(L, 5, "env"); /* 6 */
	} else {
		lua_pushnil(L); /* 6 */
	}
	lua_getfield(L, 1, "path"); /* 7 */
	s.path = luaL_optstring(L, 7, NULL);
	lua_getfield(L, 1, "cwd"); /* 8 */
	s.cwd = luaL_optstring(L, 8, NULL);
	get_stdio(L, 1, "stdin", &s.stdio[0]);
	get_stdio(L, 1, "stdout", &s.stdio[1]);
	get_stdio(L, 1, "stderr", &s.stdio[2]);
	if (s.stdio[0].kind == PROC_STDIO_FD && s.stdio[0].fd < 0)
		luaL_error(L, "spawn: bad stdin fd");
	if (opt_bool(L, 1, "setsid", 0))
		s.flags |= PROC_SETSID;
	else if (opt_bool(L, 1, "pgroup", 1))
		s.flags |= PROC_NEWPGRP;
	if (opt_bool(L, 1, "pdeathsig", 1))
		s.flags |= PROC_PDEATHSIG;
	if (opt_bool(L, 1, "pidfd", 0))
		s.flags |= PROC_PIDFD;
	if (opt_bool(L, 1, "fork", 0))
		s.flags |= PROC_FORK;
	if (opt_bool(L, 1, "async", 0))
		s.flags |= PROC_ASYNC;
	lua_getfield(L, 1, "uid");
	if (!lua_isnil(L, -1)) {
		s.set_uid = 1;
		s.uid = (uid_t)luaL_checkinteger(L, -1);
	}
	lua_getfield(L, 1, "gid");
	if (!lua_isnil(L, -1)) {
		s.set_gid = 1;
		s.gid = (gid_t)luaL_checkinteger(L, -1);
	}
	lua_getfield(L, 1, "umask");
	if (!lua_isnil(L, -1)) {
		s.set_umask = 1;
		s.umask = (mode_t)luaL_checkinteger(L, -1);
	}
	lua_getfield(L, 1, "groups");
	if (!lua_isnil(L, -1)) {
		luaL_checktype(L, -1, LUA_TTABLE);
		size_t n = lua_rawlen(L, -1);
		if (n > MAX_GROUPS)
			luaL_error(L, "spawn: too many groups");
		for (size_t i = 0; i < n; i++) {
			lua_rawgeti(L, -1, (lua_Integer)i + 1);
			groups[i] = (gid_t)luaL_checkinteger(L, -1);
			lua_pop(L, 1);
		}
		s.set_groups = 1;
		s.groups = groups;
		s.ngroups = n;
	}
	s.nrlimits = get_rlimits(L, 1, rl);
	s.rlimits = rl;
	lua_getfield(L, 1, "cgroup");
	if (!lua_isnil(L, -1)) {
		s.flags |= PROC_CGROUP;
		s.cgroup_fd = (int)luaL_checkinteger(L, -1);
	}

	int err = proc_spawn(&s, &r);
	if (err)
		return fl_pusherr(L, err);
	if (r.child_step != PROC_STEP_NONE) {
		int code, kind = proc_decode_status(r.status, &code);
		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s", proc_step_name(r.child_step), strerror(r.child_errno));
		lua_pushinteger(L, r.child_errno);
		lua_pushstring(L, "child");
		lua_pushstring(L, kind == 2 ? "signalled" : "exited");
		lua_pushinteger(L, code);
		return 6;
	}
	lua_pushinteger(L, r.pid);
	if (r.pidfd >= 0)
		lua_pushinteger(L, r.pidfd);
	else
		lua_pushboolean(L, 0);
	return 2;
}

/* proc.wait_any() -> pid, "exited"|"signalled", code[, err] | nil when none
 * left; err ("<step>: <strerror>") when an overlapped spawn's child
 * failed before exec (it exited with 127). */
static int l_wait_any(lua_State *L)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return 0;
		int code, kind = proc_decode_status(st, &code);
		if (kind == 0)
			continue; /* stopped/continued: not an exit */
		int step, err;
		lua_pushinteger(L, pid);
		lua_pushstring(L, kind == 1 ? "exited" : "signalled");
		lua_pushinteger(L, code);
		if (!proc_take_report(pid, &step, &err))
			return 3;
		lua_pushfstring(L, "%s: %s", proc_step_name(step), strerror(err));
		return 4;
	}
}

/* proc.send_signal(pid, pidfd|false, sig) -> true | nil, msg, errno */
static int l_send_signal(lua_State *L)
{
	pid_t pid = (pid_t)luaL_checkinteger(L, 1);
	int pidfd = lua_isinteger(L, 2) ? (int)lua_tointeger(L, 2) : -1;
	int err = proc_send_signal(pid, pidfd, (int)luaL_checkinteger(L, 3));
	if (err)
		return fl_pusherr(L, err);
	lua_pushboolean(L, 1);
	return 1;
}

/* proc.killpg(pgid, sig) -> true | nil, msg, errno */
static int l_killpg(lua_State *L)
{
	int err = proc_killpg((pid_t)luaL_checkinteger(L, 1), (int)luaL_checkinteger(L, 2));
	if (err)
		return fl_pusherr(L, err);
	lua_pushboolean(L, 1);
	return 1;
}

/* proc.group_alive(pgid) -> boolean (a live member; zombies do not count) */
static int l_group_alive(lua_State *L)
{
	lua_pushboolean(L, proc_group_alive((pid_t)luaL_checkinteger(L, 1)));
	return 1;
}

/* proc.close(fd) -> true | nil, msg, errno */
static int l_close(lua_State *L)
{
	if (close((int)luaL_checkinteger(L, 1)) < 0 && errno != EINTR)
		return fl_pusherr(L, errno);
	lua_pushboolean(L, 1);
	return 1;
}

/* proc.pipe() -> rfd, wfd (both close-on-exec and blocking) */
static int l_pipe(lua_State *L)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return fl_pusherr(L, errno);
	lua_pushinteger(L, p[0]);
	lua_pushinteger(L, p[1]);
	return 2;
}

/* proc.set_nonblock(fd) -> true | nil, msg, errno */
static int l_set_nonblock(lua_State *L)
{
	int fd = (int)luaL_checkinteger(L, 1);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return fl_pusherr(L, errno);
	lua_pushboolean(L, 1);
	return 1;
}

/* proc.backend() -> "pidfd" | "sigchld" */
static int l_backend(lua_State *L)
{
	lua_pushstring(L, proc_backend() == PROC_BACKEND_PIDFD ? "pidfd" : "sigchld");
	return 1;
}

/* proc.signum(name_or_number) -> number | nil */
static int l_signum(lua_State *L)
{
	if (lua_isinteger(L, 1)) {
		lua_Integer n = lua_tointeger(L, 1);
		if (n <= 0 || n >= NSIG)
			return 0;
		lua_pushinteger(L, n);
		return 1;
	}
	int n = proc_signum(luaL_checkstring(L, 1));
	if (!n)
		return 0;
	lua_pushinteger(L, n);
	return 1;
}

/* proc.signame(n) -> "TERM" | nil */
static int l_signame(lua_State *L)
{
	const char *s = proc_signame((int)luaL_checkinteger(L, 1));
	if (!s)
		return 0;
	lua_pushstring(L, s);
	return 1;
}

/* proc.user(name_or_uid) -> uid, gid|false, name|false | nil (unknown name) */
static int l_user(lua_State *L)
{
	struct passwd *pw;
	if (lua_isinteger(L, 1)) {
		uid_t uid = (uid_t)lua_tointeger(L, 1);
		pw = getpwuid(uid);
		lua_pushinteger(L, uid);
	} else {
		pw = getpwnam(luaL_checkstring(L, 1));
		if (!pw)
			return 0;
		lua_pushinteger(L, pw->pw_uid);
	}
	if (pw) {
		lua_pushinteger(L, pw->pw_gid);
		lua_pushstring(L, pw->pw_name);
	} else {
		lua_pushboolean(L, 0);
		lua_pushboolean(L, 0);
	}
	return 3;
}

/* proc.group(name_or_gid) -> gid | nil (unknown name) */
static int l_group(lua_State *L)
{
	if (lua_isinteger(L, 1)) {
		lua_pushinteger(L, lua_tointeger(L, 1));
		return 1;
	}
	struct group *gr = getgrnam(luaL_checkstring(L, 1));
	if (!gr)
		return 0;
	lua_pushinteger(L, gr->gr_gid);
	return 1;
}

/* proc.grouplist(user_name, gid) -> { gid... } (supplementary groups) */
static int l_grouplist(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	gid_t gid = (gid_t)luaL_checkinteger(L, 2);
	gid_t g[MAX_GROUPS];
	int n = MAX_GROUPS;
	if (getgrouplist(name, gid, g, &n) < 0)
		n = MAX_GROUPS;
	lua_createtable(L, n, 0);
	for (int i = 0; i < n; i++) {
		lua_pushinteger(L, g[i]);
		lua_rawseti(L, -2, i + 1);
	}
	return 1;
}

/* proc.environ() -> { "K=V"... } (the current process environment) */
static int l_environ(lua_State *L)
{
	lua_newtable(L);
	int i = 0;
	for (char **e = environ; e && *e; e++) {
		lua_pushstring(L, *e);
		lua_rawseti(L, -2, ++i);
	}
	return 1;
}

/* proc.isatty(fd) -> boolean */
static int l_isatty(lua_State *L)
{
	lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
	return 1;
}

/* proc.getpid() -> pid */
static int l_getpid(lua_State *L)
{
	lua_pushinteger(L, getpid());
	return 1;
}

/* proc.geteuid() -> uid */
static int l_geteuid(lua_State *L)
{
	lua_pushinteger(L, geteuid());
	return 1;
}

/* proc.rlimit_valid(name) -> boolean */
static int l_rlimit_valid(lua_State *L)
{
	lua_pushboolean(L, proc_rlimit_resource(luaL_checkstring(L, 1)) >= 0);
	return 1;
}

/* proc.sigchld_open() -> fd (SIGCHLD self-pipe read end) | nil, msg, errno */
static int l_sigchld_open(lua_State *L)
{
	int fd = proc_sigchld_open();
	if (fd < 0)
		return fl_pusherr(L, -fd);
	lua_pushinteger(L, fd);
	return 1;
}

/* proc.sigchld_drain(): empty the self-pipe */
static int l_sigchld_drain(lua_State *L)
{
	(void)L;
	proc_sigchld_drain();
	return 0;
}

/* proc.sigchld_close(): restore SIGCHLD and close the self-pipe */
static int l_sigchld_close(lua_State *L)
{
	(void)L;
	proc_sigchld_close();
	return 0;
}

static const luaL_Reg proc_funcs[] = {
	{ "sigchld_close", l_sigchld_close },
	{ "geteuid", l_geteuid },
	{ "rlimit_valid", l_rlimit_valid },
	{ "sigchld_open", l_sigchld_open },
	{ "sigchld_drain", l_sigchld_drain },
	{ "spawn", l_spawn },
	{ "wait_any", l_wait_any },
	{ "send_signal", l_send_signal },
	{ "killpg", l_killpg },
	{ "group_alive", l_group_alive },
	{ "close", l_close },
	{ "pipe", l_pipe },
	{ "set_nonblock", l_set_nonblock },
	{ "backend", l_backend },
	{ "signum", l_signum },
	{ "signame", l_signame },
	{ "user", l_user },
	{ "group", l_group },
	{ "grouplist", l_grouplist },
	{ "environ", l_environ },
	{ "isatty", l_isatty },
	{ "getpid", l_getpid },
	{ NULL, NULL },
};

/* Open `fibers.core`.proc. */
int fl_open_proc(lua_State *L)
{
	luaL_newlib(L, proc_funcs);
	return 1;
}
