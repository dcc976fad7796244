/*
 * lsignal.c - `fibers.core`.signal: signal watchers (src/core/sigwatch.c)
 * for lib/fibers/signal.lua, plus signal name/number lookup (proc_signum,
 * proc_signame of the process core) and raise-to-self.
 *
 *   signal.open(backend?) -> watcher   backend "signalfd" | "pipe" | nil
 *                                      (nil: FIBERS_SIGNAL, else signalfd)
 *   watcher:add(sig) / :del(sig) -> true | nil, msg, errno (bad sig raises)
 *   watcher:fd() -> fd to wait on for "r";  watcher:read() -> { sig... }
 *   watcher:backend(), watcher:close()
 *   signal.number(name_or_num) -> number | nil   ("INT", "SIGINT", 2)
 *   signal.name(num) -> "INT" | nil
 *   signal.raise(sig) -> true | nil, msg, errno   (kill(getpid(), sig))
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "lbind.h"
#include "proc.h"
#include "sigwatch.h"

#define WATCH_MT "fibers.core.signal.watcher"

struct lwatch {
	struct sig_watch *w;
};

static struct sig_watch *check_watch(lua_State *L)
{
	struct lwatch *lw = luaL_checkudata(L, 1, WATCH_MT);
	if (!lw->w)
		luaL_error(L, "fibers: signal watcher is closed");
	return lw->w;
}

/* Signal number from a name or number argument; raises if unknown. */
static int check_sig(lua_State *L, int idx)
{
	int sig = 0;
	if (lua_type(L, idx) == LUA_TNUMBER) {
		lua_Integer n = luaL_checkinteger(L, idx);
		if (n > 0 && n < NSIG)
			sig = (int)n;
	} else {
		sig = proc_signum(luaL_checkstring(L, idx));
	}
	if (sig <= 0)
		luaL_error(L, "fibers: unknown signal '%s'", luaL_tolstring(L, idx, NULL));
	return sig;
}

static int w_add(lua_State *L)
{
	struct sig_watch *w = check_watch(L);
	int sig = check_sig(L, 2);
	int err = sig_add(w, sig);
	if (err == EINVAL)
		return luaL_error(L, "fibers: signal %d cannot be watched", sig);
	if (err)
		return fl_pusherr(L, err);
	lua_pushboolean(L, 1);
	return 1;
}

static int w_del(lua_State *L)
{
	struct sig_watch *w = check_watch(L);
	int err = sig_del(w, check_sig(L, 2));
	if (err)
		return fl_pusherr(L, err);
	lua_pushboolean(L, 1);
	return 1;
}

static int w_fd(lua_State *L)
{
	lua_pushinteger(L, sig_fd(check_watch(L)));
	return 1;
}

static int w_read(lua_State *L)
{
	struct sig_watch *w = check_watch(L);
	int sigs[16], n, k = 0;
	lua_newtable(L);
	do {
		int err = sig_read(w, sigs, 16, &n);
		if (err)
			return fl_pusherr(L, err);
		for (int i = 0; i < n; i++) {
			lua_pushinteger(L, sigs[i]);
			lua_rawseti(L, -2, ++k);
		}
	} while (n == 16);
	return 1;
}

static int w_backend(lua_State *L)
{
	lua_pushstring(L, sig_backend_name(check_watch(L)));
	return 1;
}

static int w_close(lua_State *L)
{
	struct lwatch *lw = luaL_checkudata(L, 1, WATCH_MT);
	if (lw->w) {
		sig_close(lw->w);
		lw->w = NULL;
	}
	return 0;
}

/* signal.open(backend?) -> watcher | nil, msg, errno */
static int l_open(lua_State *L)
{
	const char *name = luaL_optstring(L, 1, NULL);
	enum sig_backend b = SIG_BACKEND_DEFAULT;
	if (name && strcmp(name, "signalfd") == 0)
		b = SIG_BACKEND_SIGNALFD;
	else if (name && strcmp(name, "pipe") == 0)
		b = SIG_BACKEND_PIPE;
	else if (name)
		return luaL_error(L, "fibers: unknown signal backend '%s' (use signalfd or pipe)", name);
	struct lwatch *lw = lua_newuserdatauv(L, sizeof *lw, 0);
	lw->w = NULL;
	luaL_setmetatable(L, WATCH_MT);
	int err = sig_open(&lw->w, b);
	if (err == EINVAL)
		return luaL_error(L, "fibers: unknown FIBERS_SIGNAL value (use signalfd or pipe)");
	if (err)
		return fl_pusherr(L, err);
	return 1;
}

/* signal.number(name_or_num) -> number | nil */
static int l_number(lua_State *L)
{
	int sig = 0;
	if (lua_type(L, 1) == LUA_TNUMBER) {
		lua_Integer n = lua_tointeger(L, 1);
		if (n > 0 && n < NSIG)
			sig = (int)n;
	} else if (lua_type(L, 1) == LUA_TSTRING) {
		sig = proc_signum(lua_tostring(L, 1));
	}
	if (sig <= 0)
		lua_pushnil(L);
	else
		lua_pushinteger(L, sig);
	return 1;
}

/* signal.name(num) -> "INT" | nil */
static int l_name(lua_State *L)
{
	const char *n = proc_signame((int)luaL_checkinteger(L, 1));
	if (n)
		lua_pushstring(L, n);
	else
		lua_pushnil(L);
	return 1;
}

/* signal.raise(sig) -> true | nil, msg, errno: send sig to this process. */
static int l_raise(lua_State *L)
{
	int sig = check_sig(L, 1);
	if (kill(getpid(), sig) != 0)
		return fl_pusherr(L, errno);
	lua_pushboolean(L, 1);
	return 1;
}

static const luaL_Reg watch_methods[] = {
	{ "add", w_add },
	{ "del", w_del },
	{ "fd", w_fd },
	{ "read", w_read },
	{ "backend", w_backend },
	{ "close", w_close },
	{ NULL, NULL },
};

static const luaL_Reg funcs[] = {
	{ "open", l_open },
	{ "number", l_number },
	{ "name", l_name },
	{ "raise", l_raise },
	{ NULL, NULL },
};

int fl_open_signal(lua_State *L)
{
	luaL_newmetatable(L, WATCH_MT);
	luaL_newlib(L, watch_methods);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, w_close);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, w_close);
	lua_setfield(L, -2, "__close");
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
