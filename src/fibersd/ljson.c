/*
 * ljson.c - the JSON half of `_fibersd`.control (see lcontrol.c): encoding
 * Lua values and decoding request lines through jansson (no hand-written
 * parser or printer), UTF-8 sanitising (invalid bytes -> U+FFFD), the null
 * sentinel and the array marker.  Objects are built with their keys in
 * sorted order, so dumps need no JSON_SORT_KEYS and keep the bytes the
 * protocol has always had; lstatus.c builds the status reply with
 * ctl_to_json and ctl_push_dump.  Trees live in the arena of jarena.h for
 * one call.  State: the dump buffer, reused between replies.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <lauxlib.h>

#include "jarena.h"
#include "lcontrol.h"

#define JSON_MAX_DEPTH 200
#define ARRAY_MT "fibersd.json.array"

/* The JSON null sentinel: a light userdata with a unique address. */
static const char null_sentinel = 0;

/* ---- UTF-8 -------------------------------------------------------------- */

/* Length of the valid sequence at s (1..4), or 0 if it is not valid UTF-8. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	size_t n;
	unsigned min;
	if (c >= 0xc2 && c <= 0xdf) { n = 2; min = 0x80; }
	else if (c >= 0xe0 && c <= 0xef) { n = 3; min = 0x800; }
	else if (c >= 0xf0 && c <= 0xf4) { n = 4; min = 0x10000; }
	else return 0;
	if (left < n)
		return 0;
	unsigned cp = c & (0x3f >> (n - 1));
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Length of the valid UTF-8 prefix of s (== len when all of it is valid). */
size_t ctl_utf8_valid_prefix(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		size_t n = utf8_seq(u + i, len - i);
		if (!n)
			break;
		i += n;
	}
	return i;
}

/* Copy src into valid UTF-8 (each invalid byte -> U+FFFD); see lcontrol.h. */
char *ctl_utf8_sanitize(const char *src, size_t len, size_t *outlen)
{
	const unsigned char *u = (const unsigned char *)src;
	char *out = malloc(len * 3 + 1);
	size_t o = 0, i = 0;
	if (!out)
		return NULL;
	while (i < len) {
		size_t n = utf8_seq(u + i, len - i);
		if (n) {
			memcpy(out + o, src + i, n);
			o += n;
			i += n;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/* A jansson string of valid UTF-8 from arbitrary bytes. */
static json_t *string_value(const char *s, size_t len)
{
	if (ctl_utf8_valid_prefix(s, len) == len)
		return json_stringn_nocheck(s, len);
	size_t n;
	char *clean = ctl_utf8_sanitize(s, len, &n);
	json_t *v = clean ? json_stringn_nocheck(clean, n) : NULL;
	free(clean);
	return v;
}

/* ---- Lua -> JSON ---------------------------------------------------------- */

#define to_json ctl_to_json

/* Is the table at idx a sequence 1..n (n > 0), or marked as an array? */
static int is_array(lua_State *L, int idx, size_t *len)
{
	size_t n = (size_t)lua_rawlen(L, idx), count = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (!lua_isinteger(L, -1)) {
			lua_pop(L, 1);
			return 0;
		}
		lua_Integer k = lua_tointeger(L, -1);
		if (k < 1 || (size_t)k > n) {
			lua_pop(L, 1);
			return 0;
		}
		count++;
	}
	*len = n;
	if (count == n && n > 0)
		return 1;
	if (count == 0 && luaL_getmetafield(L, idx, "__jsontype") != LUA_TNIL) {
		int arr = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "array") == 0;
		lua_pop(L, 1);
		return arr;
	}
	return 0;
}

/* Keys of an object being sorted. */
struct kv {
	const char *k;
	size_t len;
	json_t *v;
};

/* jansson's JSON_SORT_KEYS order: bytes, then length. */
static int kv_cmp(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;
	int c = memcmp(x->k, y->k, x->len < y->len ? x->len : y->len);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* A copy of object o with its keys inserted in sorted order (o is
 * released): dumps then keep insertion order, so no dump needs
 * JSON_SORT_KEYS, and trees built sorted in C (lstatus.c) are not sorted
 * again.  NULL when out of memory. */
static json_t *sorted_object(json_t *o)
{
	size_t n = json_object_size(o), i = 0;
	if (n < 2)
		return o;
	struct kv stackbuf[32], *kv = n <= 32 ? stackbuf : malloc(n * sizeof *kv);
	json_t *s = kv ? json_object() : NULL;
	if (!s) {
		if (kv != stackbuf)
			free(kv);
		json_decref(o);
		return NULL;
	}
	const char *k;
	size_t klen;
	json_t *v;
	json_object_keylen_foreach(o, k, klen, v) {
		kv[i].k = k;
		kv[i].len = klen;
		kv[i].v = v;
		i++;
	}
	qsort(kv, n, sizeof *kv, kv_cmp);
	for (i = 0; i < n; i++)
		json_object_setn_nocheck(s, kv[i].k, kv[i].len, kv[i].v);
	if (kv != stackbuf)
		free(kv);
	json_decref(o);
	return s;
}

static json_t *table_to_json(struct ctl_enc *e, int idx, int depth)
{
	lua_State *L = e->L;
	size_t n;
	luaL_checkstack(L, 4, "json_encode");
	if (is_array(L, idx, &n)) {
		json_t *a = json_array();
		for (size_t i = 1; i <= n; i++) {
			lua_rawgeti(L, idx, (lua_Integer)i);
			json_t *v = to_json(e, lua_gettop(L), depth + 1);
			lua_pop(L, 1);
			if (!v) {
				json_decref(a);
				return NULL;
			}
			json_array_append_new(a, v);
		}
		return a;
	}
	json_t *o = json_object();
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		size_t klen;
		const char *k;
		char kbuf[64];
		if (lua_type(L, -2) == LUA_TSTRING) {
			k = lua_tolstring(L, -2, &klen);
		} else if (lua_type(L, -2) == LUA_TNUMBER) {
			if (lua_isinteger(L, -2))
				snprintf(kbuf, sizeof kbuf, "%lld", (long long)lua_tointeger(L, -2));
			else
				snprintf(kbuf, sizeof kbuf, "%.14g", (double)lua_tonumber(L, -2));
			k = kbuf;
			klen = strlen(kbuf);
		} else {
			snprintf(e->err, sizeof e->err, "json_encode: cannot encode a %s key",
				 luaL_typename(L, -2));
			lua_pop(L, 2);
			json_decref(o);
			return NULL;
		}
		json_t *v = to_json(e, lua_gettop(L), depth + 1);
		if (!v) {
			lua_pop(L, 2);
			json_decref(o);
			return NULL;
		}
		if (ctl_utf8_valid_prefix(k, klen) == klen) {
			/* the common case: no temporary key string */
			json_object_setn_new_nocheck(o, k, klen, v);
		} else {
			json_t *ks = string_value(k, klen);
			json_object_setn_new_nocheck(o, json_string_value(ks), json_string_length(ks), v);
			json_decref(ks);
		}
		lua_pop(L, 1);
	}
	return sorted_object(o);
}

/* Lua value at idx -> jansson value (objects with sorted keys); see lcontrol.h. */
json_t *ctl_to_json(struct ctl_enc *e, int idx, int depth)
{
	lua_State *L = e->L;
	if (depth > JSON_MAX_DEPTH) {
		snprintf(e->err, sizeof e->err, "json_encode: nesting deeper than %d (a cycle?)",
			 JSON_MAX_DEPTH);
		return NULL;
	}
	switch (lua_type(L, idx)) {
	case LUA_TNIL: return json_null();
	case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			return json_integer((json_int_t)lua_tointeger(L, idx));
		else {
			double d = (double)lua_tonumber(L, idx);
			return isfinite(d) ? json_real(d) : json_null();
		}
	case LUA_TSTRING: {
		size_t len;
		const char *s = lua_tolstring(L, idx, &len);
		return string_value(s, len);
	}
	case LUA_TTABLE: return table_to_json(e, idx, depth);
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(L, idx) == (void *)&null_sentinel)
			return json_null();
		/* fallthrough */
	default:
		snprintf(e->err, sizeof e->err, "json_encode: cannot encode a %s", luaL_typename(L, idx));
		return NULL;
	}
}

/* The dump buffer, kept between calls up to DUMP_KEEP bytes. */
#define DUMP_KEEP ((size_t)4 << 20)
static char *dump_buf;
static size_t dump_len, dump_cap;

/* Set while lstatus.c builds a tree in the arena and calls back into Lua:
 * a nested json_encode/json_decode would recycle that arena under it. */
int ctl_json_busy;

static int dump_cb(const char *buf, size_t size, void *data)
{
	(void)data;
	if (dump_cap - dump_len < size + 1) {
		size_t ncap = dump_cap ? dump_cap : 4096;
		while (ncap - dump_len < size + 1)
			ncap *= 2;
		char *nb = realloc(dump_buf, ncap);
		if (!nb)
			return -1;
		dump_buf = nb;
		dump_cap = ncap;
	}
	memcpy(dump_buf + dump_len, buf, size);
	dump_len += size;
	return 0;
}

/* Push the compact dump of v (objects in insertion order, reals with 12
 * significant digits), plus a newline when nl; see lcontrol.h. */
int ctl_push_dump(lua_State *L, json_t *v, int nl)
{
	dump_len = 0;
	/* 12 significant digits: monotonic times keep microseconds for 11 days
	 * and milliseconds for 30 years, in fewer bytes than %.17g. */
	if (json_dump_callback(v, dump_cb, NULL, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(12)) ||
	    (nl && dump_cb("\n", 1, NULL)))
		return -1;
	lua_pushlstring(L, dump_buf, dump_len);
	if (dump_cap > DUMP_KEEP) {
		free(dump_buf);
		dump_buf = NULL;
		dump_cap = 0;
	}
	return 0;
}

/* control.json_encode(v) -> compact JSON text (one line, sorted keys, reals
 * with 12 significant digits). */
static int l_json_encode(lua_State *L)
{
	struct ctl_enc e = { .L = L };
	luaL_checkany(L, 1);
	lua_settop(L, 1);
	if (ctl_json_busy)
		return luaL_error(L, "json_encode: called while a status reply is being built");
	/* The tree lives in an arena (jarena.h): no per-node malloc/free, no
	 * json_decref walk.  An arena left on by an error raised inside
	 * to_json (out of memory) is recycled here. */
	jarena_end();
	jarena_begin();
	json_t *v = to_json(&e, 1, 0);
	if (!v) {
		jarena_end();
		return luaL_error(L, "%s", e.err[0] ? e.err : "json_encode: out of memory");
	}
	/* keys were inserted sorted (sorted_object): no JSON_SORT_KEYS */
	if (ctl_push_dump(L, v, 0)) { /* (a raise in it leaves the arena to the next call) */
		jarena_end();
		return luaL_error(L, "json_encode: out of memory");
	}
	jarena_end();
	return 1;
}

/* ---- JSON -> Lua ---------------------------------------------------------- */

static void push_json(lua_State *L, json_t *v)
{
	luaL_checkstack(L, 3, "json_decode");
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *e;
		lua_createtable(L, 0, (int)json_object_size(v));
		json_object_foreach(v, k, e) {
			push_json(L, e);
			lua_setfield(L, -2, k);
		}
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *e;
		lua_createtable(L, (int)json_array_size(v), 0);
		json_array_foreach(v, i, e) {
			push_json(L, e);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		luaL_setmetatable(L, ARRAY_MT);
		break;
	}
	case JSON_STRING: lua_pushlstring(L, json_string_value(v), json_string_length(v)); break;
	case JSON_INTEGER: lua_pushinteger(L, (lua_Integer)json_integer_value(v)); break;
	case JSON_REAL: lua_pushnumber(L, json_real_value(v)); break;
	case JSON_TRUE: lua_pushboolean(L, 1); break;
	case JSON_FALSE: lua_pushboolean(L, 0); break;
	default: lua_pushlightuserdata(L, (void *)&null_sentinel); break;
	}
}

/* control.json_decode(s) -> value | nil, "line:col: message" (null -> control.null). */
static int l_json_decode(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	json_error_t err;
	if (ctl_json_busy)
		return luaL_error(L, "json_decode: called while a status reply is being built");
	jarena_end(); /* never decode into an arena an error left on */
	json_t *v = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	if (!v) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s (line %d, column %d)", err.text, err.line, err.column);
		return 2;
	}
	push_json(L, v);
	json_decref(v);
	return 1;
}

/* control.array(t?) -> t marked to encode as a JSON array even when empty. */
static int l_array(lua_State *L)
{
	if (lua_isnoneornil(L, 1))
		lua_newtable(L);
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	luaL_setmetatable(L, ARRAY_MT);
	return 1;
}

/* control.sanitize(s) -> s with each invalid UTF-8 byte replaced by U+FFFD. */
static int l_sanitize(lua_State *L)
{
	size_t len, n;
	const char *s = luaL_checklstring(L, 1, &len);
	if (ctl_utf8_valid_prefix(s, len) == len) {
		lua_settop(L, 1);
		return 1;
	}
	char *clean = ctl_utf8_sanitize(s, len, &n);
	if (!clean)
		return luaL_error(L, "sanitize: out of memory");
	lua_pushlstring(L, clean, n);
	free(clean);
	return 1;
}

static const luaL_Reg json_funcs[] = {
	{ "json_encode", l_json_encode },
	{ "json_decode", l_json_decode },
	{ "array", l_array },
	{ "sanitize", l_sanitize },
	{ NULL, NULL },
};

/* Add the JSON functions and `null` to the control table on top of the
 * stack; see lcontrol.h. */
void ctl_open_json(lua_State *L)
{
	if (luaL_newmetatable(L, ARRAY_MT)) {
		lua_pushliteral(L, "array");
		lua_setfield(L, -2, "__jsontype");
	}
	lua_pop(L, 1);
	luaL_setfuncs(L, json_funcs, 0);
	lua_pushlightuserdata(L, (void *)&null_sentinel);
	lua_setfield(L, -2, "null");
}
