/*
 * task.c - per-task Lua memory accounting and the runaway guard
 * (doc/daemon.md §3 "Runaway guard", "Memory limit").
 *
 * Accounting: fibersd's lua_State uses mem_alloc, which puts an 8-byte
 * header in front of every block naming its owner (task id; 0 = the
 * daemon), so a free - by the GC, in any fiber - credits the right task.
 * A growing allocation moves the block to the current owner (the task whose
 * fiber runs, set by enter/leave); shrinks never fail and keep the owner
 * (Lua assumes they cannot fail).  8 bytes keep Lua's alignment
 * (LUAI_MAXALIGN is 8 on the platforms we build for).
 *
 * Limit: past its limit an allocation of a task fails, Lua runs an
 * emergency GC and retries once; if the retry fails too (or Lua raised
 * without retrying - noticed at the next allocation, hook tick or leave)
 * the task is doomed with "not enough memory".  A failure rescued by the
 * emergency collection does not doom.
 *
 * Guard: enter(fiber) arms a count hook on fiber.co (task fibers only,
 * never tag nil); a fiber running longer than max_slice is doomed with
 * "task exceeded max_slice of <N>s without yielding".  Once its task is
 * doomed, the error is raised again at every hook tick - then every
 * instruction - until the fiber yields or ends, so a pcall in the task
 * cannot swallow it (a fixed period could keep landing inside the pcall).  Coroutines a
 * task creates inherit the hook (lua_newthread copies it); a hook firing
 * outside a task slice removes itself.  Code of the library itself (chunks
 * whose source starts with a prefix given to mem_guard_exempt: the fibers
 * and fibersd modules) is never interrupted: the error is raised at the
 * next instruction of task code instead, so the scope's bookkeeping after
 * a body failed (fault record, fiber count, join) always runs to the end.
 *
 * C buffers: the streams a task creates (pipes of its commands, files,
 * sockets) charge their C buffers to the task too, through the hook of
 * fibers.core (FL_ACCT_KEY, installed by mem_acct_install): the charge is
 * the buffers' capacity, taken before a buffer grows and given back when it
 * shrinks or is freed.  A growth past the limit is refused (the read fails
 * with ENOMEM) and dooms the task.  A stream names its task by id and slot
 * generation, so a stream that outlives its task never charges the task
 * that reuses the slot (it charges the daemon instead, both ways).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fibersd.h"
#include "lbind.h"

#define HDR 8           /* header bytes in front of each block */
#define HOOK_COUNT 1000 /* instructions between guard checks */

enum { SLOT_FREE, SLOT_LIVE, SLOT_DEAD };

struct mtask {
	size_t used, limit;
	int state;
	uint32_t gen; /* bumped when the slot gets a new task */
	/* why the task is doomed, "" while it is not.  Kept inline (never a
	 * pointer to it: task_new may realloc the array of slots). */
	char doom[80];
};

struct mem {
	struct mtask *t; /* t[0] is the daemon */
	uint32_t n, cap;
	uint32_t cur;    /* current owner */
	size_t total;
	/* the last failed growth, waiting to see whether Lua retries it */
	bool fail_pending;
	uint32_t fail_owner;
	void *fail_ptr;
	size_t fail_osize, fail_nsize;
	/* the guard */
	bool in_task, raise_slice;
	double max_slice, slice_start;
	/* chunk-source prefixes of library code the doom error never hits */
	char *exempt[8];
	size_t nexempt;
	fl_acct_hook_t acct; /* C buffers of streams (FL_ACCT_KEY) */
};

/* Create the accounting state; pass it as `ud` of lua_newstate. */
void *mem_state_new(void)
{
	struct mem *m = calloc(1, sizeof *m);
	if (m == NULL)
		return NULL;
	m->cap = 16;
	m->t = calloc(m->cap, sizeof *m->t);
	if (m->t == NULL) {
		free(m);
		return NULL;
	}
	m->n = 1;
	m->t[0].state = SLOT_LIVE;
	return m;
}

/* Free the accounting state after lua_close. */
void mem_state_free(void *ud)
{
	struct mem *m = ud;
	if (m) {
		for (size_t i = 0; i < m->nexempt; i++)
			free(m->exempt[i]);
		free(m->t);
		free(m);
	}
}

static void credit(struct mem *m, uint32_t owner, size_t n)
{
	if (owner >= m->n)
		owner = 0;
	struct mtask *t = &m->t[owner];
	t->used = t->used > n ? t->used - n : 0;
	m->total = m->total > n ? m->total - n : 0;
	if (t->state == SLOT_DEAD && t->used == 0)
		t->state = SLOT_FREE;
}

static void doom(struct mem *m, uint32_t owner, const char *msg)
{
	struct mtask *t = &m->t[owner];
	if (owner == 0 || t->doom[0])
		return;
	snprintf(t->doom, sizeof t->doom, "%s", msg);
	if (owner == m->cur && m->in_task)
		m->raise_slice = true;
}

/* A failure Lua did not retry was final: doom its task. */
static void settle_failure(struct mem *m)
{
	if (m->fail_pending) {
		m->fail_pending = false;
		doom(m, m->fail_owner, "not enough memory");
	}
}

/* The lua_Alloc that carries a small owner header on every block. */
void *mem_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct mem *m = ud;
	char *blk = ptr ? (char *)ptr - HDR : NULL;
	uint32_t owner = blk ? *(uint32_t *)blk : 0;
	size_t old = ptr ? osize : 0;

	if (nsize == 0) {
		if (blk) {
			credit(m, owner, old);
			free(blk);
		}
		return NULL;
	}
	if (nsize <= old) { /* shrink: never fails, keeps its owner */
		char *nb = realloc(blk, nsize + HDR);
		credit(m, owner, old - nsize);
		return (nb ? nb : blk) + HDR;
	}
	uint32_t cur = m->cur;
	struct mtask *t = &m->t[cur];
	size_t base = ptr && owner == cur ? t->used - (t->used < old ? t->used : old) : t->used;
	if (cur != 0 && t->limit && base + nsize > t->limit) {
		if (m->fail_pending && m->fail_owner == cur && m->fail_ptr == ptr &&
		    m->fail_osize == osize && m->fail_nsize == nsize) {
			m->fail_pending = false; /* the retry after the emergency GC */
			doom(m, cur, "not enough memory");
		} else {
			settle_failure(m);
			m->fail_pending = true;
			m->fail_owner = cur;
			m->fail_ptr = ptr;
			m->fail_osize = osize;
			m->fail_nsize = nsize;
		}
		return NULL;
	}
	if (m->fail_pending && !(m->fail_owner == cur && m->fail_ptr == ptr &&
				 m->fail_osize == osize && m->fail_nsize == nsize))
		settle_failure(m);
	m->fail_pending = false;
	char *nb = realloc(blk, nsize + HDR);
	if (nb == NULL)
		return NULL;
	if (blk)
		credit(m, owner, old);
	*(uint32_t *)nb = cur;
	t = &m->t[cur]; /* credit() never reallocates m->t, but stay obvious */
	t->used += nsize;
	m->total += nsize;
	return nb + HDR;
}

static struct mem *get_mem(lua_State *L)
{
	void *ud;
	if (lua_getallocf(L, &ud) != mem_alloc)
		luaL_error(L, "_fibersd: this Lua state has no per-task memory accounting");
	return ud;
}

static uint32_t check_task(lua_State *L, struct mem *m, int idx)
{
	lua_Integer id = luaL_checkinteger(L, idx);
	luaL_argcheck(L, id > 0 && id < m->n && m->t[id].state == SLOT_LIVE, idx, "no such task");
	return (uint32_t)id;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* task_new(limit) -> id */
static int l_task_new(lua_State *L)
{
	struct mem *m = get_mem(L);
	lua_Integer limit = luaL_optinteger(L, 1, 0);
	luaL_argcheck(L, limit >= 0, 1, "negative limit");
	uint32_t id = 1;
	while (id < m->n && m->t[id].state != SLOT_FREE)
		id++;
	if (id == m->n) {
		if (m->n == m->cap) {
			struct mtask *nt = realloc(m->t, 2 * m->cap * sizeof *nt);
			if (nt == NULL)
				return luaL_error(L, "not enough memory");
			memset(nt + m->cap, 0, m->cap * sizeof *nt);
			m->t = nt;
			m->cap *= 2;
		}
		m->n++;
	}
	struct mtask *t = &m->t[id];
	size_t used = t->used; /* 0 for a free slot */
	uint32_t gen = t->gen + 1;
	memset(t, 0, sizeof *t);
	t->used = used;
	t->gen = gen;
	t->state = SLOT_LIVE;
	t->limit = (size_t)limit;
	lua_pushinteger(L, id);
	return 1;
}

/* task_set_limit(id, bytes): 0 = no limit; applies to later allocations */
static int l_task_set_limit(lua_State *L)
{
	struct mem *m = get_mem(L);
	uint32_t id = check_task(L, m, 1);
	lua_Integer limit = luaL_checkinteger(L, 2);
	luaL_argcheck(L, limit >= 0, 2, "negative limit");
	m->t[id].limit = (size_t)limit;
	return 0;
}

/* task_memory(id) -> bytes of Lua memory the task holds now */
static int l_task_memory(lua_State *L)
{
	struct mem *m = get_mem(L);
	lua_Integer id = luaL_checkinteger(L, 1);
	luaL_argcheck(L, id >= 0 && id < m->n && m->t[id].state != SLOT_FREE, 1, "no such task");
	lua_pushinteger(L, (lua_Integer)m->t[id].used);
	return 1;
}

/* task_free(id): the id stops being valid; its blocks still credit it
 * until they are collected, then the slot is reused */
static int l_task_free(lua_State *L)
{
	struct mem *m = get_mem(L);
	uint32_t id = check_task(L, m, 1);
	m->t[id].state = m->t[id].used ? SLOT_DEAD : SLOT_FREE;
	m->t[id].doom[0] = '\0';
	return 0;
}

/* task_doomed(id) -> reason | nil */
static int l_task_doomed(lua_State *L)
{
	struct mem *m = get_mem(L);
	uint32_t id = check_task(L, m, 1);
	if (m->cur == id)
		settle_failure(m);
	if (m->t[id].doom[0])
		lua_pushstring(L, m->t[id].doom);
	else
		lua_pushnil(L);
	return 1;
}

/* memory() -> total bytes of the Lua state */
static int l_memory(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)get_mem(L)->total);
	return 1;
}

/* current_task() -> id of the running task, nil for the daemon */
static int l_current_task(lua_State *L)
{
	struct mem *m = get_mem(L);
	if (m->cur == 0)
		lua_pushnil(L);
	else
		lua_pushinteger(L, m->cur);
	return 1;
}

/* set_max_slice(seconds): 0 = no guard */
static int l_set_max_slice(lua_State *L)
{
	lua_Number s = luaL_checknumber(L, 1);
	luaL_argcheck(L, s >= 0, 1, "negative max_slice");
	get_mem(L)->max_slice = s;
	return 0;
}

/* Exempt the library in dir (its fibers*.lua, fibers/, fibersd/ chunks)
 * from the doom error of the runaway guard and the memory limit. */
int mem_guard_exempt(lua_State *L, const char *dir)
{
	void *ud;
	if (lua_getallocf(L, &ud) != mem_alloc)
		return EINVAL;
	struct mem *m = ud;
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (m->nexempt == sizeof m->exempt / sizeof m->exempt[0])
		return ENOSPC;
	char *p = malloc(n + sizeof "@/fibers");
	if (p == NULL)
		return ENOMEM;
	snprintf(p, n + sizeof "@/fibers", "@%.*s/fibers", (int)n, dir);
	m->exempt[m->nexempt++] = p;
	return 0;
}

/* Is the function running at the hook library code? */
static bool in_library(lua_State *L, lua_Debug *ar, const struct mem *m)
{
	if (m->nexempt == 0 || !lua_getinfo(L, "S", ar) || ar->source == NULL)
		return false;
	for (size_t i = 0; i < m->nexempt; i++)
		if (strncmp(ar->source, m->exempt[i], strlen(m->exempt[i])) == 0)
			return true;
	return false;
}

static void guard_hook(lua_State *L, lua_Debug *ar)
{
	void *ud;
	lua_getallocf(L, &ud);
	struct mem *m = ud;
	if (!m->in_task) {
		lua_sethook(L, NULL, 0, 0);
		return;
	}
	settle_failure(m);
	struct mtask *t = &m->t[m->cur];
	if (!m->raise_slice && m->max_slice > 0 && now() - m->slice_start > m->max_slice) {
		char msg[80];
		snprintf(msg, sizeof msg, "task exceeded max_slice of %gs without yielding", m->max_slice);
		doom(m, m->cur, msg);
		m->raise_slice = true;
	}
	if (m->raise_slice && t->doom[0]) {
		/* From now on every instruction checks: with a fixed period the
		 * tick could always land inside the same pcall of a loop. */
		lua_sethook(L, guard_hook, LUA_MASKCOUNT, 1);
		if (in_library(L, ar, m))
			return; /* raised at the next instruction of task code */
		lua_pushstring(L, t->doom);
		lua_error(L);
	}
}

/* The task id of a fiber: an integer tag naming a known slot, else 0. */
static uint32_t fiber_owner(lua_State *L, struct mem *m)
{
	if (!lua_istable(L, 1))
		return 0;
	lua_getfield(L, 1, "tag");
	int isnum;
	lua_Integer id = lua_tointegerx(L, -1, &isnum);
	lua_pop(L, 1);
	return isnum && id > 0 && id < m->n && m->t[id].state != SLOT_FREE ? (uint32_t)id : 0;
}

/* enter(fiber): its task becomes the owner of new memory; arm the guard */
static int l_enter(lua_State *L)
{
	struct mem *m = get_mem(L);
	settle_failure(m);
	m->cur = fiber_owner(L, m);
	m->raise_slice = false;
	m->in_task = m->cur != 0;
	if (m->in_task) {
		m->slice_start = now();
		lua_getfield(L, 1, "co");
		lua_State *co = lua_tothread(L, -1);
		if (co)
			lua_sethook(co, guard_hook, LUA_MASKCOUNT, HOOK_COUNT);
		lua_pop(L, 1);
	}
	return 0;
}

/* leave(fiber): back to the daemon as owner; disarm the guard */
static int l_leave(lua_State *L)
{
	struct mem *m = get_mem(L);
	settle_failure(m);
	if (m->in_task && lua_istable(L, 1)) {
		lua_getfield(L, 1, "co");
		lua_State *co = lua_tothread(L, -1);
		if (co)
			lua_sethook(co, NULL, 0, 0);
		lua_pop(L, 1);
	}
	m->cur = 0;
	m->in_task = false;
	m->raise_slice = false;
	return 0;
}

/* Is the Lua function of frame ar task code (not the library)?  Needs the
 * library's directories (mem_guard_exempt); without them nothing is. */
static bool task_code(lua_State *L, lua_Debug *ar, const struct mem *m)
{
	if (m->nexempt == 0 || !lua_getinfo(L, "S", ar) || ar->source == NULL)
		return false;
	if (ar->what[0] == 'C')
		return false;
	return !in_library(L, ar, m);
}

/* in_task() -> true while a task runs: inside a task slice, or with task
 * code anywhere on the calling coroutine's stack (a task's metamethod or
 * finaliser run by the daemon).  The sandbox of the standard library asks
 * this before a blocking or process-ending call. */
static int l_in_task(lua_State *L)
{
	struct mem *m = get_mem(L);
	lua_Debug ar;
	bool in = m->cur != 0;
	for (int level = 1; !in && lua_getstack(L, level, &ar); level++)
		in = task_code(L, &ar, m);
	lua_pushboolean(L, in);
	return 1;
}

/* task_caller(level) -> true when the first Lua function at or above stack
 * level `level` (1 = the caller of task_caller) is task code: who asked for
 * a module, skipping C functions such as require itself. */
static int l_task_caller(lua_State *L)
{
	struct mem *m = get_mem(L);
	lua_Debug ar;
	int level = (int)luaL_optinteger(L, 1, 1);
	for (; lua_getstack(L, level, &ar); level++) {
		if (!lua_getinfo(L, "S", &ar))
			break;
		if (ar.what[0] != 'C') {
			lua_pushboolean(L, task_code(L, &ar, m));
			return 1;
		}
	}
	lua_pushboolean(L, 0);
	return 1;
}

/* library_source(chunkname) -> true when the name is one of the library's
 * (a chunk a task loads must not pass for library code) */
static int l_library_source(lua_State *L)
{
	struct mem *m = get_mem(L);
	const char *src = luaL_checkstring(L, 1);
	bool lib = false;
	for (size_t i = 0; i < m->nexempt && !lib; i++)
		lib = strncmp(src, m->exempt[i], strlen(m->exempt[i])) == 0;
	lua_pushboolean(L, lib);
	return 1;
}

/* library_dir(dir): the library's modules (DIR/fibers*.lua, DIR/fibers/,
 * DIR/fibersd/) are also loaded from dir (a lua_path entry); refused in a
 * task slice (tasks cannot reach `_fibersd` at all, see task.lua) */
static int l_library_dir(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	if (get_mem(L)->cur != 0)
		return luaL_error(L, "library_dir is not available in fibersd tasks");
	int err = mem_guard_exempt(L, dir);
	if (err)
		return luaL_error(L, "library_dir: %s", strerror(err));
	return 0;
}

/* The stream accounting hook: whom a new stream works for (0 = daemon). */
static unsigned long long acct_owner(void *ud)
{
	struct mem *m = ud;
	if (m->cur == 0)
		return 0;
	return (unsigned long long)m->t[m->cur].gen << 32 | m->cur;
}

/* The stream accounting hook: charge delta bytes of C buffers to owner. */
static int acct_charge(void *ud, uint64_t owner, long long delta)
{
	struct mem *m = ud;
	uint32_t id = (uint32_t)owner;
	if (id >= m->n || m->t[id].gen != (uint32_t)(owner >> 32) || m->t[id].state == SLOT_FREE)
		id = 0; /* the task is gone: the daemon holds what is left */
	if (delta < 0) {
		credit(m, id, (size_t)-delta);
		return 0;
	}
	struct mtask *t = &m->t[id];
	if (id != 0 && t->limit && (t->used > t->limit || (size_t)delta > t->limit - t->used)) {
		doom(m, id, "not enough memory (stream buffers past memory_limit)");
		return ENOMEM;
	}
	t->used += (size_t)delta;
	m->total += (size_t)delta;
	return 0;
}

/* Charge the C buffers of streams created in task fibers to their task
 * (installs the FL_ACCT_KEY hook of fibers.core); no-op without mem_alloc. */
void mem_acct_install(lua_State *L)
{
	void *ud;
	if (lua_getallocf(L, &ud) != mem_alloc)
		return;
	struct mem *m = ud;
	m->acct.owner = acct_owner;
	m->acct.charge = acct_charge;
	m->acct.ud = m;
	lua_pushlightuserdata(L, &m->acct);
	lua_setfield(L, LUA_REGISTRYINDEX, FL_ACCT_KEY);
}

/* The functions of this file, merged into `_fibersd` by lhost.c. */
const luaL_Reg fd_task_funcs[] = {
	{ "in_task", l_in_task },
	{ "task_caller", l_task_caller },
	{ "library_source", l_library_source },
	{ "library_dir", l_library_dir },
	{ "task_new", l_task_new },
	{ "task_set_limit", l_task_set_limit },
	{ "task_memory", l_task_memory },
	{ "task_free", l_task_free },
	{ "task_doomed", l_task_doomed },
	{ "memory", l_memory },
	{ "current_task", l_current_task },
	{ "set_max_slice", l_set_max_slice },
	{ "enter", l_enter },
	{ "leave", l_leave },
	{ NULL, NULL },
};
