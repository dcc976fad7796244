-- tests/lua/oneshot.lua - fibers.oneshot (doc/library.md §8): thunks run once,
-- in order, then after_cb; cancel functions; late waiters; bounded memory.
local t = require 'tap'
local fx = require 'fixture'
local oneshot = require 'fibers.oneshot'

t.raises(function() oneshot.new(42) end, "after_cb must be a function", "new(non-function) raises")
t.raises(function() oneshot.new():add_waiter("x") end, "expected a function", "add_waiter(non-function) raises")

do
  local log = {}
  local o = oneshot.new(function() log[#log + 1] = "after" end)
  t.is(o:is_triggered(), false, "fresh oneshot is not triggered")
  o:add_waiter(function() log[#log + 1] = "a" end)
  local cancel_b = o:add_waiter(function() log[#log + 1] = "b" end)
  o:add_waiter(function() log[#log + 1] = "c" end)
  cancel_b()
  cancel_b()
  t.is_deeply(log, {}, "nothing runs before signal")
  o:signal()
  t.is_deeply(log, { "a", "c", "after" }, "waiters in order, cancelled one skipped, then after_cb")
  t.ok(o:is_triggered(), "triggered after signal")
  o:signal()
  t.is_deeply(log, { "a", "c", "after" }, "signal is idempotent")
  local cancel = o:add_waiter(function() log[#log + 1] = "late" end)
  t.is_deeply(log, { "a", "c", "after", "late" }, "a late waiter runs at once")
  t.is(type(cancel), "function", "and still gets a cancel function")
  cancel()
end

-- cancelling after the signal is harmless; waiters added during signal run at once
do
  local log = {}
  local o = oneshot.new()
  local cancel
  o:add_waiter(function()
    log[#log + 1] = "first"
    o:add_waiter(function() log[#log + 1] = "nested" end)
  end)
  cancel = o:add_waiter(function() log[#log + 1] = "second" end)
  o:signal()
  cancel()
  t.is_deeply(log, { "first", "nested", "second" }, "nested add during signal runs immediately")
end

-- an error in a thunk propagates; the oneshot stays triggered
do
  local o = oneshot.new()
  o:add_waiter(function() error("boom", 0) end)
  local ok, err = pcall(o.signal, o)
  t.is(ok, false, "thunk error propagates out of signal")
  t.is(err, "boom", "with its message")
  t.ok(o:is_triggered(), "oneshot is triggered anyway")
end

-- add/cancel loops keep memory bounded
do
  local o = oneshot.new()
  local keep = o:add_waiter(function() end)
  local mem = {}
  for i = 1, 100000 do
    local c = o:add_waiter(function() end)
    c()
    if i == 10000 or i == 100000 then
      fx.sample_mem(mem)
    end
  end
  t.ok(mem[2] - mem[1] < 16, ("memory flat over 10^5 add/cancel (%.1f -> %.1f KB)"):format(mem[1], mem[2]))
  local ran = 0
  o:add_waiter(function() ran = ran + 1 end)
  o:signal()
  t.is(ran, 1, "only live waiters run after compaction")
  keep()
end

t.done()
