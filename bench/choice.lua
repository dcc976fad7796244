-- bench/choice.lua - doc/quality.md §2 "choice": perform(choice(ch:get_op(),
-- sleep_op(1))) with data always ready (a pre-filled channel).
-- Reference: a plain ready ch:get() on the same kind of channel.
local fibers = require 'fibers'
local chan = require 'fibers.channel'
local sleep = require 'fibers.sleep'
local B = require 'common'

local N = B.n(1000000)
local choice, perform = fibers.choice, fibers.perform

local per, ref
fibers.run(function()
  local a = chan.new(math.huge)
  for i = 1, N do a:put(i) end
  local t0 = B.clock()
  for _ = 1, N do a:get() end
  ref = (B.clock() - t0) / N * 1e6

  local ch = chan.new(math.huge)
  for i = 1, N do ch:put(i) end
  t0 = B.clock()
  for _ = 1, N do perform(choice(ch:get_op(), sleep.sleep_op(1))) end
  per = (B.clock() - t0) / N * 1e6
end)
B.report("choice", N, per, "us/iter", ref)
