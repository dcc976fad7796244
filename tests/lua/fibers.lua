-- tests/lua/fibers.lua - the facade (doc/library.md §2, §0.2, §0.3, §0.10,
-- §0.13): run's results/raises/teardown/re-entry, spawn, perform and
-- try_perform, named_choice performing, run_scope tuples, fail-fast of
-- siblings, a 10^5-fiber scale run.
local t = require 'tap'
local fibers = require 'fibers'
local op = require 'fibers.op'
local scope = require 'fibers.scope'
local sleep = require 'fibers.sleep'
local runtime = require 'fibers.runtime'

local pack = t.pack
local pcall = scope._pcall  -- yield-safe on Lua 5.1
local sched = runtime.current_scheduler

-- exports
for _, k in ipairs({ "run", "spawn", "perform", "try_perform", "now", "choice", "guard", "with_nack",
  "always", "never", "bracket", "race", "first_ready", "boolean_choice", "named_choice",
  "named_choice_op", "run_scope", "run_scope_op", "current_scope", "set_unscoped_error_handler" }) do
  t.is(type(fibers[k]), "function", "fibers." .. k .. " is a function")
end

-- run: results (nils kept), main gets its scope and args
do
  local got
  local r = pack(fibers.run(function(s, a, b)
    got = { getmetatable(s) == scope.Scope, s == fibers.current_scope(), s:parent() == scope.root(), a, b }
    return 1, nil, "x", nil
  end, "A", "B"))
  t.is_deeply(r, { n = 4, 1, nil, "x", nil }, "run returns main's results with nils")
  t.is_deeply(got, { true, true, true, "A", "B" }, "main runs in a child of the root with its args")
end

-- run raises the primary unchanged (error(p, 0)), tostring-ed; cancel reason
t.is_deeply(pack(pcall(fibers.run, function() error("plain failure", 0) end)),
  { n = 2, false, "plain failure" }, "run raises the primary unchanged")
t.is_deeply(pack(pcall(fibers.run, function() error({}) end)) [2]:match("^table:") and true,
  true, "non-string primary is tostring-ed")
t.is_deeply(pack(pcall(fibers.run, function(s) s:cancel("bye"); fibers.perform(op.never()) end)),
  { n = 2, false, "bye" }, "run raises the cancellation reason")
t.is_deeply(pack(pcall(fibers.run, function(s)
  fibers.spawn(function() sleep.sleep(0.01); error("late sibling", 0) end)
  return "main returned"
end)), { n = 2, false, "late sibling" }, "a failing sibling fails the run even if main returned")

-- run refuses inside a fiber; can be called again
do
  local inner
  fibers.run(function() inner = pack(pcall(fibers.run, function() end)) end)
  t.is(inner[1], false, "nested run raises")
  t.like(inner[2], "fibers.run must not be called from inside a fiber", "nested run message")
  t.is(fibers.run(function() return "again" end), "again", "run may be called again")
end

-- teardown (§0.10): root-level fibers cancelled and joined, finalisers run,
-- faults of root-level fibers go to the unscoped handler, raw fibers dropped
do
  local log = {}
  local handled = {}
  fibers.set_unscoped_error_handler(function(f, e) handled[#handled + 1] = tostring(e) end)
  local r = pack(pcall(fibers.run, function(s)
    local root = scope.root()
    root:spawn(function()
      local ok, e = pcall(sleep.sleep, 100)
      log[#log + 1] = "root fiber: " .. tostring(scope.cancel_reason(e))
    end)
    root:spawn(function() error("root-level fault", 0) end)
    root:finally(function(aborted, st, why) log[#log + 1] = ("root fin %s %s %s"):format(tostring(aborted), st, why) end)
    runtime.spawn_raw(function() op.perform_raw(sleep.sleep_op(100)); log[#log + 1] = "raw woke" end)
    sleep.sleep(0.01)
    return "done"
  end))
  fibers.set_unscoped_error_handler(nil)
  t.is_deeply(r, { n = 2, true, "done" }, "root-level faults do not change run's result")
  t.is_deeply(handled, { "root-level fault" }, "root-level fault went to the unscoped handler")
  t.is_deeply(log, { "root fiber: fibers.run finished", "root fin true cancelled fibers.run finished" },
    "root cancelled with 'fibers.run finished' and joined; raw fiber dropped")
  local runnable, timers, fds = sched:counts()
  t.is_deeply({ runnable, timers, fds }, { 0, 0, 0 }, "nothing left in the scheduler")
  t.isnt(scope.root():status(), "cancelled", "a fresh root for the next run")
end

-- spawn: fn(...) without a scope argument; refusal
t.is_deeply(pack(fibers.run(function(s)
  local got
  local ok = fibers.spawn(function(...) got = pack(...) end, 1, nil)
  sleep.sleep(0.01)
  s:close()
  return ok, got, pack(fibers.spawn(function() end))
end)), { n = 3, true, { n = 2, 1, nil }, { n = 2, false, "scope is closed" } }, "spawn calls fn(...); refusal reason")

-- perform / try_perform
t.raises(function() fibers.perform(op.always(1)) end, "fibers.perform: must be called from inside a fiber",
  "perform outside a fiber")
t.is_deeply(pack(fibers.run(function(s)
  local out = {}
  out[1] = pack(pcall(fibers.perform, 42))
  out[1][2] = out[1][2]:match("perform: expected op, got number") and "msg ok" or out[1][2]
  out[2] = pack(fibers.perform(op.always(1, nil)))
  out[3] = pack(fibers.try_perform(op.always(2)))
  local c = s:child()
  c:spawn(function()
    out[4] = pack(fibers.try_perform(op.never()))
    out[5] = pack(fibers.try_perform(op.always(1)))
  end)
  sleep.sleep(0.01)
  c:cancel("halt")
  op.perform_raw(c:join_op())
  return out
end)), { n = 1, {
  { n = 2, false, "msg ok" }, { n = 2, 1, nil }, { n = 2, "ok", 2 },
  { n = 2, "cancelled", "halt" }, { n = 2, "cancelled", "halt" } } }, "perform and try_perform tuples")

-- named_choice performs (scope-aware); named_choice_op builds
t.is_deeply(pack(fibers.run(function(s)
  local a = pack(fibers.named_choice({ data = op.always("v", nil), timeout = sleep.sleep_op(1) }))
  local b = pack(fibers.named_choice({ data = op.never(), timeout = sleep.sleep_op(0.01) }))
  local o = fibers.named_choice_op({ x = op.always(1) })
  local e
  fibers.run_scope(function(c)
    c:cancel("c")
    local _
    _, e = pcall(fibers.named_choice, { x = op.always(1) })
  end)
  return a, b, getmetatable(o) == op.Op, scope.cancel_reason(e)
end)), { n = 4, { n = 3, "data", "v", nil }, { n = 1, "timeout" }, true, "c" }, "named_choice performs")

-- run_scope tuples and run_scope_op
t.is_deeply(pack(fibers.run(function(s)
  local a = pack(fibers.run_scope(function(c, x) return x, nil end, "r"))
  a[3] = type(a[3])
  local b = pack(fibers.run_scope(function(c)
    c:spawn(function() error("child boom", 0) end)
    sleep.sleep(1)
  end))
  b[3] = type(b[3])
  local w = pack(fibers.perform(op.choice(fibers.run_scope_op(function() sleep.sleep(10) end),
    sleep.sleep_op(0.01):wrap(function() return "t" end))))
  return a, b, w, (s:status())
end)), { n = 4, { n = 5, "ok", nil, "table", "r", nil }, { n = 3, "failed", "child boom", "table" },
  { n = 1, "t" }, "running" }, "run_scope: status, err, report, ...results; failed child fails only itself")

-- fail fast: a failing fiber cancels its siblings, which unwind via defers
do
  local log = {}
  local r = pack(pcall(fibers.run, function(s)
    for i = 1, 3 do
      fibers.spawn(function()
        s:defer(function() log[#log + 1] = "defer" .. i end)
        sleep.sleep(100)
      end)
    end
    fibers.spawn(function() sleep.sleep(0.01); error("fatal", 0) end)
  end))
  t.is_deeply(r, { n = 2, false, "fatal" }, "fail fast: run raises the primary")
  t.is_deeply(log, { "defer3", "defer2", "defer1" }, "defers run LIFO")
end

-- perform from a coroutine created inside a fiber, or where the fiber
-- cannot yield, is an immediate error and leaves nothing registered
do
  local chan = require 'fibers.channel'
  local compat = require 'fibers.compat'
  local plain_pcall = _G.pcall
  local out = {}
  local ok, err = plain_pcall(fibers.run, function()
    local ch = chan.new()
    local ops = {
      sleep_op = function() return fibers.perform(sleep.sleep_op(0.01)) end,
      sleep = function() return sleep.sleep(0.01) end,
      get = function() return ch:get() end,
      choice = function() return fibers.perform(op.choice(ch:get_op(), sleep.sleep_op(0.01))) end,
      raw = function() return op.perform_raw(ch:get_op()) end,
      bracket = function()
        return fibers.perform(op.choice(op.bracket(function() out.acq = (out.acq or 0) + 1 end,
          function() out.rel = (out.rel or 0) + 1 end, function() return op.never() end), ch:get_op()))
      end,
    }
    for _, name in ipairs({ "sleep_op", "sleep", "get", "choice", "raw", "bracket" }) do
      local gen = coroutine.wrap(function() return plain_pcall(ops[name]) end)
      local gok, gerr = gen()
      out[name] = { gok, (tostring(gerr):match("cannot block in a coroutine created inside a fiber")) }
    end
    -- nothing stayed registered: a put finds no getter, the fiber's own
    -- sleeps are not woken early by a stale timer
    out.put = fibers.named_choice{ put = ch:put_op(1), timeout = sleep.sleep_op(0.05) }
    sleep.sleep(0.03)
    out.after = "ran"
    -- a plain pcall: blocks where the fiber can yield across it; on PUC
    -- 5.1 it cannot, and the perform raises before registering
    local pok, perr = plain_pcall(sleep.sleep, 0.01)
    out.pcall = { pok, perr and tostring(perr):match("cannot block here") }
    sleep.sleep(0.03)
    -- inside a table.sort comparator (a C call) the fiber cannot yield
    -- (PUC Lua; LuaJIT's sort may be yielded across)
    if not rawget(_G, "jit") and (coroutine.isyieldable or not compat.yield_across_pcall) then
      local sok, serr = plain_pcall(table.sort, { 2, 1 }, function(a, b) sleep.sleep(0.01); return a < b end)
      out.sort = { sok, serr and tostring(serr):match("cannot block here") }
      sleep.sleep(0.03)
    end
  end)
  t.is_deeply({ ok, err }, { true }, "fibers.run completes (no resume of a fiber without a suspended coroutine)")
  local e = { false, "cannot block in a coroutine created inside a fiber" }
  t.is_deeply({ out.sleep_op, out.sleep, out.get, out.choice, out.raw },
    { e, e, e, e, e }, "perform in a nested coroutine: a clear error (sleep_op, sleep, ch:get, choice, perform_raw)")
  t.is_deeply({ out.bracket, out.acq, out.rel }, { e, 1, 1 }, "... after releasing a compiled bracket arm")
  t.is_deeply({ out.put, out.after }, { "timeout", "ran" }, "nothing stayed registered")
  if compat.yield_across_pcall then
    t.is_deeply(out.pcall, { true }, "perform under a plain pcall blocks (it can yield across it)")
  else
    t.is_deeply(out.pcall, { false, "cannot block here" }, "Lua 5.1: perform under a plain pcall raises at once")
  end
  if out.sort then
    t.is_deeply(out.sort, { false, "cannot block here" }, "perform in a table.sort comparator raises at once")
  end
end

-- scale: 10^5 fibers
do
  local t0 = runtime.monotime()
  local n = 0
  fibers.run(function(s)
    for _ = 1, 100000 do fibers.spawn(function() n = n + 1 end) end
  end)
  local dt = runtime.monotime() - t0
  t.is(n, 100000, "10^5 fibers ran and the scope joined")
  t.diag(("10^5 spawns in %.3f s"):format(dt))
  local woke = 0
  fibers.run(function(s)
    for i = 1, 20000 do fibers.spawn(function() sleep.sleep((i % 10) * 0.001); woke = woke + 1 end) end
  end)
  t.is(woke, 20000, "2*10^4 sleeping fibers all woke")
end

t.done()
