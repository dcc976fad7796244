-- tests/lua/cond.lua - fibers.cond (doc/library.md §8): one-shot, idempotent
-- signal that wakes every waiter for the next turn; losing waits; scope and
-- timeout cancellation; bounded memory.
local t = require 'tap'
local fx = require 'fixture'
local fibers = require 'fibers'
local op = require 'fibers.op'
local runtime = require 'fibers.runtime'
local cond = require 'fibers.cond'
local chan = require 'fibers.channel'
local sleep = require 'fibers.sleep'

local unpack, turns = fx.unpack, fx.turns
local perform = op.perform_raw

-- signal wakes all waiters, in the next turn, in wait order
do
  local c = cond.new()
  local log = {}
  for i = 1, 3 do
    runtime.spawn_raw(function()
      local r = t.pack(perform(c:wait_op()))
      log[#log + 1] = i .. ":" .. r.n
    end)
  end
  turns(2)
  t.is_deeply(log, {}, "waiters block until signalled")
  t.is(c:is_triggered(), false, "not triggered yet")
  c:signal()
  t.is_deeply(log, {}, "signal runs nobody synchronously")
  c:signal()
  turns(1)
  t.is_deeply(log, { "1:0", "2:0", "3:0" }, "all waiters woke next turn, in order, with no values")
  t.ok(c:is_triggered(), "triggered")
  local r
  runtime.spawn_raw(function() r = t.pack(perform(c:wait_op())); r.turned = true end)
  turns(1)
  t.is_deeply(r, { n = 0, turned = true }, "wait on a signalled cond returns at once")
  t.ok(c:wait_op() == c:wait_op(), "the wait Op is reusable")
end

-- a wait that loses a choice is not woken later
do
  local c, other = cond.new(), cond.new()
  local res = {}
  runtime.spawn_raw(function()
    res[#res + 1] = perform(op.choice(c:wait_op():wrap(function() return "c" end),
                                      other:wait_op():wrap(function() return "other" end)))
  end)
  turns(1)
  other:signal()
  turns(1)
  c:signal()
  turns(2)
  t.is_deeply(res, { "other" }, "the losing wait was not resumed a second time")
end

-- bounded memory: 10^5 losing waits on a cond that is never signalled
do
  local c = cond.new()
  local tick = chan.new()
  local mem = {}
  local n1, n2 = 10000, 100000
  runtime.spawn_raw(function()
    for i = 1, n2 do
      perform(op.choice(c:wait_op(), tick:get_op()))
      if i == n1 or i == n2 then
        fx.sample_mem(mem)
      end
    end
  end)
  runtime.spawn_raw(function() for _ = 1, n2 do perform(tick:put_op(1)) end end)
  local guard = 0
  while #mem < 2 and guard < 4 * n2 do turns(1); guard = guard + 1 end
  t.ok(#mem == 2 and mem[2] - mem[1] < 64,
    ("memory flat across 9*10^4 losing waits (%.1f KB -> %.1f KB)"):format(mem[1] or -1, mem[2] or -1))
end

-- scope-aware wait(): cancelled by a timeout and by its scope
local res = t.pack(fibers.run(function()
  local out = {}
  local c = cond.new()
  out[#out + 1] = fibers.named_choice{ wait = c:wait_op(), timeout = sleep.sleep_op(0.02) }
  local woke = {}
  local st, err = fibers.run_scope(function(s)
    s:spawn(function() c:wait(); woke[#woke + 1] = "woke" end)
    sleep.sleep(0.02)
    s:cancel("enough")
  end)
  out[#out + 1] = st
  out[#out + 1] = err
  c:signal()
  sleep.sleep(0.01)
  out[#out + 1] = #woke
  -- a direct wait() wakes from a signal by another fiber
  local c2 = cond.new()
  fibers.spawn(function() sleep.sleep(0.01); c2:signal() end)
  local t0 = fibers.now()
  c2:wait()
  out[#out + 1] = fibers.now() - t0 >= 0.01
  return unpack(out)
end))
t.is_deeply(res, { n = 5, "timeout", "cancelled", "enough", 0, true },
  "timeout and scope cancellation of wait(); wait() wakes on signal")

t.done()
