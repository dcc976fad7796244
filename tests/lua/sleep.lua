-- tests/lua/sleep.lua - fibers.sleep (doc/library.md §7): deadlines at perform
-- time, virtual-time stepping with current_scheduler:run(t), sleep(0) and
-- negative durations without yielding, math.huge, NaN, timer cancellation
-- when a sleep loses a choice, cancellation by the scope.
local t = require 'tap'
local fibers = require 'fibers'
local op = require 'fibers.op'
local sleep = require 'fibers.sleep'
local scope = require 'fibers.scope'
local runtime = require 'fibers.runtime'

local sched = runtime.current_scheduler
local monotime = runtime.monotime
local pack = t.pack
local pcall = scope._pcall  -- yield-safe on Lua 5.1

local function timers() local _, n = sched:counts(); return n end

-- argument checks
t.raises(function() sleep.sleep_op(0 / 0) end, "sleep_op: duration is NaN", "NaN duration raises")
t.raises(function() sleep.sleep_until_op(0 / 0) end, "sleep_until_op: deadline is NaN", "NaN deadline raises")
t.raises(function() sleep.sleep_op("1") end, "sleep_op: expected number, got string", "non-number raises")
t.raises(function() sleep.sleep(0 / 0) end, "sleep: duration is NaN", "sleep(NaN) raises")
t.is(getmetatable(sleep.sleep_op(1)), op.Op, "sleep_op builds an Op")

-- virtual time: a sleeper due at t has run when run(t) returns
do
  local woke = {}
  local t0 = monotime()
  runtime.spawn_raw(function() op.perform_raw(sleep.sleep_op(10)); woke[#woke + 1] = "a" end)
  runtime.spawn_raw(function() op.perform_raw(sleep.sleep_until_op(t0 + 5)); woke[#woke + 1] = "b" end)
  sched:run(t0)       -- fibers start and block
  t.is(timers(), 2, "two timers armed")
  sched:run(t0 + 4.9)
  t.is_deeply(woke, {}, "nothing due before 5 s")
  sched:run(t0 + 5.0)
  t.is_deeply(woke, { "b" }, "sleep_until(t0+5) has run when run(t0+5) returns")
  sched:run(t0 + 9.0)
  t.is_deeply(woke, { "b" }, "sleep_op(10) not due at +9")
  sched:run(t0 + 20)
  t.is_deeply(woke, { "b", "a" }, "sleep_op(10) due by +20")
  t.is(timers(), 0, "no timers left")
end

-- losing sleeps cancel their timers; math.huge arms none
do
  local res
  runtime.spawn_raw(function()
    res = pack(op.perform_raw(op.choice(sleep.sleep_op(100), op.always("now"))))
  end)
  sched:run()
  t.is_deeply(res, { n = 1, "now" }, "ready arm beats a sleep in the try phase")
  t.is(timers(), 0, "no timer armed when the try phase wins")
  local m = {}
  local mop = op.new_primitive(nil, function() return false end, function(s, tok) m.s, m.tok = s, tok end)
  runtime.spawn_raw(function()
    res = pack(op.perform_raw(op.choice(sleep.sleep_op(100), sleep.sleep_op(math.huge), mop)))
  end)
  sched:run()
  t.is(timers(), 1, "one timer while blocked (math.huge arms none)")
  m.s:complete(m.tok, "done")
  sched:run()
  t.is_deeply(res, { n = 1, "done" }, "other arm won")
  t.is(timers(), 0, "the losing sleep's timer was cancelled")
end

-- real time: sleep(0)/negative do not yield; deadlines at perform time;
-- lower bound exact, upper bound generous
do
  local res = pack(pcall(fibers.run, function(s)
    local other = false
    fibers.spawn(function() other = true end)
    sleep.sleep(0)
    sleep.sleep(-1)
    local before = other
    local o = sleep.sleep_op(0.1)
    local t0 = monotime()
    while monotime() - t0 < 0.15 do end  -- the op is not performed yet
    local t1 = monotime()
    fibers.perform(o)
    local slept = monotime() - t1
    local t2 = monotime()
    sleep.sleep(0.05)
    local s2 = monotime() - t2
    local t3 = monotime()
    sleep.sleep_until(t3 + 0.05)
    local s3 = monotime() - t3
    return before, other, slept, s2, s3
  end))
  t.is(res[1], true, "run ok")
  t.is(res[2], false, "sleep(0) and sleep(-1) return without yielding")
  t.is(res[3], true, "other fibers ran later")
  t.ok(res[4] >= 0.1 and res[4] < 2.1, "sleep_op deadline computed at perform time (" .. tostring(res[4]) .. ")")
  t.ok(res[5] >= 0.05 and res[5] < 2.05, "sleep(0.05) lower bound")
  t.ok(res[6] >= 0.05 and res[6] < 2.05, "sleep_until lower bound")
end

-- scope cancellation interrupts sleeps; timers go away
do
  local res = pack(pcall(fibers.run, function(s)
    local c = s:child()
    local got = {}
    c:spawn(function()
      local ok, e = pcall(sleep.sleep, 100)
      got[1] = scope.cancel_reason(e)
    end)
    c:spawn(function()
      got[2] = pack(c:try(sleep.sleep_op(100)))
    end)
    sleep.sleep(0.01)
    local armed = timers()
    c:cancel("wake up")
    op.perform_raw(c:join_op())
    return got, armed, timers()
  end))
  t.is_deeply(res[2], { "wake up", { n = 2, "cancelled", "wake up" } }, "cancel interrupts sleep and try(sleep_op)")
  t.is(res[3], 2, "both sleepers had timers")
  t.is(res[4], 0, "their timers were cancelled")
end

t.raises(function() sleep.sleep(1) end, "must be called from inside a fiber", "sleep outside a fiber raises")

t.done()
