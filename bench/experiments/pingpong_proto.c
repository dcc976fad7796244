/*
 * bench/experiments/pingpong_proto.c - an experiment, not part of the
 * library or the build: how fast can a ping-pong hand-off be when the
 * state a message touches lives in C structs instead of Lua tables
 * (the redesign bench/README.md describes for the ping-pong row)?
 *
 * A minimal runtime for Lua 5.4: fibers are bare coroutines, the run
 * queue is a C ring of lua_State pointers (each fiber anchored once, in
 * a Lua table, while it lives), a channel is a userdata holding at most
 * one waiting getter or putter; a value moves straight from one
 * coroutine's stack to the other's.  No scopes, no cancellation, no
 * suspensions, no choice: it is the floor for that design, not a
 * replacement for anything.
 *
 *   cc -O2 -shared -fPIC -I/usr/include/lua5.4 \
 *      bench/experiments/pingpong_proto.c -o pingpong_proto.so
 *   LUA_CPATH=./?.so lua5.4 bench/experiments/pingpong_proto.lua
 */
#include <stdlib.h>

#include <lua.h>
#include <lauxlib.h>

#define QCAP 1024

struct entry {
	lua_State *co;
	int nargs;
};

static struct entry ring[QCAP];
static unsigned qh, qt;

static void enqueue(lua_State *L, lua_State *co, int nargs)
{
	if (qt - qh >= QCAP)
		luaL_error(L, "proto: run queue full");
	ring[qt++ % QCAP] = (struct entry){ co, nargs };
}

struct chan {
	lua_State *getter, *putter;     /* at most one waits */
};

/* Continuation: return what the resume passed. */
static int pass_k(lua_State *L, int status, lua_KContext base)
{
	(void)status;
	return lua_gettop(L) - (int)base;
}

/* ch:get() */
static int c_get(lua_State *L)
{
	struct chan *c = luaL_checkudata(L, 1, "proto.chan");
	if (c->putter) {
		lua_State *p = c->putter;
		c->putter = NULL;
		lua_xmove(p, L, 1);             /* the value on the putter's stack */
		enqueue(L, p, 0);
		return 1;
	}
	c->getter = L;
	return lua_yieldk(L, 0, lua_gettop(L), pass_k);
}

/* ch:put(v) */
static int c_put(lua_State *L)
{
	struct chan *c = luaL_checkudata(L, 1, "proto.chan");
	lua_settop(L, 2);
	if (c->getter) {
		lua_State *g = c->getter;
		c->getter = NULL;
		lua_xmove(L, g, 1);
		enqueue(L, g, 1);
		return 0;
	}
	c->putter = L;                  /* the value stays on top of our stack */
	return lua_yieldk(L, 0, 1, pass_k);
}

static int c_chan(lua_State *L)
{
	struct chan *c = lua_newuserdatauv(L, sizeof *c, 0);
	c->getter = c->putter = NULL;
	luaL_setmetatable(L, "proto.chan");
	return 1;
}

/* spawn(fn): a fiber, anchored in the upvalue table until it returns. */
static int c_spawn(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TFUNCTION);
	lua_State *co = lua_newthread(L);
	lua_pushvalue(L, 1);
	lua_xmove(L, co, 1);
	lua_pushboolean(L, 1);
	lua_rawset(L, lua_upvalueindex(1));     /* anchor[co] = true */
	enqueue(L, co, 0);
	return 0;
}

/* run(): resume queued fibers until none is left. */
static int c_run(lua_State *L)
{
	while (qh != qt) {
		struct entry e = ring[qh++ % QCAP];
		int nres;
		int st = lua_resume(e.co, L, e.nargs, &nres);
		if (st == LUA_YIELD) {
			continue;       /* parked in a channel; nothing yielded */
		}
		if (st != LUA_OK) {
			lua_xmove(e.co, L, 1);
			return lua_error(L);
		}
		lua_pushthread(e.co);
		lua_xmove(e.co, L, 1);
		lua_pushnil(L);
		lua_rawset(L, lua_upvalueindex(1));
	}
	return 0;
}

int luaopen_pingpong_proto(lua_State *L)
{
	luaL_newmetatable(L, "proto.chan");
	lua_newtable(L);
	lua_pushcfunction(L, c_get);
	lua_setfield(L, -2, "get");
	lua_pushcfunction(L, c_put);
	lua_setfield(L, -2, "put");
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	lua_newtable(L);                        /* the module */
	lua_newtable(L);                        /* the anchor table */
	lua_pushvalue(L, -1);
	lua_pushcclosure(L, c_spawn, 1);
	lua_setfield(L, -3, "spawn");
	lua_pushcclosure(L, c_run, 1);
	lua_setfield(L, -2, "run");
	lua_pushcfunction(L, c_chan);
	lua_setfield(L, -2, "chan");
	return 1;
}
