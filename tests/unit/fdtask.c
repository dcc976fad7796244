/*
 * fdtask.c - TAP unit test of `_fibersd`'s per-task memory accounting and
 * runaway guard (src/fibersd/task.c), in a Lua state created with the
 * accounting allocator exactly as fibersd does.  Fibers are simulated:
 * { tag = id, co = coroutine } resumed between enter() and leave(), as the
 * runtime's resume hook does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lualib.h>

#include "fibersd.h"
#include "tap.h"

static int l_ok(lua_State *L)
{
	t_result(lua_toboolean(L, 1), NULL, 0, "%s", luaL_optstring(L, 2, "?"));
	return 0;
}

static int l_diag(lua_State *L)
{
	printf("# %s\n", luaL_tolstring(L, 1, NULL));
	return 0;
}

static const char *script =
	"local F = require '_fibersd'\n"
	"local now = F.monotime\n"
	"local function fiber(tag, fn) return { tag = tag, co = coroutine.create(fn) } end\n"
	"local function step(f, ...)\n"
	"  F.enter(f); local ok, err = coroutine.resume(f.co, ...); F.leave(f)\n"
	"  return ok, err\n"
	"end\n"
	/* accounting */
	"local a = F.task_new(0)\n"
	"ok(math.type(a) == 'integer' and a > 0, 'task_new returns an id')\n"
	"ok(F.task_memory(a) == 0 and F.task_doomed(a) == nil, 'a new task holds nothing')\n"
	"local keep\n"
	"local f = fiber(a, function() keep = {}; for i = 1, 100000 do keep[i] = {} end; "
	"  ok(F.current_task() == a, 'current_task inside the task'); return 'done' end)\n"
	"local okr, res = step(f)\n"
	"ok(okr and res == 'done', 'task fiber ran')\n"
	"ok(F.current_task() == nil, 'current_task outside: nil (daemon)')\n"
	"local held = F.task_memory(a)\n"
	"ok(held > 100000 * 40, 'allocations of the task are charged to it: ' .. held)\n"
	"ok(F.memory() > held, 'total memory includes the daemon')\n"
	"keep = nil; collectgarbage(); collectgarbage()\n"
	"ok(F.task_memory(a) < 4096, 'frees by the GC in the daemon credit the task: ' .. F.task_memory(a))\n"
	/* limit */
	"local b = F.task_new(1024 * 1024)\n"
	"local t = {}\n"
	"f = fiber(b, function() for i = 1, 1e7 do t[i] = {i} end end)\n"
	"okr, res = step(f)\n"
	"ok(not okr and res == 'not enough memory', 'past the limit: not enough memory (' .. tostring(res) .. ')')\n"
	"ok(F.task_doomed(b) == 'not enough memory', 'the task is doomed')\n"
	"ok(F.task_memory(b) <= 1024 * 1024, 'the task stays within its limit')\n"
	"local big = {}; for i = 1, 100000 do big[i] = {} end\n"
	"ok(#big == 100000, 'the daemon still allocates freely')\n"
	"big, t = nil, nil; collectgarbage()\n"
	"f = nil; collectgarbage()\n"
	"ok(F.task_memory(b) < 4096, 'its memory is credited back once collected: ' .. F.task_memory(b))\n"
	"local c = F.task_new(256 * 1024)\n"
	"f = fiber(c, function() local n = 0; while true do local ok2, e = pcall(function() "
	"  local x = {}; for i = 1, 1e7 do x[i] = i end end); n = n + 1 end end)\n"
	"local t0 = now(); okr, res = step(f)\n"
	"ok(not okr and res == 'not enough memory', 'pcall cannot swallow the memory doom: ' .. tostring(res))\n"
	"ok(now() - t0 < 3, 'and it ends quickly')\n"
	/* an emergency collection that rescues the allocation does not doom */
	"local d = F.task_new(2 * 1024 * 1024)\n"
	"collectgarbage('stop')\n"
	"f = fiber(d, function() for i = 1, 200 do local s = string.rep('x', 100000 + i) end; return 'ok' end)\n"
	"okr, res = step(f)\n"
	"collectgarbage('restart')\n"
	"ok(okr and res == 'ok', 'garbage past the limit is collected, not fatal: ' .. tostring(res))\n"
	"ok(F.task_doomed(d) == nil, 'and the task is not doomed')\n"
	/* set_limit */
	"F.task_set_limit(d, 0)\n"
	"f = fiber(d, function() local x = {}; for i = 1, 300000 do x[i] = i end; return #x end)\n"
	"okr, res = step(f)\n"
	"ok(okr and res == 300000, 'task_set_limit(id, 0) removes the limit')\n"
	/* runaway guard */
	"F.set_max_slice(0.1)\n"
	"local e = F.task_new(0)\n"
	"f = fiber(e, function() while true do end end)\n"
	"t0 = now(); okr, res = step(f); local dt = now() - t0\n"
	"ok(not okr and res == 'task exceeded max_slice of 0.1s without yielding', 'runaway: ' .. tostring(res))\n"
	"ok(dt >= 0.1 and dt < 2.1, 'within max_slice + a little: ' .. dt)\n"
	"ok(F.task_doomed(e) == 'task exceeded max_slice of 0.1s without yielding', 'doomed by the guard')\n"
	"local g = F.task_new(0)\n"
	"f = fiber(g, function() while true do pcall(function() while true do end end) end end)\n"
	"t0 = now(); okr, res = step(f)\n"
	"ok(not okr and res:find('max_slice', 1, true), 'pcall cannot swallow the guard')\n"
	"ok(now() - t0 < 2.1, 'the pcall loop ends quickly')\n"
	/* library code (exempt chunk) around a doomed body runs to its end */
	"local wrap = load('local body = ...; local ok, e = pcall(body); local n = 0; '\n"
	"  .. 'for i = 1, 10000 do n = n + i end; return \\'kept\\', ok, e, n', '@/usr/lib/fib/fibers/wrap.lua')\n"
	"local k = F.task_new(0)\n"
	"f = fiber(k, wrap)\n"
	"local okr2, tag2, bok, berr, bn\n"
	"t0 = now(); okr2, tag2, bok, berr, bn = (function(...) F.enter(f); local r = table.pack(coroutine.resume(f.co, ...)); F.leave(f); return table.unpack(r, 1, r.n) end)(function() while true do pcall(function() while true do end end) end end)\n"
	"ok(okr2 and tag2 == 'kept' and bok == false and bn == 50005000, 'library bookkeeping after a doomed body runs to its end: ' .. tostring(tag2) .. ' ' .. tostring(bn))\n"
	"ok(berr == 'task exceeded max_slice of 0.1s without yielding', 'the body failed with the doom error: ' .. tostring(berr))\n"
	"ok(now() - t0 < 2.1, 'and promptly')\n"
	"local l = F.task_new(0)\n"
	"f = fiber(l, function() local r = wrap(function() while true do end end); return r end)\n"
	"okr, res = step(f)\n"
	"ok(not okr and res == 'task exceeded max_slice of 0.1s without yielding', 'task code after the library call is still hit: ' .. tostring(res))\n"
	"local h = F.task_new(0)\n"
	"f = fiber(h, function() coroutine.wrap(function() while true do end end)() end)\n"
	"okr, res = step(f)\n"
	"ok(not okr and res:find('max_slice', 1, true), 'coroutines created by the task are guarded too')\n"
	"local i = F.task_new(0)\n"
	"f = fiber(i, function() for k = 1, 3 do local t1 = now(); while now() - t1 < 0.06 do end; "
	"  coroutine.yield(k) end; return 'fine' end)\n"
	"local r = {}\n"
	"for k = 1, 4 do local o, v = step(f); r[#r + 1] = tostring(o) .. ':' .. tostring(v) end\n"
	"ok(table.concat(r, ' ') == 'true:1 true:2 true:3 true:fine', 'yielding resets the slice: ' .. table.concat(r, ' '))\n"
	"ok(F.task_doomed(i) == nil, 'a yielding task is not doomed')\n"
	"f = fiber(nil, function() local t1 = now(); while now() - t1 < 0.25 do end; return 'daemon' end)\n"
	"okr, res = step(f)\n"
	"ok(okr and res == 'daemon', 'daemon fibers (tag nil) are never interrupted')\n"
	"f = fiber('web', function() local t1 = now(); while now() - t1 < 0.25 do end; return 'x' end)\n"
	"okr, res = step(f)\n"
	"ok(okr and res == 'x', 'a non-integer tag is the daemon')\n"
	"F.set_max_slice(0)\n"
	"local j = F.task_new(0)\n"
	"f = fiber(j, function() local t1 = now(); while now() - t1 < 0.25 do end; return 'off' end)\n"
	"okr, res = step(f)\n"
	"ok(okr and res == 'off', 'max_slice 0 turns the guard off')\n"
	/* ids */
	"F.task_free(a)\n"
	"local ok3, msg = pcall(F.task_set_limit, a, 1)\n"
	"ok(not ok3 and msg:find('no such task', 1, true), 'a freed id is invalid')\n"
	"local n = F.task_new(0)\n"
	"ok(n == a, 'a freed, drained id is reused')\n"
	"ok(not pcall(F.task_new, -1), 'negative limit raises')\n"
	"ok(not pcall(F.task_memory, 9999), 'unknown id raises')\n"
	/* a doom reason outlives the slot array growing (task_new reallocs it):
	 * it once pointed into the old array (heap-use-after-free under ASan) */
	"local why_b, why_e = F.task_doomed(b), F.task_doomed(e)\n"
	"local many = {}; for k = 1, 100 do many[k] = F.task_new(0) end\n"
	"ok(many[100] > 64, 'task_new grew the slot array: ' .. many[100])\n"
	"ok(why_b == 'not enough memory' and F.task_doomed(b) == why_b, 'memory doom kept across growth: ' .. tostring(F.task_doomed(b)))\n"
	"ok(why_e:find('max_slice', 1, true) and F.task_doomed(e) == why_e, 'guard doom kept across growth: ' .. tostring(F.task_doomed(e)))\n";

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	void *mem = mem_state_new();
	lua_State *L = lua_newstate(mem_alloc, mem);
	luaL_openlibs(L);
	fd_preload(L);
	int exempt_err = mem_guard_exempt(L, "/usr/lib/fib/");
	static const char *const more[] = { "/b", "/c", "/d", "/e", "/f", "/g", "/h" };
	for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
		exempt_err |= mem_guard_exempt(L, more[i]);
	if (exempt_err != 0 || mem_guard_exempt(L, "/i") != ENOSPC) {
		t_result(0, NULL, 0, "mem_guard_exempt");
	}
	lua_register(L, "ok", l_ok);
	lua_register(L, "diag", l_diag);
	if (luaL_dostring(L, script) != LUA_OK) {
		t_result(0, NULL, 0, "script error: %s", lua_tostring(L, -1));
	}
	int rc = done_testing();
	lua_close(L);
	mem_state_free(mem);
	return rc;
}
