/*
 * lstream.c - `fibers.core`.stream: Lua binding of src/core/stream.c (the
 * fd helpers of fibers.io.file live in lfile.c).
 *
 * A stream userdata never waits: every read method either answers from the
 * buffer (filling it from the fd without blocking) or returns `false`,
 * meaning "nothing yet, wait for readiness" — the Lua layer
 * (lib/fibers/io/stream.lua) does the waiting.  Bytes are consumed from the
 * buffer only when a method returns them, so a read that is abandoned
 * loses nothing.  Misuse raises; OS failure returns nil, message, errno.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lbind.h"
#include "stream.h"

#define STREAM_MT "fibers.core.stream"

typedef struct lstream {
	stream_t s;
	int own; /* close the fd on close/gc */
} lstream_t;

static lstream_t *check_ls(lua_State *L)
{
	return luaL_checkudata(L, 1, STREAM_MT);
}

static stream_t *check_open(lua_State *L)
{
	lstream_t *ls = check_ls(L);

	if (ls->s.closed)
		luaL_error(L, "stream is closed");
	return &ls->s;
}

/* Push the first n buffered bytes as a string and consume them. */
static int push_take(lua_State *L, stream_t *s, size_t n)
{
	lua_pushlstring(L, buf_peek(&s->rb), n);
	stream_consume(s, n);
	return 1;
}

/*
 * Try to get more bytes: 1 = progress (data or EOF), 0 = must wait,
 * -1 = error (pushed nil, msg, errno).
 */
static int more(lua_State *L, stream_t *s, size_t want)
{
	size_t got;
	int err;

	if (s->eof)
		return 1;
	if (s->fd < 0) {
		if (s->rerr) {
			fl_pusherr(L, s->rerr);
			return -1;
		}
		return 0;
	}
	err = stream_fill(s, want, &got);
	if (err == EAGAIN)
		return 0;
	if (err) {
		fl_pusherr(L, err);
		return -1;
	}
	return 1;
}

/*
 * stream.new(fd, bufsize?, own?, pollfirst?) -> stream (fd -1: fed by
 * stream:feed; pollfirst: fd is blocking, poll before each syscall)
 */
static int l_new(lua_State *L)
{
	int fd = (int)luaL_checkinteger(L, 1);
	lua_Integer bs = luaL_optinteger(L, 2, STREAM_DEFAULT_BUFSIZE);
	lstream_t *ls;

	luaL_argcheck(L, fd >= -1, 1, "bad file descriptor");
	luaL_argcheck(L, bs > 0 && bs <= INT_MAX, 2, "bad buffer size");
	ls = lua_newuserdata(L, sizeof *ls);
	stream_init(&ls->s, fd, (size_t)bs);
	ls->own = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3);
	ls->s.pollfirst = lua_toboolean(L, 4) ? 1 : 0;
	luaL_setmetatable(L, STREAM_MT);
	/* a host's accounting (FL_ACCT_KEY): charge the buffers to the owner */
	lua_getfield(L, LUA_REGISTRYINDEX, FL_ACCT_KEY);
	const fl_acct_hook_t *h = lua_islightuserdata(L, -1) ? lua_touserdata(L, -1) : NULL;
	lua_pop(L, 1);
	if (h != NULL) {
		uint64_t owner = h->owner(h->ud);
		if (owner != 0)
			stream_set_acct(&ls->s, h->charge, h->ud, owner);
	}
	return 1;
}

/* s:fileno() -> fd | nil (closed or backend-driven) */
static int l_fileno(lua_State *L)
{
	lstream_t *ls = check_ls(L);

	if (ls->s.closed || ls->s.fd < 0)
		return 0;
	lua_pushinteger(L, ls->s.fd);
	return 1;
}

/* s:info() -> buffered read bytes, buffered write bytes, eof, closed */
static int l_info(lua_State *L)
{
	lstream_t *ls = check_ls(L);

	lua_pushinteger(L, (lua_Integer)buf_len(&ls->s.rb));
	lua_pushinteger(L, (lua_Integer)buf_len(&ls->s.wb));
	lua_pushboolean(L, ls->s.eof);
	lua_pushboolean(L, ls->s.closed);
	return 4;
}

/* s:bufsize(n?) -> current size (sets it when n is given) */
static int l_bufsize(lua_State *L)
{
	lstream_t *ls = check_ls(L);

	if (!lua_isnoneornil(L, 2)) {
		lua_Integer n = luaL_checkinteger(L, 2);
		luaL_argcheck(L, n > 0 && n <= INT_MAX, 2, "bad buffer size");
		ls->s.bufsize = (size_t)n;
	}
	lua_pushinteger(L, (lua_Integer)ls->s.bufsize);
	return 1;
}

/* s:feed(str) / s:feed(nil [, errno]) - backend bytes, or EOF / error */
static int l_feed(lua_State *L)
{
	stream_t *s = check_open(L);
	size_t n;
	const char *p;

	if (lua_isnoneornil(L, 2)) {
		if (lua_isnoneornil(L, 3))
			s->eof = 1;
		else
			s->rerr = (int)luaL_checkinteger(L, 3);
		return 0;
	}
	p = luaL_checklstring(L, 2, &n);
	if (stream_feed(s, p, n))
		return luaL_error(L, "out of memory");
	return 0;
}

/* s:fill(want?) -> bytes read (0 at EOF) | false (would block) | nil, msg, errno */
static int l_fill(lua_State *L)
{
	stream_t *s = check_open(L);
	size_t got;
	int err = stream_fill(s, (size_t)luaL_optinteger(L, 2, 0), &got);

	if (err == EAGAIN) {
		lua_pushboolean(L, 0);
		return 1;
	}
	if (err)
		return fl_pusherr(L, err);
	lua_pushinteger(L, (lua_Integer)got);
	return 1;
}

/*
 * s:read_line(term, keep, max?) -> line | false (wait) | nil (EOF, no data)
 * | nil, "line too long" | nil, msg, errno.  A final unterminated line at
 * EOF is a line.  max defaults to STREAM_LINE_MAX; a negative max is no
 * bound.
 */
static int l_read_line(lua_State *L)
{
	stream_t *s = check_open(L);
	size_t tlen, len;
	const char *term = luaL_checklstring(L, 2, &tlen);
	int keep = lua_toboolean(L, 3), r;
	lua_Integer max = luaL_optinteger(L, 4, STREAM_LINE_MAX);
	ssize_t at;

	luaL_argcheck(L, tlen > 0, 2, "empty terminator");
	for (;;) {
		at = stream_find(s, term, tlen);
		if (at >= 0) {
			if (max >= 0 && at > max)
				break;
			lua_pushlstring(L, buf_peek(&s->rb), (size_t)at + (keep ? tlen : 0));
			stream_consume(s, (size_t)at + tlen);
			return 1;
		}
		len = buf_len(&s->rb);
		if (max >= 0 && len > (size_t)max + tlen - 1)
			break;
		if (s->eof) {
			if (len == 0)
				return 0;
			if (max >= 0 && len > (size_t)max)
				break;
			return push_take(L, s, len);
		}
		r = more(L, s, 0);
		if (r <= 0) {
			if (r == 0)
				lua_pushboolean(L, 0);
			return r == 0 ? 1 : 3;
		}
	}
	lua_pushnil(L);
	lua_pushliteral(L, "line too long");
	return 2;
}

/* s:read_exactly(n) -> str | false | nil, "short read" | nil, msg, errno */
static int l_read_exactly(lua_State *L)
{
	stream_t *s = check_open(L);
	lua_Integer n = luaL_checkinteger(L, 2);
	int r;

	luaL_argcheck(L, n >= 0, 2, "negative count");
	while (buf_len(&s->rb) < (size_t)n) {
		if (s->eof) {
			lua_pushnil(L);
			lua_pushliteral(L, "short read");
			return 2;
		}
		r = more(L, s, (size_t)n - buf_len(&s->rb));
		if (r <= 0) {
			if (r == 0)
				lua_pushboolean(L, 0);
			return r == 0 ? 1 : 3;
		}
	}
	return push_take(L, s, (size_t)n);
}

/*
 * s:read_some(min, max?, term?) -> str | false | nil (EOF, nothing) |
 * nil, msg, errno.  Ready with >= min bytes, with term found (returned
 * through term), or at EOF; returns at most max bytes.
 */
static int l_read_some(lua_State *L)
{
	stream_t *s = check_open(L);
	lua_Integer min = luaL_optinteger(L, 2, 1);
	lua_Integer max = luaL_optinteger(L, 3, -1);
	size_t tlen = 0, len, n;
	const char *term = luaL_optlstring(L, 4, NULL, &tlen);
	ssize_t at;
	int r;

	if (max >= 0 && min > max)
		min = max;
	for (;;) {
		len = buf_len(&s->rb);
		n = len;
		if (term && tlen && (at = stream_find(s, term, tlen)) >= 0) {
			n = (size_t)at + tlen;
			break;
		}
		if (len >= (size_t)(min > 0 ? min : 0) && (len > 0 || min <= 0))
			break;
		if (s->eof) {
			if (len == 0)
				return 0;
			break;
		}
		r = more(L, s, max > 0 ? (size_t)max - len : 0);
		if (r <= 0) {
			if (r == 0)
				lua_pushboolean(L, 0);
			return r == 0 ? 1 : 3;
		}
	}
	if (max >= 0 && n > (size_t)max)
		n = (size_t)max;
	return push_take(L, s, n);
}

/*
 * s:read_all(max?) -> str (at EOF) | false | nil, msg, errno (data kept) |
 * nil, "too long" (more than max bytes before EOF; data kept)
 */
static int l_read_all(lua_State *L)
{
	stream_t *s = check_open(L);
	lua_Integer max = luaL_optinteger(L, 2, -1);
	int err;

	if (max >= 0 && buf_len(&s->rb) > (size_t)max)
		goto too_long;
	if (!s->eof && s->fd >= 0) {
		err = stream_fill_all(s, max >= 0 ? (size_t)max + 1 : 0);
		if (max >= 0 && buf_len(&s->rb) > (size_t)max)
			goto too_long;
		if (err == EAGAIN) {
			lua_pushboolean(L, 0);
			return 1;
		}
		if (err)
			return fl_pusherr(L, err);
	}
	if (!s->eof) {
		if (s->rerr)
			return fl_pusherr(L, s->rerr);
		lua_pushboolean(L, 0);
		return 1;
	}
	return push_take(L, s, buf_len(&s->rb));
too_long:
	lua_pushnil(L);
	lua_pushliteral(L, "too long");
	return 2;
}

/* s:take(n?) -> up to n (default all) buffered bytes, consumed */
static int l_take(lua_State *L)
{
	stream_t *s = check_open(L);
	lua_Integer n = luaL_optinteger(L, 2, -1);
	size_t len = buf_len(&s->rb);

	if (n >= 0 && (size_t)n < len)
		len = (size_t)n;
	return push_take(L, s, len);
}

/* s:unread(str) - put bytes back in front of the read buffer */
static int l_unread(lua_State *L)
{
	stream_t *s = check_open(L);
	size_t n, len = buf_len(&s->rb);
	const char *p = luaL_checklstring(L, 2, &n);

	if (n == 0)
		return 0;
	if (s->rb.rd >= n) {
		s->rb.rd -= n;
	} else {
		if (buf_reserve(&s->rb, n))
			return luaL_error(L, "out of memory");
		memmove(s->rb.data + s->rb.rd + n, s->rb.data + s->rb.rd, len);
		s->rb.wr += n;
	}
	memcpy(s->rb.data + s->rb.rd, p, n);
	s->scan = 0;
	return 0;
}

/* Numeral scanner over the read buffer (liolib's read_number, buffered). */
typedef struct numscan {
	stream_t *s;
	size_t pos;
	int n;
	char buf[201];
	int starved; /* reached the end of the buffer before EOF */
} numscan_t;

static int ns_peek(numscan_t *ns)
{
	if (ns->pos < buf_len(&ns->s->rb))
		return (unsigned char)buf_peek(&ns->s->rb)[ns->pos];
	if (!ns->s->eof)
		ns->starved = 1;
	return -1;
}

static int ns_test(numscan_t *ns, const char *set)
{
	int c = ns_peek(ns);

	if (c >= 0 && (c == set[0] || c == set[1]) && ns->n < 200) {
		ns->buf[ns->n++] = (char)c;
		ns->pos++;
		return 1;
	}
	return 0;
}

static int ns_digits(numscan_t *ns, int hex)
{
	int count = 0, c;

	while ((c = ns_peek(ns)) >= 0 && (hex ? isxdigit(c) : (c >= '0' && c <= '9')) && ns->n < 200) {
		ns->buf[ns->n++] = (char)c;
		ns->pos++;
		count++;
	}
	return count;
}

/* s:read_number() -> number | false (wait) | nil (no numeral) | nil, msg, errno */
static int l_read_number(lua_State *L)
{
	stream_t *s = check_open(L);
	numscan_t ns;
	int count, hex, c, r;

	for (;;) {
		memset(&ns, 0, sizeof ns);
		ns.s = s;
		while ((c = ns_peek(&ns)) >= 0 && (c == ' ' || (c >= '\t' && c <= '\r')))
			ns.pos++;
		if (!ns.starved) {
			count = 0;
			hex = 0;
			ns_test(&ns, "-+");
			if (ns_test(&ns, "00")) {
				if (ns_test(&ns, "xX"))
					hex = 1;
				else
					count = 1;
			}
			count += ns_digits(&ns, hex);
			if (ns_test(&ns, ".."))
				count += ns_digits(&ns, hex);
			if (count > 0 && ns_test(&ns, hex ? "pP" : "eE")) {
				ns_test(&ns, "-+");
				ns_digits(&ns, 0);
			}
			ns_peek(&ns);
		}
		if (!ns.starved || ns.n >= 200)
			break;
		r = more(L, s, 0);
		if (r <= 0) {
			if (r == 0)
				lua_pushboolean(L, 0);
			return r == 0 ? 1 : 3;
		}
	}
	ns.buf[ns.n] = '\0';
	stream_consume(s, ns.pos);
	if (ns.n > 0 && lua_stringtonumber(L, ns.buf))
		return 1;
	return 0;
}

/*
 * s:write(str, done?) -> done, complete | nil, msg, errno, done.  Writes
 * str from byte offset done (0-based) straight to the fd until all is
 * written (complete = true) or the fd is full (false).
 */
static int l_write(lua_State *L)
{
	stream_t *s = check_open(L);
	size_t n, done = 0;
	const char *p = luaL_checklstring(L, 2, &n);
	lua_Integer off = luaL_optinteger(L, 3, 0);
	int err;

	luaL_argcheck(L, off >= 0 && (size_t)off <= n, 3, "bad offset");
	err = stream_write(s, p + off, n - (size_t)off, &done);
	if (err && err != EAGAIN) {
		fl_pusherr(L, err);
		lua_pushinteger(L, off + (lua_Integer)done);
		return 4;
	}
	lua_pushinteger(L, off + (lua_Integer)done);
	lua_pushboolean(L, err == 0);
	return 2;
}

/* s:buffer(str, done?) - append str (from byte offset done) to the write buffer */
static int l_buffer(lua_State *L)
{
	stream_t *s = check_open(L);
	size_t n;
	const char *p = luaL_checklstring(L, 2, &n);
	lua_Integer off = luaL_optinteger(L, 3, 0);

	luaL_argcheck(L, off >= 0 && (size_t)off <= n, 3, "bad offset");
	if (buf_append(&s->wb, p + off, n - (size_t)off))
		return luaL_error(L, "out of memory");
	return 0;
}

/* s:flush() -> true (write buffer empty) | false (fd full) | nil, msg, errno */
static int l_flush(lua_State *L)
{
	stream_t *s = check_open(L);
	int err = stream_flush(s);

	if (err && err != EAGAIN)
		return fl_pusherr(L, err);
	lua_pushboolean(L, err == 0);
	return 1;
}

/* s:wtake(n?) -> up to n bytes of the write buffer, consumed (backends) */
static int l_wtake(lua_State *L)
{
	stream_t *s = check_open(L);
	lua_Integer n = luaL_optinteger(L, 2, -1);
	size_t len = buf_len(&s->wb);

	if (n >= 0 && (size_t)n < len)
		len = (size_t)n;
	lua_pushlstring(L, buf_peek(&s->wb), len);
	buf_consume(&s->wb, len);
	return 1;
}

/*
 * s:seek(whence, off) -> position | nil, msg, errno.  The caller flushes
 * first; buffered read bytes are accounted for and then dropped.
 */
static int l_seek(lua_State *L)
{
	static const int modes[] = { SEEK_SET, SEEK_CUR, SEEK_END };
	static const char *const names[] = { "set", "cur", "end", NULL };
	stream_t *s = check_open(L);
	int op = luaL_checkoption(L, 2, "cur", names);
	lua_Integer off = luaL_optinteger(L, 3, 0);
	off_t pos;

	if (s->fd < 0)
		return fl_pusherr(L, ESPIPE);
	if (op == 1)
		off -= (lua_Integer)buf_len(&s->rb);
	pos = lseek(s->fd, (off_t)off, modes[op]);
	if (pos < 0)
		return fl_pusherr(L, errno);
	buf_clear(&s->rb);
	s->scan = 0;
	s->eof = 0;
	lua_pushinteger(L, (lua_Integer)pos);
	return 1;
}

/* s:close() -> true | nil, msg, errno (idempotent; buffers are dropped) */
static int l_close(lua_State *L)
{
	lstream_t *ls = check_ls(L);
	int err;

	if (ls->s.closed) {
		lua_pushboolean(L, 1);
		return 1;
	}
	err = stream_close(&ls->s, ls->own);
	if (err)
		return fl_pusherr(L, err);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_gc(lua_State *L)
{
	lstream_t *ls = check_ls(L);

	stream_close(&ls->s, ls->own);
	return 0;
}

static int l_tostring(lua_State *L)
{
	lstream_t *ls = check_ls(L);

	if (ls->s.closed)
		lua_pushliteral(L, "core.stream (closed)");
	else
		lua_pushfstring(L, "core.stream (fd %d)", ls->s.fd);
	return 1;
}

static const luaL_Reg stream_methods[] = {
	{ "fileno", l_fileno },
	{ "info", l_info },
	{ "bufsize", l_bufsize },
	{ "feed", l_feed },
	{ "fill", l_fill },
	{ "read_line", l_read_line },
	{ "read_exactly", l_read_exactly },
	{ "read_some", l_read_some },
	{ "read_all", l_read_all },
	{ "read_number", l_read_number },
	{ "take", l_take },
	{ "unread", l_unread },
	{ "write", l_write },
	{ "buffer", l_buffer },
	{ "flush", l_flush },
	{ "wtake", l_wtake },
	{ "seek", l_seek },
	{ "close", l_close },
	{ NULL, NULL },
};

static const luaL_Reg stream_funcs[] = {
	{ "new", l_new },
	{ NULL, NULL },
};

/* Open `fibers.core`.stream: the stream constructor and metatable. */
int fl_open_stream(lua_State *L)
{
	if (luaL_newmetatable(L, STREAM_MT)) {
		luaL_newlib(L, stream_methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, l_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, l_gc);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, l_tostring);
		lua_setfield(L, -2, "__tostring");
	}
	lua_pop(L, 1);
	luaL_newlib(L, stream_funcs);
	return 1;
}
