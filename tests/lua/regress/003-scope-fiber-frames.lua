-- tests/lua/regress/003-scope-fiber-frames.lua - scope fibers run their
-- function directly as the coroutine body (no entry frame, no pcall; the
-- runtime hands their end to fibers.scope through the fiber's `_exit`
-- field): a parked scope fiber keeps only its own frames (parked-memory
-- bar), while faults, cancellation, counting for the join, tracebacks in
-- debug mode and raw fibers' unscoped errors behave as before.
local t = require 'tap'
local fibers = require 'fibers'
local scope = require 'fibers.scope'
local runtime = require 'fibers.runtime'
local cond = require 'fibers.cond'

fibers.run(function()
  -- the bottom frame of a parked scope fiber is its own function
  local c = cond.new()
  local fib
  local function waiter(s, x)
    fib = runtime.current_fiber()
    t.is(scope.current(), s, "scope.current() inside the fiber is its scope")
    t.is(x, 42, "extra spawn argument passed")
    c:wait()
  end
  local st, err = fibers.run_scope(function(s)
    s:spawn(waiter, 42)
    runtime.yield()
    local co, bottom = fib.co, nil
    for level = 0, 50 do
      local info = debug.getinfo(co, level, "f")
      if not info then break end
      bottom = info.func
    end
    t.is(bottom, waiter, "no entry frame below the fiber's function")
    t.ok(fib.scope == s and fib._exit == s, "fiber carries its scope")
    c:signal()
  end)
  t.is(st, "ok", "scope with a finished fiber joins ok")
  t.is(err, nil, "no error")
  t.ok(fib.dead, "fiber marked dead")

  -- a fault in a scope fiber fails its scope (error value kept, once)
  local st2, err2, rep2 = fibers.run_scope(function(s)
    s:spawn(function() error("boom", 0) end)
    s:spawn(function() error({ code = 7 }) end)
  end)
  t.is(st2, "failed", "fault fails the scope")
  t.is(err2, "boom", "primary is the first fault")
  t.is(#rep2.extra_errors, 1, "the second fault is an extra error")

  -- many fibers ending normally: the join waits for every one
  local n = 0
  local st3 = fibers.run_scope(function(s)
    for _ = 1, 100 do s:spawn(function() runtime.yield(); n = n + 1 end) end
  end)
  t.is(st3, "ok", "100 fibers joined")
  t.is(n, 100, "every fiber ran to its end before the join")

  -- a fiber raising the cancellation sentinel cancels its scope
  local st4, err4 = fibers.run_scope(function(s)
    s:spawn(function() error(scope.cancelled("from fiber")) end)
  end)
  t.is(st4, "cancelled", "sentinel from a fiber cancels the scope")
  t.is(err4, "from fiber", "with its reason")

  -- debug mode: the fault message carries the fiber's traceback
  scope.set_debug(true)
  local function deep_fault() error("traced fault", 0) end
  local st5, err5 = fibers.run_scope(function(s)
    s:spawn(function() deep_fault() end)
  end)
  scope.set_debug(false)
  t.is(st5, "failed", "debug mode: scope failed")
  t.like(err5, "^traced fault\nstack traceback:", "debug mode: traceback added")
  t.like(err5, "deep_fault", "traceback names the failing function")

  -- raw fibers still report to the unscoped handler
  local seen
  local prev = runtime.set_unscoped_error_handler(function(_, e) seen = e end)
  runtime.spawn_raw(function() error("raw failure", 0) end)
  runtime.yield()
  runtime.set_unscoped_error_handler(prev)
  t.is(seen, "raw failure", "raw fiber error goes to the unscoped handler")
end)

t.done()
