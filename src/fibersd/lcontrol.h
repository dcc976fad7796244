/*
 * lcontrol.h - the `control` sub-module of `_fibersd` (src/fibersd/lcontrol.c):
 * JSON through jansson, UTF-8 sanitising, peer credentials and roles, signal
 * names, and the protocol constants of protocol.h, for lib/fibersd/control.lua.
 */
#ifndef FIBERSD_LCONTROL_H
#define FIBERSD_LCONTROL_H

#include <lua.h>
#include <stddef.h>

/* Push the `control` sub-module table (an entry of lhost.c's subs[]). */
int fd_open_control(lua_State *L);

/* Copy src into a freshly malloc'd valid UTF-8 string (each invalid byte
 * becomes U+FFFD); *outlen gets its length.  NULL when out of memory. */
char *ctl_utf8_sanitize(const char *src, size_t len, size_t *outlen);

/* Length of the valid UTF-8 prefix of s (== len when all of it is valid). */
size_t ctl_utf8_valid_prefix(const char *s, size_t len);

#endif
