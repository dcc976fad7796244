/*
 * lperform.c - fibers.perform (doc/library.md §2, §4) in C for Lua 5.3+, and
 * op.choice and the C try of sleep_op (every version).
 *
 * The common performs - a primitive op or a flat choice, by a fiber of a
 * scope that is ok - are done here exactly as op.lua's perform_in does
 * them: try each leaf from a random start (xorshift in struct sched.rng),
 * the first ready one wins and its wrap (leaf.wf) gets the values; when
 * none is ready, block here as op.lua's prim_block / flat_block do and
 * yield from this C function (woken_k continues).  Leaf
 * tries that are the C try of a channel's get op or of sleep_op are done
 * inline; other tries are called.  Everything else - a fiber without a
 * scope, a scope that is not ok, an op that needs compiling - goes to the
 * general Lua form, so cancellation and errors are exactly its own.
 * What may block (wraps, the block halves, the general form) is called
 * with a continuation.
 *
 * On Lua 5.4 a fiber whose record says its scope is still ok (lfrec.c,
 * ok_epoch) is not checked again; its scope is fetched only to block.
 *
 * op.choice is C too (every version): two primitive arms make a flat
 * choice here, hash-consed in a small cache (see choice_slot); the rest
 * is the Lua form.
 *
 * The closures made here have the upvalues of every sched:_fast()
 * function (1 the scheduler - lchan.c's helpers read it -, 2 Susp, 3
 * CANCEL), then 4 Op, 5 the general (Lua) form; for choice 6 the keys
 * table (UV_KEYS) and 7 its cache; for perform 6 op.lua's TASK_ERR
 * token and 7 the keys table.
 */
#include "lbind.h"
#include "lsched.h"

/* try(op) of sleep_op(dt): ready once performed when dt <= 0. */
int fl_sleep_try_dt(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_pushliteral(L, "a");
	lua_rawget(L, 1);
	if (lua_type(L, -1) != LUA_TNUMBER)
		return luaL_error(L, "sleep_op: duration is not a number");
	lua_pushboolean(L, lua_tonumber(L, -1) <= 0);
	return 1;
}

#define UP_SCHED   lua_upvalueindex(1)
#define UP_OP      lua_upvalueindex(4)
#define UP_GENERAL lua_upvalueindex(5)
#define UP_CANCEL  lua_upvalueindex(3)
#define UP_TASKERR lua_upvalueindex(6)
#define UP_CKEYS   lua_upvalueindex(6)  /* choice: the keys table */
#define UP_CCACHE  lua_upvalueindex(7)  /* choice: its cache (below) */
#define UP_PKEYS   lua_upvalueindex(7)  /* perform: the keys table */

enum { PRIM = 1, CHOICE = 2 };          /* op.lua's kinds (op.k) */

/* True if the value at idx is an op (metatable Op). */
static int is_op(lua_State *L, int idx)
{
	if (!lua_getmetatable(L, idx))
		return 0;
	int ok = lua_rawequal(L, -1, UP_OP);
	lua_pop(L, 1);
	return ok;
}

/* True if the op at idx is a primitive (kt: the keys). */
static int is_prim(lua_State *L, int kt, int idx)
{
	int ok = fl_getk(L, idx, kt, K_K) == LUA_TNUMBER && lua_tointeger(L, -1) == PRIM;
	lua_pop(L, 1);
	return ok;
}

/* The choice cache: the two-primitive-arm choices made last, hash-consed
 * (ops are immutable, doc/library.md §4, so choice(a, b) may return the
 * choice it made before for the same a and b).  Direct-mapped by the
 * arms' addresses: slot i holds a, b, choice at 3i+1..3i+3 of a table
 * with weak values, so it keeps nothing alive and stays CHOICE_SLOTS
 * entries at most.  A select loop - perform(choice(ch:get_op(),
 * sleep_op(t))), whose arms are themselves kept (the channel's get op,
 * sleep.lua's interned sleep ops) - then allocates nothing. */
#define CHOICE_SLOTS 64

static int choice_slot(lua_State *L)
{
	uintptr_t a = (uintptr_t)lua_topointer(L, 1), b = (uintptr_t)lua_topointer(L, 2);
	uintptr_t h = (a >> 4) * 31u + (b >> 4);
	return (int)((h ^ (h >> 7)) % CHOICE_SLOTS) * 3;
}

/* Push the cached choice of the arms at 1 and 2 and return 1, or 0. */
static int cached_choice(lua_State *L, int slot)
{
	lua_rawgeti(L, UP_CCACHE, slot + 1);
	lua_rawgeti(L, UP_CCACHE, slot + 2);
	int hit = lua_rawequal(L, -2, 1) && lua_rawequal(L, -1, 2);
	lua_pop(L, 2);
	if (hit && lua_rawgeti(L, UP_CCACHE, slot + 3) == LUA_TTABLE)
		return 1;
	if (hit)
		lua_pop(L, 1);
	return 0;
}

/* choice(...): op.choice.  Two primitive arms make a flat choice
 * { a, b, k = CHOICE, flat = true } here (or find it in the cache); the
 * rest is the Lua form. */
static int choice(lua_State *L)
{
	int n = lua_gettop(L), slot = 0;
	/* (a hit needs no check: the cache holds primitive ops only) */
	if (n == 2 && cached_choice(L, slot = choice_slot(L)))
		return 1;
	for (int i = 1; i <= n; i++)
		if (!is_op(L, i))
			return luaL_error(L, "choice: expected op, got %s", luaL_typename(L, i));
	if (n == 2 && is_prim(L, UP_CKEYS, 1) && is_prim(L, UP_CKEYS, 2)) {
		lua_createtable(L, 2, 2);
		lua_pushvalue(L, 1);
		lua_rawseti(L, 3, 1);
		lua_pushvalue(L, 2);
		lua_rawseti(L, 3, 2);
		lua_pushinteger(L, CHOICE);
		fl_setk(L, 3, UP_CKEYS, K_K);
		lua_pushboolean(L, 1);
		fl_setk(L, 3, UP_CKEYS, K_FLAT);
		lua_pushvalue(L, UP_OP);
		lua_setmetatable(L, 3);
		for (int i = 1; i <= 3; i++) {
			lua_pushvalue(L, i);
			lua_rawseti(L, UP_CCACHE, slot + i);
		}
		return 1;
	}
	lua_pushvalue(L, UP_GENERAL);
	lua_insert(L, 1);
	lua_call(L, n, 1);
	return 1;
}

int fl_make_choice(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_settop(L, 2);
	for (int i = 1; i <= 3; i++)
		lua_pushvalue(L, lua_upvalueindex(i));
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 2);
	lua_getiuservalue(L, lua_upvalueindex(1), UV_KEYS);
	/* the choice cache: its array part, sized here, is never resized
	 * (only its slots are written) */
	lua_createtable(L, 3 * CHOICE_SLOTS, 0);
	lua_createtable(L, 0, 1);
	lua_pushliteral(L, "v");
	lua_setfield(L, -2, "__mode");
	lua_setmetatable(L, -2);
	lua_pushcclosure(L, choice, 7);
	return 1;
}

#if LUA_VERSION_NUM >= 503

int fl_ret_k(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	return lua_gettop(L) - (int)ctx;
}

int fl_call_ret(lua_State *L, int nargs, int base)
{
	lua_callk(L, nargs, LUA_MULTRET, base, fl_ret_k);
	return fl_ret_k(L, LUA_OK, base);
}

/* Try the leaf at lf (kt: the keys): pushes what try(leaf) returns -
 * ready, values... - and returns how many. */
static int try_leaf(lua_State *L, int kt, int lf)
{
	int base = lua_gettop(L);
	fl_getk(L, lf, kt, K_TRY);
	lua_CFunction cf = lua_tocfunction(L, -1);
	if (cf == fl_op_get_try) {
		lua_pop(L, 1);
		fl_getk(L, lf, kt, K_CH);
		int ci = lua_gettop(L);
		if (fl_is_chan(L, ci)) {
			if (fl_chan_try_get(L, ci)) {   /* the value above ci */
				lua_pushboolean(L, 1);
				lua_replace(L, ci);
				return 2;
			}
			lua_pop(L, 1);
			lua_pushboolean(L, 0);
			return 1;
		}
		lua_pop(L, 1);
		fl_getk(L, lf, kt, K_TRY);      /* (raises as it would) */
	} else if (cf == fl_sleep_try_dt) {
		lua_pop(L, 1);
		if (fl_getk(L, lf, kt, K_A) == LUA_TNUMBER) {
			int ready = lua_tonumber(L, -1) <= 0;
			lua_pop(L, 1);
			lua_pushboolean(L, ready);
			return 1;
		}
		lua_pop(L, 1);
		fl_getk(L, lf, kt, K_TRY);
	}
	lua_pushvalue(L, lf);
	lua_call(L, 1, LUA_MULTRET);
	return lua_gettop(L) - base;
}

/* The leaf at lf won with its values from slot first up: return them,
 * through its wrap if it has one. */
static int won_values(lua_State *L, int kt, int lf, int first)
{
	if (fl_getk(L, lf, kt, K_WF) == LUA_TNIL) {
		lua_pop(L, 1);
		return lua_gettop(L) - first + 1;
	}
	lua_insert(L, first);
	return fl_call_ret(L, lua_gettop(L) - first, first - 1);
}

/* The leaf at lf won with ready at slot first and its values above. */
static int won(lua_State *L, int kt, int lf, int first)
{
	lua_remove(L, first);
	return won_values(L, kt, lf, first);
}

/* Call the general form f(op) (slot 1). */
static int general(lua_State *L)
{
	lua_settop(L, 1);
	lua_pushvalue(L, UP_GENERAL);
	lua_insert(L, 1);
	return fl_call_ret(L, 1, 0);
}

/* Run and clear the cleanups of the suspension at s, as op.lua's
 * run_cleanups: s[3] = { f, a, b, ..., n = 3k } -> f(a, b) each. */
static void run_cleanups(lua_State *L, int s)
{
	if (lua_rawgeti(L, s, 3) != LUA_TTABLE) {
		lua_pop(L, 1);
		return;
	}
	int c = lua_gettop(L);
	lua_pushnil(L);
	lua_rawseti(L, s, 3);
	lua_pushliteral(L, "n");
	lua_rawget(L, c);
	lua_Integer n = lua_tointeger(L, -1);
	lua_pop(L, 1);
	for (lua_Integer i = 1; i <= n; i += 3) {
		lua_rawgeti(L, c, i);
		lua_rawgeti(L, c, i + 1);
		lua_rawgeti(L, c, i + 2);
		lua_call(L, 2, 0);
	}
	lua_pop(L, 1);
}

/* Continuation of a perform that blocked (op.lua's prim_after_block /
 * flat_after_block): slots 1 op, 2 keys, 3 scope, 4 suspension, then the
 * resume values - token, values... */
static int woken_k(lua_State *L, int status, lua_KContext flat)
{
	(void)status;
	if (fl_waiting(L, 4)) {
		/* resumed by something else than a completion (a raw
		 * fiber:resume): end the wait, its registrations go stale */
		lua_pushboolean(L, 0);
		lua_rawseti(L, 4, 2);
		run_cleanups(L, 4);
		return luaL_error(L, "perform: unexpected wake-up token %s", luaL_tolstring(L, 5, NULL));
	}
	run_cleanups(L, 4);
	if (lua_rawequal(L, 5, UP_CANCEL)) {
		lua_getfield(L, 3, "_raise");
		lua_pushvalue(L, 3);
		lua_call(L, 1, 0);
		return luaL_error(L, "perform: the scope's _raise returned");
	}
	if (lua_rawequal(L, 5, UP_TASKERR)) {
		lua_settop(L, 6);
		return lua_error(L);            /* error((...), 0) */
	}
	if (flat) {
		if (!lua_isinteger(L, 5) || lua_rawgeti(L, 1, lua_tointeger(L, 5)) != LUA_TTABLE)
			return luaL_error(L, "perform: unexpected wake-up token");
	} else {
		lua_pushvalue(L, 1);
	}
	lua_replace(L, 5);                      /* 5: the leaf that won */
	return won_values(L, 2, 5, 6);
}

/* Nothing was ready: one suspension registered with the op (flat: with
 * every arm, in order, until one completes it) and, still waiting, in
 * the scope's cancel queue; then yield (woken_k continues).  Slots: 1 op,
 * 2 keys, 3 scope (nil: fetched here).  The fiber parks in this C
 * frame: no Lua block frame and no coroutine.yield frame above it
 * (parked fibers stay small). */
static int block(lua_State *L, int flat)
{
	lua_settop(L, 3);
	if (lua_isnil(L, 3)) {  /* a ready record: the scope not fetched yet */
		lua_settop(L, 2);
		if (!fl_push_ok_scope(L, UP_SCHED, 2))
			return general(L);
	}
	if (!fl_can_block(L, UP_SCHED, 2))      /* the general form raises */
		return general(L);
	fl_push_current(L, UP_SCHED);           /* 4: the fiber (made if lazy) */
	fl_new_susp(L, UP_SCHED, 4);            /* 5 */
	lua_replace(L, 4);                      /* 4: the suspension */
	lua_Integer n = flat ? (lua_Integer)lua_rawlen(L, 1) : 1;
	for (lua_Integer i = 1; i <= n; i++) {
		if (flat)
			lua_rawgeti(L, 1, i);   /* 5: the leaf */
		else
			lua_pushvalue(L, 1);
		fl_getk(L, 5, 2, K_BLOCK);
		lua_pushvalue(L, 4);
		lua_pushinteger(L, i);
		lua_pushvalue(L, 5);
		lua_call(L, 3, 0);              /* leaf.block(s, i, leaf) */
		lua_settop(L, 4);
		if (!fl_waiting(L, 4))
			break;
	}
	if (fl_waiting(L, 4))
		fl_cancel_waiter(L, 2, 3, 4, 0);
	return lua_yieldk(L, 0, flat, woken_k);
}

static unsigned next_rand(struct sched *s)
{
	unsigned x = s->rng ? s->rng : 0x9e3779b9u;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return s->rng = x;
}

/* perform(op): fibers.perform. */
static int perform(lua_State *L)
{
	lua_settop(L, 1);
	struct sched *s = lua_touserdata(L, UP_SCHED);
#ifdef FL_FREC
	/* a record whose scope check holds: a fiber of an ok scope */
	int ready = fl_frec_ready(L, s) != NULL;
#else
	int ready = 0;
#endif
	if (!ready && fl_push_cur(L, UP_SCHED) == LUA_TNIL)
		return luaL_error(L, "fibers.perform: must be called from inside a fiber");
	if (!is_op(L, 1))
		return luaL_error(L, "perform: expected op, got %s", luaL_typename(L, 1));
	lua_settop(L, 1);
	lua_pushvalue(L, UP_PKEYS);                     /* 2 */
	if (ready) {
		lua_pushnil(L);         /* 3: the scope, fetched if it blocks */
	} else {
		if (!fl_push_ok_scope(L, UP_SCHED, 2))  /* 3: the scope */
			return general(L);
#ifdef FL_FREC
		fl_frec_note_ok(L, s);  /* (the next perform needs no check) */
#endif
	}
	int k = fl_getk(L, 1, 2, K_K) == LUA_TNUMBER ? (int)lua_tointeger(L, -1) : 0;
	lua_pop(L, 1);
	if (k == PRIM) {
		if (try_leaf(L, 2, 1) > 0 && lua_toboolean(L, 4))
			return won(L, 2, 1, 4);
		return block(L, 0);
	}
	int flat = k == CHOICE && fl_getk(L, 1, 2, K_FLAT) == LUA_TBOOLEAN && lua_toboolean(L, -1);
	lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
	if (!flat || n < 1)
		return general(L);
	lua_settop(L, 3);
	lua_Integer start = (lua_Integer)(next_rand(s) % (unsigned)n);
	for (lua_Integer j = 0; j < n; j++) {
		lua_rawgeti(L, 1, (start + j) % n + 1);  /* 4: the leaf */
		if (try_leaf(L, 2, 4) > 0 && lua_toboolean(L, 5))
			return won(L, 2, 4, 5);
		lua_settop(L, 3);
	}
	return block(L, 1);
}

int fl_make_perform(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	luaL_checkany(L, 3);
	lua_settop(L, 3);
	for (int i = 1; i <= 3; i++)
		lua_pushvalue(L, lua_upvalueindex(i));
	for (int i = 1; i <= 3; i++)
		lua_pushvalue(L, i);
	lua_getiuservalue(L, lua_upvalueindex(1), UV_KEYS);
	lua_pushcclosure(L, perform, 7);
	return 1;
}

#endif
