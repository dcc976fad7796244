-- fibers/sleep.lua - sleeping as an Op (doc/library.md §7).
--
-- Owns sleep_op/sleep/sleep_until_op/sleep_until.  Deadlines are on the
-- monotonic clock and computed from a fresh read when the op is performed,
-- so a long turn never makes a sleep end early.  A sleep that
-- loses a choice cancels its timer (bounded memory, doc/library.md §0.8);
-- `math.huge` arms no timer at all.
local runtime = require 'fibers.runtime'
local op = require 'fibers.op'
local scope = require 'fibers.scope'
local monotime = require('fibers.core').sys.monotime

local prim, perform_in = op._prim1, op._perform_in
local huge = math.huge
local setmetatable, type = setmetatable, type

local M = {}

local function try(o) return monotime() >= o.a end

local function block(s, tok, o)
  local t = o.a
  if t == huge then return end
  local sched = runtime.current_scheduler
  local h = sched:schedule_at_time(t, s:complete_task(tok))
  s:add_cleanup(sched.cancel_timer, sched, h)
end

local function check(x, who, what)
  if type(x) ~= "number" then error(who .. ": expected number, got " .. type(x), 3) end
  if x ~= x then error(who .. ": " .. what .. " is NaN", 3) end
end

-- An op ready once the monotonic clock reaches t (seconds).
function M.sleep_until_op(t)
  check(t, "sleep_until_op", "deadline")
  return prim(try, block, nil, t)
end

-- sleep_op is a plain primitive: with dt > 0 it cannot be ready in the try
-- phase of a perform (the deadline would be now + dt > now), so the deadline
-- is computed when the perform blocks - in the same turn, from a fresh
-- clock read - and no guard or per-perform op is needed.
-- (try_dt is C: op._fast.try_dt, recognised and done inline by the C
-- perform; it reads o.a <= 0.)
local try_dt = op._fast.try_dt
local function block_dt(s, tok, o)
  local dt = o.a
  if dt == huge then return end
  local sched = runtime.current_scheduler
  local h = sched:schedule_at_time(monotime() + dt, s:complete_task(tok))
  s:add_cleanup(sched.cancel_timer, sched, h)
end

-- An op ready dt seconds after it is performed.  (op._prim1's table,
-- built here: one call less on a hot path.)  Interned by dt: ops are
-- immutable (doc/library.md §4), so sleep_op(5) may return the op it made
-- before, and a select loop with a fixed timeout allocates none; the
-- table's values are weak, so it keeps no op alive (doc/decisions.md,
-- "Hash-consed ops").
local Op, PRIM = op.Op, op._PRIM
local interned = setmetatable({}, { __mode = "v" })
function M.sleep_op(dt)
  local o = interned[dt]
  if o then return o end
  if type(dt) ~= "number" or dt ~= dt then check(dt, "sleep_op", "duration") end
  o = setmetatable({ k = PRIM, try = try_dt, block = block_dt, a = dt }, Op)
  interned[dt] = o
  return o
end

local function perform(o)
  if not runtime.current_fiber() then error("sleep: must be called from inside a fiber", 3) end
  return perform_in(o, scope.current())
end

-- The C fast half (src/lua/lchan.c sleep_block): for a fiber of an ok
-- scope it registers the timer and the scope's cancel waiter itself and
-- returns the timer handle; the fiber then yields.  Woken with token 1 by
-- the timer, or with CANCEL (and the scope) by the scope - then the timer
-- is cancelled and the perform raises, exactly as the general path does.
local sleep_block, CANCEL = op._fast.sleep_block, op._CANCEL
local suspend_yield = coroutine.yield
local cancel_timer = runtime.current_scheduler.cancel_timer

-- Sleep dt seconds (scope-aware: raises on cancellation).
function M.sleep(dt)
  if type(dt) ~= "number" or dt ~= dt then check(dt, "sleep", "duration") end
  local h = sleep_block(dt)
  if h == true then return end
  if h == false then return perform(prim(try_dt, block_dt, nil, dt)) end
  local tok, v = suspend_yield()
  if tok == 1 then return end
  if h >= 0 then cancel_timer(runtime.current_scheduler, h) end
  if tok == CANCEL then return v:_raise() end
  error("sleep: unexpected wake-up token " .. tostring(tok), 0)
end

-- Sleep until the monotonic clock reaches t (scope-aware).
function M.sleep_until(t)
  check(t, "sleep_until", "deadline")
  return perform(prim(try, block, nil, t))
end

return M
