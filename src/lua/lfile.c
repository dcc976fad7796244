/*
 * lfile.c - `fibers.core`.file: the file-descriptor helpers that
 * lib/fibers/io/file.lua needs (open with fopen modes, pipes, mkstemp,
 * fd kinds, O_NONBLOCK, unlink/rename/fchmod, SIGPIPE disposition).
 * Streams themselves are in lstream.c.  Misuse raises; OS failure returns
 * nil, message, errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lbind.h"

/* Parse an fopen-style mode; returns open flags or -1. */
static int mode_flags(const char *m)
{
	int fl;

	switch (*m++) {
	case 'r': fl = O_RDONLY; break;
	case 'w': fl = O_WRONLY | O_CREAT | O_TRUNC; break;
	case 'a': fl = O_WRONLY | O_CREAT | O_APPEND; break;
	default: return -1;
	}
	if (*m == '+') {
		fl = (fl & ~O_ACCMODE) | O_RDWR;
		m++;
	}
	if (*m == 'b')
		m++;
	return *m ? -1 : fl;
}

/* file.open(path, mode, perms?) -> fd | nil, msg, errno (O_NONBLOCK, O_CLOEXEC) */
static int l_open(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	const char *mode = luaL_optstring(L, 2, "r");
	int perms = (int)luaL_optinteger(L, 3, 0666), fl = mode_flags(mode), fd;

	luaL_argcheck(L, fl >= 0, 2, "invalid mode");
	do
		fd = open(path, fl | O_CLOEXEC | O_NONBLOCK, (mode_t)perms);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return fl_pusherr(L, errno);
	lua_pushinteger(L, fd);
	return 1;
}

/* file.mode_ok(mode) -> readable, writable (raises on a bad mode) */
static int l_mode(lua_State *L)
{
	int fl = mode_flags(luaL_checkstring(L, 1));

	luaL_argcheck(L, fl >= 0, 1, "invalid mode");
	lua_pushboolean(L, (fl & O_ACCMODE) != O_WRONLY);
	lua_pushboolean(L, (fl & O_ACCMODE) != O_RDONLY);
	return 2;
}

/* file.pipe(size?) -> rfd, wfd | nil, msg, errno (both non-blocking) */
static int l_pipe(lua_State *L)
{
	int fds[2];
	lua_Integer sz = luaL_optinteger(L, 1, 0);

	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return fl_pusherr(L, errno);
#ifdef F_SETPIPE_SZ
	/* A larger pipe means fewer wake-ups; failure (limits) is harmless. */
	if (sz > 0)
		(void)fcntl(fds[1], F_SETPIPE_SZ, (int)sz);
#endif
	lua_pushinteger(L, fds[0]);
	lua_pushinteger(L, fds[1]);
	return 2;
}

/* file.mkstemp(template) -> fd, path | nil, msg, errno */
static int l_mkstemp(lua_State *L)
{
	size_t n;
	const char *t = luaL_checklstring(L, 1, &n);
	char *p;
	int fd, err;

	luaL_argcheck(L, n >= 6 && strcmp(t + n - 6, "XXXXXX") == 0, 1, "template must end in XXXXXX");
	p = malloc(n + 1);
	if (!p)
		return luaL_error(L, "out of memory");
	memcpy(p, t, n + 1);
	fd = mkostemp(p, O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		free(p);
		return fl_pusherr(L, err);
	}
	lua_pushinteger(L, fd);
	lua_pushstring(L, p);
	free(p);
	return 2;
}

/* file.fdkind(fd) -> "file"|"fifo"|"socket"|"tty"|"char"|"dir"|"block"|"other" | nil, msg, errno */
static int l_fdkind(lua_State *L)
{
	struct stat st;
	int fd = (int)luaL_checkinteger(L, 1);
	const char *k = "other";

	if (fstat(fd, &st) < 0)
		return fl_pusherr(L, errno);
	if (S_ISREG(st.st_mode))
		k = "file";
	else if (S_ISFIFO(st.st_mode))
		k = "fifo";
	else if (S_ISSOCK(st.st_mode))
		k = "socket";
	else if (S_ISCHR(st.st_mode))
		k = isatty(fd) ? "tty" : "char";
	else if (S_ISDIR(st.st_mode))
		k = "dir";
	else if (S_ISBLK(st.st_mode))
		k = "block";
	lua_pushstring(L, k);
	return 1;
}

/* file.set_nonblock(fd, on) -> previous (boolean) | nil, msg, errno */
static int l_set_nonblock(lua_State *L)
{
	int fd = (int)luaL_checkinteger(L, 1), on = lua_toboolean(L, 2);
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return fl_pusherr(L, errno);
	if (fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) < 0)
		return fl_pusherr(L, errno);
	lua_pushboolean(L, (fl & O_NONBLOCK) != 0);
	return 1;
}

/* file.fchmod(fd, mode) / unlink(path) / rename(a, b) / close_fd(fd) -> true | nil, msg, errno */
static int l_fchmod(lua_State *L)
{
	if (fchmod((int)luaL_checkinteger(L, 1), (mode_t)luaL_checkinteger(L, 2)) < 0)
		return fl_pusherr(L, errno);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_unlink(lua_State *L)
{
	if (unlink(luaL_checkstring(L, 1)) < 0)
		return fl_pusherr(L, errno);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_rename(lua_State *L)
{
	if (rename(luaL_checkstring(L, 1), luaL_checkstring(L, 2)) < 0)
		return fl_pusherr(L, errno);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_close_fd(lua_State *L)
{
	if (close((int)luaL_checkinteger(L, 1)) < 0 && errno != EINTR)
		return fl_pusherr(L, errno);
	lua_pushboolean(L, 1);
	return 1;
}

/*
 * file.ignore_sigpipe(on) - on: SIGPIPE ignored (EPIPE becomes an error
 * value), remembering the old disposition; off: restore it.
 */
static int l_ignore_sigpipe(lua_State *L)
{
	static struct sigaction old;
	static int saved;
	struct sigaction sa;

	if (lua_toboolean(L, 1)) {
		if (!saved) {
			memset(&sa, 0, sizeof sa);
			sa.sa_handler = SIG_IGN;
			sigemptyset(&sa.sa_mask);
			if (sigaction(SIGPIPE, &sa, &old) == 0)
				saved = 1;
		}
	} else if (saved) {
		sigaction(SIGPIPE, &old, NULL);
		saved = 0;
	}
	return 0;
}

static const luaL_Reg file_funcs[] = {
	{ "open", l_open },
	{ "mode", l_mode },
	{ "pipe", l_pipe },
	{ "mkstemp", l_mkstemp },
	{ "fdkind", l_fdkind },
	{ "set_nonblock", l_set_nonblock },
	{ "fchmod", l_fchmod },
	{ "unlink", l_unlink },
	{ "rename", l_rename },
	{ "close_fd", l_close_fd },
	{ "ignore_sigpipe", l_ignore_sigpipe },
	{ NULL, NULL },
};

/* Open `fibers.core`.file: fd helpers for fibers.io.file. */
int fl_open_file(lua_State *L)
{
	luaL_newlib(L, file_funcs);
	return 1;
}
