/*
 * lstatus.c - `_fibersd`.control.status_encode: the reply line of a
 * whole-daemon `status` (every task), built in one C pass straight from the
 * supervisor's task records (lib/fibersd/supervisor.lua) into a jansson
 * tree in the arena (jarena.h) and dumped once.  The Lua path it replaces
 * made a status table, a snapshot and a node per task, and then walked all
 * of them again to encode: for 1000 tasks most of a request's time.
 *
 * The tree is the one introspect.task_node() describes (doc/daemon.md §7, keys
 * sorted as json_encode sorts them, so the bytes are the same).  With
 * `brief` (fibersctl asks for it when it renders the table for people) a
 * task node leaves out what that table never shows: `name` (= `path`),
 * `since`, `reason`, `enabled`, `forced`, `fibers`, `ready` unless it is
 * true in a state other than `ready`, and `children`/`commands` when
 * empty; `uptime` is rounded to milliseconds.  About half the bytes, for
 * the daemon to dump and for fibersctl to parse.  Scopes below a task
 * (rare) come from a Lua callback (introspect.scope_node), encoded as usual.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <lauxlib.h>

#include "jarena.h"
#include "lcontrol.h"

/* The field names read from records and snapshots, interned once (upvalues
 * of status_encode) so a read is one raw lookup with no string hashing. */
#define KEYS(X) \
	X(ACCT, "acct") X(CHILDREN, "children") X(COMMANDS, "commands") X(ENABLED, "enabled") \
	X(EXTRA_ERRORS, "extra_errors") X(FIBERS, "fibers") X(FILE, "file") X(FORCED, "forced") \
	X(ID, "id") X(LAST_ERROR, "last_error") X(LAST_EXIT, "last_exit") X(NAME, "name") \
	X(NEXT_START, "next_start") X(READY, "ready") X(REASON, "reason") X(RESTARTS, "restarts") \
	X(SCOPE, "scope") X(SINCE, "since") X(STATE, "state")
#define X(id, s) K_##id,
enum key { KEYS(X) NKEYS };
#undef X
#define X(id, s) s,
static const char *const key_names[NKEYS] = { KEYS(X) };
#undef X

/* One reply being built. */
struct sctx {
	lua_State *L;
	struct ctl_enc e;
	int brief;
	int now;        /* stack index of the turn time */
	int memory;     /* stack index of memory(acct) -> bytes */
	int subtree;    /* stack index of subtree(scope, name) -> children, commands, nproc */
	int keys;       /* stack index of the first interned key (enum key order) */
	lua_Integer procs; /* running Commands seen */
};

/* Pop the value on top into o[key] (nil: nothing); -1 on error. */
static int put(struct sctx *c, json_t *o, const char *key)
{
	lua_State *L = c->L;
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return 0;
	}
	json_t *v = ctl_to_json(&c->e, lua_gettop(L), 3);
	lua_pop(L, 1);
	if (!v)
		return -1;
	json_object_set_new_nocheck(o, key, v);
	return 0;
}

/* Push field k of the table at idx, raw (records keep no data in their
 * metatable: a missing field is nil without a second lookup); its type. */
static int field(struct sctx *c, int idx, enum key k)
{
	lua_pushvalue(c->L, c->keys + (int)k);
	return lua_rawget(c->L, idx);
}

/* Push record field k and pop it into o[k]; -1 on error. */
static int put_field(struct sctx *c, json_t *o, int rec, enum key k)
{
	field(c, rec, k);
	return put(c, o, key_names[k]);
}

/* Length of the table field k of the table at idx (0 when not a table). */
static size_t table_len(struct sctx *c, int idx, enum key k)
{
	size_t n = 0;
	if (field(c, idx, k) == LUA_TTABLE)
		n = (size_t)lua_rawlen(c->L, -1);
	lua_pop(c->L, 1);
	return n;
}

/* The scope part of a task node: call scope:snapshot() (pushed, its index
 * in *snap) and, when the scope has children or Commands, the subtree
 * callback (*kids and *cmds set).  -1 on error. */
static int scope_part(struct sctx *c, int rec, int sc, int *snap, json_t **kids, json_t **cmds)
{
	lua_State *L = c->L;
	lua_getfield(L, sc, "snapshot");
	lua_pushvalue(L, sc);
	lua_call(L, 1, 1);
	*snap = lua_gettop(L);
	if (!lua_istable(L, *snap)) {
		snprintf(c->e.err, sizeof c->e.err, "status: scope:snapshot() is not a table");
		return -1;
	}
	if (!table_len(c, *snap, K_CHILDREN) && !table_len(c, *snap, K_COMMANDS))
		return 0;
	lua_pushvalue(L, c->subtree);
	lua_pushvalue(L, sc);
	field(c, rec, K_NAME);
	lua_call(L, 2, 3);
	c->procs += lua_tointeger(L, -1);
	lua_pop(L, 1);
	*cmds = ctl_to_json(&c->e, lua_gettop(L), 2);
	lua_pop(L, 1);
	*kids = *cmds ? ctl_to_json(&c->e, lua_gettop(L), 2) : NULL;
	lua_pop(L, 1);
	return *kids ? 0 : -1;
}

/* The node of task record `rec` (see the header); NULL on error. */
static json_t *task_node(struct sctx *c, int rec)
{
	lua_State *L = c->L;
	int brief = c->brief, snap = 0;
	json_t *o = json_object(), *kids = NULL, *cmds = NULL;
	if (!o)
		return NULL;
	luaL_checkstack(L, 20, "status");
	if (field(c, rec, K_SCOPE) != LUA_TNIL && scope_part(c, rec, lua_gettop(L), &snap, &kids, &cmds))
		return NULL;
	/* keys in sorted order (dumps keep insertion order) */
	if (kids || !brief)
		json_object_set_new_nocheck(o, "children", kids ? kids : json_array());
	if (cmds || !brief)
		json_object_set_new_nocheck(o, "commands", cmds ? cmds : json_array());
	if (!brief && field(c, rec, K_ENABLED) == LUA_TBOOLEAN && !lua_toboolean(L, -1))
		json_object_set_new_nocheck(o, "enabled", json_false());
	field(c, rec, K_EXTRA_ERRORS); /* only when non-empty */
	if (lua_istable(L, -1) && luaL_len(L, -1) > 0 && put(c, o, "extra_errors"))
		return NULL;
	if (!brief) {
		if (snap)
			field(c, snap, K_FIBERS);
		else
			lua_pushinteger(L, 0);
		if (put(c, o, "fibers"))
			return NULL;
	}
	if (put_field(c, o, rec, K_FILE))
		return NULL;
	if (!brief && field(c, rec, K_FORCED) != LUA_TNIL && lua_toboolean(L, -1) && put(c, o, "forced"))
		return NULL;
	if (snap) {
		field(c, snap, K_ID);
		if (put(c, o, "id"))
			return NULL;
	}
	if (put_field(c, o, rec, K_LAST_ERROR) || put_field(c, o, rec, K_LAST_EXIT))
		return NULL;
	if (field(c, rec, K_ACCT) == LUA_TNIL) { /* no account: no memory */
		lua_pushinteger(L, 0);
	} else {
		lua_pushvalue(L, c->memory);
		lua_insert(L, -2);
		lua_call(L, 1, 1);
	}
	if (put(c, o, "memory"))
		return NULL;
	if (!brief && put_field(c, o, rec, K_NAME))
		return NULL;
	if (field(c, rec, K_NEXT_START) != LUA_TNIL && lua_toboolean(L, -1)) {
		/* math.max(0, next_start - now): integer 0 unless positive */
		lua_pushvalue(L, c->now);
		lua_arith(L, LUA_OPSUB);
		lua_pushinteger(L, 0);
		if (!lua_compare(L, -1, -2, LUA_OPLT))
			lua_replace(L, -2);
		else
			lua_pop(L, 1);
		if (put(c, o, "next_restart_in"))
			return NULL;
	}
	field(c, rec, K_NAME);
	if (put(c, o, "path"))
		return NULL;
	field(c, rec, K_STATE);
	int state = lua_gettop(L);
	field(c, rec, K_READY);
	if (!lua_toboolean(L, -1)) {
		if (!brief)
			json_object_set_new_nocheck(o, "ready", json_false());
	} else if (!brief || !lua_isstring(L, state) || strcmp(lua_tostring(L, state), "ready") != 0) {
		lua_pushvalue(L, -1);
		if (put(c, o, "ready"))
			return NULL;
	}
	if ((!brief && put_field(c, o, rec, K_REASON)) || put_field(c, o, rec, K_RESTARTS))
		return NULL;
	if (!brief && put_field(c, o, rec, K_SINCE))
		return NULL;
	lua_pushvalue(L, state);
	if (put(c, o, "state"))
		return NULL;
	lua_pushvalue(L, c->now);
	field(c, rec, K_SINCE);
	lua_arith(L, LUA_OPSUB);
	if (brief && lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
		/* milliseconds are all the table shows (and 12 digits cost) */
		lua_Number up = lua_tonumber(L, -1);
		lua_pop(L, 1);
		lua_pushnumber(L, floor(up * 1000 + 0.5) / 1000);
	}
	return put(c, o, "uptime") ? NULL : o;
}

/* Fill the tasks array: one node per name of the names array that has a
 * record in the tasks map.  -1 on error. */
static int build_tasks(struct sctx *c, json_t *arr, int names, int tasks)
{
	lua_State *L = c->L;
	lua_Integer n = (lua_Integer)lua_rawlen(L, names);
	int top = lua_gettop(L);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, names, i);
		if (lua_rawget(L, tasks) == LUA_TTABLE) {
			json_t *node = task_node(c, lua_gettop(L));
			if (!node)
				return -1;
			json_array_append_new(arr, node);
		}
		lua_settop(L, top);
	}
	return 0;
}

/* The protected part of status_encode (arena on, ctl_json_busy set):
 * build, fill, dump and push the line.  Raises on error. */
static int encode_protected(lua_State *L)
{
	struct sctx *c = lua_touserdata(L, 6);
	json_t *msg = ctl_to_json(&c->e, 1, 0);
	json_t *result = json_object_get(msg, "result");
	json_t *tasks = json_object_get(result, "tasks");
	json_t *procs = json_object_get(json_object_get(result, "counts"), "processes");
	if (!msg)
		return luaL_error(L, "%s", c->e.err[0] ? c->e.err : "status_encode: out of memory");
	if (!json_is_array(tasks) || json_array_size(tasks) != 0)
		return luaL_error(L, "status_encode: msg.result.tasks must be an empty array");
	if (!json_is_integer(procs))
		return luaL_error(L, "status_encode: msg.result.counts.processes must be an integer");
	if (build_tasks(c, tasks, 2, 3))
		return luaL_error(L, "%s", c->e.err[0] ? c->e.err : "status_encode: out of memory");
	json_integer_set(procs, json_integer_value(procs) + c->procs);
	if (ctl_push_dump(L, msg, 1))
		return luaL_error(L, "status_encode: out of memory");
	return 1;
}

/* control.status_encode(msg, names, tasks, now, opts) -> the reply line
 * (with its newline).  msg is {id, result} as json_encode takes it; its
 * result.tasks must be an empty array and result.counts.processes an
 * integer: both are filled here.  names: sorted task names; tasks: name ->
 * supervisor record; now: the turn time; opts: { brief = bool,
 * memory = fn(acct) -> bytes, subtree = fn(scope, name) -> children,
 * commands, running processes }. */
static int l_status_encode(lua_State *L)
{
	struct sctx c = { .L = L, .e = { .L = L } };
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checktype(L, 2, LUA_TTABLE);
	luaL_checktype(L, 3, LUA_TTABLE);
	luaL_checknumber(L, 4);
	luaL_checktype(L, 5, LUA_TTABLE);
	lua_settop(L, 5);
	if (ctl_json_busy)
		return luaL_error(L, "status_encode: re-entered");
	lua_getfield(L, 5, "memory");
	luaL_argcheck(L, lua_isfunction(L, -1), 5, "opts.memory must be a function");
	lua_getfield(L, 5, "subtree");
	luaL_argcheck(L, lua_isfunction(L, -1), 5, "opts.subtree must be a function");
	lua_getfield(L, 5, "brief");
	c.brief = lua_toboolean(L, -1);
	lua_pop(L, 3);
	/* the protected call sees: 1-5 the arguments, 6 the context,
	 * 7 memory, 8 subtree, 9... the interned keys */
	c.now = 4;
	c.memory = 7;
	c.subtree = 8;
	c.keys = 9;
	luaL_checkstack(L, NKEYS + 8, "status_encode");
	lua_pushcfunction(L, encode_protected);
	lua_insert(L, 1);
	lua_pushlightuserdata(L, &c);
	lua_getfield(L, 6, "memory");
	lua_getfield(L, 6, "subtree");
	for (int k = 0; k < NKEYS; k++)
		lua_pushvalue(L, lua_upvalueindex(k + 1));
	jarena_end(); /* an arena an error left on */
	jarena_begin();
	ctl_json_busy = 1;
	int rc = lua_pcall(L, 8 + NKEYS, 1, 0);
	ctl_json_busy = 0;
	jarena_end();
	if (rc != LUA_OK)
		return lua_error(L);
	return 1;
}

/* Add status_encode to the `control` table on top of the stack; see lcontrol.h. */
void ctl_open_status(lua_State *L)
{
	for (int k = 0; k < NKEYS; k++)
		lua_pushstring(L, key_names[k]);
	lua_pushcclosure(L, l_status_encode, NKEYS);
	lua_setfield(L, -2, "status_encode");
}
