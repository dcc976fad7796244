/*
 * lcgroup.c - `fibers.core`.cgroup: the Lua binding of the cgroup v2
 * mechanism (src/core/cgroup.h).  Private to fibersd's containment policy
 * (lib/fibersd/cgroup.lua); this file only converts arguments and results.
 * Misuse raises; OS failure returns nil, message, errno.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "lbind.h"

static int ok_or_err(lua_State *L, int err)
{
	if (err)
		return fl_pusherr(L, err);
	lua_pushboolean(L, 1);
	return 1;
}

/* cgroup.path_of(pid?) -> path (this process's cgroup v2 directory) */
static int l_path_of(lua_State *L)
{
	char buf[PATH_MAX];
	int err = cg_path_of((pid_t)luaL_optinteger(L, 1, 0), buf, sizeof buf);
	if (err)
		return fl_pusherr(L, err);
	lua_pushstring(L, buf);
	return 1;
}

/* cgroup.mount() -> the unified mount point */
static int l_mount(lua_State *L)
{
	char buf[PATH_MAX];
	int err = cg_mount(buf, sizeof buf);
	if (err)
		return fl_pusherr(L, err);
	lua_pushstring(L, buf);
	return 1;
}

static int l_create(lua_State *L)
{
	return ok_or_err(L, cg_create(luaL_checkstring(L, 1)));
}

static int l_remove(lua_State *L)
{
	return ok_or_err(L, cg_remove(luaL_checkstring(L, 1)));
}

/* cgroup.attach(path, pid?) (0/none: the calling process) */
static int l_attach(lua_State *L)
{
	return ok_or_err(L, cg_attach(luaL_checkstring(L, 1), (pid_t)luaL_optinteger(L, 2, 0)));
}

/* cgroup.populated(path) -> true|false */
static int l_populated(lua_State *L)
{
	int p = 0, err = cg_populated(luaL_checkstring(L, 1), &p);
	if (err)
		return fl_pusherr(L, err);
	lua_pushboolean(L, p);
	return 1;
}

static int l_kill(lua_State *L)
{
	return ok_or_err(L, cg_kill(luaL_checkstring(L, 1)));
}

/* cgroup.procs(path) -> { pid, ... } */
static int l_procs(lua_State *L)
{
	pid_t *p;
	size_t n;
	int err = cg_procs(luaL_checkstring(L, 1), &p, &n);
	if (err)
		return fl_pusherr(L, err);
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_pushinteger(L, p[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	free(p);
	return 1;
}

/* cgroup.read(path, file) -> contents */
static int l_read(lua_State *L)
{
	char buf[8192];
	int err = cg_read(luaL_checkstring(L, 1), luaL_checkstring(L, 2), buf, sizeof buf);
	if (err)
		return fl_pusherr(L, err);
	lua_pushstring(L, buf);
	return 1;
}

/* cgroup.write(path, file, value) */
static int l_write(lua_State *L)
{
	return ok_or_err(L, cg_write(luaL_checkstring(L, 1), luaL_checkstring(L, 2),
				     luaL_checkstring(L, 3)));
}

/* cgroup.cpu_stat(path) -> user_usec, system_usec */
static int l_cpu_stat(lua_State *L)
{
	unsigned long long u, s;
	int err = cg_cpu_stat(luaL_checkstring(L, 1), &u, &s);
	if (err)
		return fl_pusherr(L, err);
	lua_pushinteger(L, (lua_Integer)u);
	lua_pushinteger(L, (lua_Integer)s);
	return 2;
}

/* cgroup.watch(path) -> fd (inotify on cgroup.events, non-blocking) */
static int l_watch(lua_State *L)
{
	int fd = cg_watch(luaL_checkstring(L, 1));
	if (fd < 0)
		return fl_pusherr(L, -fd);
	lua_pushinteger(L, fd);
	return 1;
}

/* cgroup.open(path) -> fd of the directory (O_PATH, close-on-exec), for
 * spawn{cgroup = fd} */
static int l_open(lua_State *L)
{
	int fd = open(luaL_checkstring(L, 1), O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fl_pusherr(L, errno);
	lua_pushinteger(L, fd);
	return 1;
}

static const luaL_Reg funcs[] = {
	{ "path_of", l_path_of },
	{ "mount", l_mount },
	{ "create", l_create },
	{ "remove", l_remove },
	{ "attach", l_attach },
	{ "populated", l_populated },
	{ "kill", l_kill },
	{ "procs", l_procs },
	{ "read", l_read },
	{ "write", l_write },
	{ "cpu_stat", l_cpu_stat },
	{ "watch", l_watch },
	{ "open", l_open },
	{ NULL, NULL },
};

int fl_open_cgroup(lua_State *L)
{
	luaL_newlib(L, funcs);
	return 1;
}
