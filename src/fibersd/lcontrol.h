/*
 * lcontrol.h - the `control` sub-module of `_fibersd` for lib/fibersd/
 * control.lua: peer credentials and roles, signal names and the protocol
 * constants (lcontrol.c), JSON through jansson and UTF-8 sanitising
 * (ljson.c), the whole-daemon status reply (lstatus.c).
 */
#ifndef FIBERSD_LCONTROL_H
#define FIBERSD_LCONTROL_H

#include <jansson.h>
#include <lua.h>
#include <stddef.h>

/* Encoder state of ctl_to_json: errors are collected here and raised once
 * the partial jansson tree is dropped (a longjmp past it would leak). */
struct ctl_enc {
	lua_State *L;
	char err[128];
};

/* The Lua value at idx as a jansson value (tables -> objects with keys in
 * sorted order, or arrays; strings made valid UTF-8; nil and control.null
 * -> null), nested depth levels deep already.  NULL on error (e->err says
 * why, empty when out of memory).  Use inside an arena (jarena.h). */
json_t *ctl_to_json(struct ctl_enc *e, int idx, int depth);

/* Push the compact one-line dump of v (objects in insertion order, reals
 * with 12 significant digits), with a trailing newline when nl.  Returns 0,
 * or -1 when out of memory (nothing pushed). */
int ctl_push_dump(lua_State *L, json_t *v, int nl);

/* Non-zero while lstatus.c builds a reply (json_encode/decode then raise). */
extern int ctl_json_busy;

/* Add json_encode, json_decode, array, sanitize and null to the `control`
 * table on top of the stack (ljson.c). */
void ctl_open_json(lua_State *L);

/* Add status_encode to the `control` table on top of the stack (lstatus.c). */
void ctl_open_status(lua_State *L);

/* Push the `control` sub-module table (an entry of lhost.c's subs[]). */
int fd_open_control(lua_State *L);

/* Copy src into a freshly malloc'd valid UTF-8 string (each invalid byte
 * becomes U+FFFD); *outlen gets its length.  NULL when out of memory. */
char *ctl_utf8_sanitize(const char *src, size_t len, size_t *outlen);

/* Length of the valid UTF-8 prefix of s (== len when all of it is valid). */
size_t ctl_utf8_valid_prefix(const char *s, size_t len);

#endif
