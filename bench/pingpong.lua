-- bench/pingpong.lua - doc/quality.md §2 "ping-pong": two fibers, one
-- unbuffered channel; one message = one put -> get hand-off.
-- Reference: a bare coroutine.resume/yield pair in plain Lua.
local fibers = require 'fibers'
local chan = require 'fibers.channel'
local B = require 'common'

local N = B.n(1000000)

-- reference: resume/yield pairs
local co = coroutine.wrap(function() while true do coroutine.yield() end end)
local ref = B.time(function() for _ = 1, N do co() end end) / N * 1e6

local per
fibers.run(function()
  local ch = chan.new()
  fibers.spawn(function() for i = 1, N do ch:put(i) end end)
  local t0 = B.clock()
  for _ = 1, N do ch:get() end
  per = (B.clock() - t0) / N * 1e6
end)
B.report("pingpong", N, per, "us/msg", ref)
