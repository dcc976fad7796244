/*
 * lbind.h - shared declarations of the Lua bindings of the C core.
 *
 * The bindings follow Lua's own libraries (loslib.c, liolib.c): luaL_Reg
 * method tables, userdata with __gc/__close, misuse raises, OS failure
 * returns nil, message, errno.
 *
 * `require 'fibers.core'` returns one table whose fields are the private
 * sub-modules (core.sched, core.stream, core.proc, core.sys ...).  Each
 * binding file provides one opener `int fl_open_<name>(lua_State *L)` that
 * pushes its sub-module table; lcore.c lists them.
 */
#ifndef FIBERS_LBIND_H
#define FIBERS_LBIND_H

#include <stdint.h>

#include "compat.h"        /* lua.h, lauxlib.h + bridges to Lua 5.1-5.3/LuaJIT */

/* The loader of `fibers.core` (also preloaded into fibersd). */
int luaopen_fibers_core(lua_State *L);
/* Register `fibers.core` in package.preload of L (for embedding hosts). */
void fl_preload(lua_State *L);

/*
 * Memory accounting a host may install for the C buffers of streams
 * (fibersd charges them to the task they work for): a light userdata in
 * the registry under FL_ACCT_KEY pointing to an fl_acct_hook that lives as
 * long as the state.  A new stream asks owner() whom it works for (0:
 * nobody, not accounted); its buffers then report every change of their
 * capacity to charge() (see buf_acct_t in src/core/buf.h).  Without a hook
 * streams are not accounted.
 */
#define FL_ACCT_KEY "fibers.core.acct"
typedef struct fl_acct_hook {
	unsigned long long (*owner)(void *ud);
	int (*charge)(void *ud, uint64_t owner, long long delta);
	void *ud;
} fl_acct_hook_t;

/* Push nil, strerror(err), err and return 3 (the liolib failure shape). */
int fl_pusherr(lua_State *L, int err);

/* Sub-module openers; each pushes a table. */
int fl_open_sys(lua_State *L);
int fl_open_sched(lua_State *L);
int fl_open_signal(lua_State *L);
int fl_open_stream(lua_State *L);
int fl_open_file(lua_State *L);
int fl_open_socket(lua_State *L);
int fl_open_proc(lua_State *L);
int fl_open_cgroup(lua_State *L);

#endif
