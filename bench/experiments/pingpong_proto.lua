-- bench/experiments/pingpong_proto.lua - drives pingpong_proto.c (see
-- there): the ping-pong body of bench/pingpong.lua on the C-struct
-- prototype, with the same reference (a bare resume/yield pair).
local P = require 'pingpong_proto'
local N = tonumber(os.getenv("N") or "") or 1000000
local clock = os.clock

local co = coroutine.wrap(function() while true do coroutine.yield() end end)
local t0 = clock()
for _ = 1, N do co() end
local ref = (clock() - t0) / N * 1e6

local ch = P.chan()
local per
P.spawn(function() for i = 1, N do ch:put(i) end end)
P.spawn(function()
  local t1 = clock()
  for i = 1, N do assert(ch:get() == i) end
  per = (clock() - t1) / N * 1e6
end)
P.run()
print(string.format("bench=pingpong_proto n=%d value=%.4g unit=us/msg ref=%.4g ratio=%.3f",
  N, per, ref, per / ref))
