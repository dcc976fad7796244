-- tests/lua/waitgroup.lua - fibers.waitgroup (doc/library.md §8): counter,
-- negative counter error, wait wakes on zero, reuse, cancellation.
local t = require 'tap'
local fx = require 'fixture'
local fibers = require 'fibers'
local op = require 'fibers.op'
local runtime = require 'fibers.runtime'
local waitgroup = require 'fibers.waitgroup'
local sleep = require 'fibers.sleep'

local unpack, turns = fx.unpack, fx.turns
local perform = op.perform_raw

do
  local wg = waitgroup.new()
  t.raises(function() wg:done() end, "waitgroup counter goes negative", "done on zero raises")
  t.raises(function() wg:add(-2) end, "waitgroup counter goes negative", "add(-2) on zero raises")
  t.raises(function() wg:add("1") end, "delta must be a number", "add(non-number) raises")
  t.is(wg:count_value(), 0, "counter unchanged by the failed calls")
  local r
  runtime.spawn_raw(function() r = t.pack(perform(wg:wait_op())) end)
  turns(1)
  t.is_deeply(r, { n = 0 }, "wait on a zero counter returns at once with no values")
end

-- wait blocks until the counter reaches zero; all waiters wake; reusable
do
  local wg = waitgroup.new()
  wg:add(3)
  local log = {}
  for i = 1, 2 do
    runtime.spawn_raw(function() perform(wg:wait_op()); log[#log + 1] = "w" .. i end)
  end
  turns(1)
  wg:done(); wg:done()
  turns(1)
  t.is_deeply(log, {}, "still blocked at count 1")
  wg:done()
  t.is_deeply(log, {}, "no synchronous wake-up")
  turns(1)
  t.is_deeply(log, { "w1", "w2" }, "both waiters woke at zero, in order")
  -- second round
  wg:add(1)
  runtime.spawn_raw(function() perform(wg:wait_op()); log[#log + 1] = "round2" end)
  turns(2)
  t.is_deeply(log, { "w1", "w2" }, "a new round blocks again")
  wg:add(2)
  wg:add(-2)
  turns(1)
  t.is_deeply(log, { "w1", "w2" }, "add(2), add(-2) keeps it at 1")
  wg:done()
  turns(1)
  t.is_deeply(log, { "w1", "w2", "round2" }, "reused wait group wakes the new waiter")
end

-- scope-aware wait(): timeout and scope cancellation; the fan-in pattern
local res = t.pack(fibers.run(function()
  local out = {}
  local wg = waitgroup.new()
  wg:add(1)
  out[#out + 1] = fibers.named_choice{ wait = wg:wait_op(), timeout = sleep.sleep_op(0.02) }
  local st, err = fibers.run_scope(function(s)
    s:spawn(function() wg:wait(); out[#out + 1] = "should not run" end)
    sleep.sleep(0.01)
    s:cancel("bye")
  end)
  out[#out + 1] = st
  out[#out + 1] = err
  wg:done()
  local wg2 = waitgroup.new()
  local sum = 0
  for i = 1, 10 do
    wg2:add(1)
    fibers.spawn(function() sleep.sleep(0.001 * i); sum = sum + i; wg2:done() end)
  end
  wg2:wait()
  out[#out + 1] = sum
  return unpack(out)
end))
t.is_deeply(res, { n = 4, "timeout", "cancelled", "bye", 55 },
  "timeout, scope cancellation, fan-in with wait()")

t.done()
