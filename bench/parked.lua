-- bench/parked.lua - doc/quality.md §2 "parked": 10^5 fibers each calling
-- cond:wait() directly from its function; bytes per fiber from
-- collectgarbage('count') deltas.  Reference: bare coroutines parked in
-- coroutine.yield.
local fibers = require 'fibers'
local cond = require 'fibers.cond'
local sleep = require 'fibers.sleep'
local B = require 'common'

local N = B.n(100000)

-- reference
local h0 = B.heap()
local cos = B.parked_coroutines(N)
local ref = (B.heap() - h0) / N
cos = nil

local per
fibers.run(function()
  local c = cond.new()
  local function waiter() c:wait() end
  sleep.sleep(0.001)
  local m0 = B.heap()
  for _ = 1, N do fibers.spawn(waiter) end
  sleep.sleep(0.001)   -- every waiter has run and parked
  sleep.sleep(0.001)
  per = (B.heap() - m0) / N
  c:signal()
end)
B.report("parked", N, per, "B/fiber", ref)
