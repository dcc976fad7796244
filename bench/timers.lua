-- bench/timers.lua - doc/quality.md §2 "timers": 10^5 fibers sleeping uniform
-- 0-100 ms; wall time from the first spawn to the scope's join.
-- Reference: the 0.1 s floor.
--
-- Second line, timers_floor: what any runtime with a coroutine per fiber
-- pays here at least - 10^5 bare coroutines created and parked in a yield
-- (plain Lua, measured after the fibers, on the warm heap they left),
-- plus the 0.1 s the longest sleep takes.  Its reference is the 0.15 s
-- target: a ratio above 1 means no such runtime can meet it here.
local fibers = require 'fibers'
local sleep = require 'fibers.sleep'
local B = require 'common'

local N = B.n(100000)
math.randomseed(42)
local d = {}
for i = 1, N do d[i] = math.random() * 0.1 end

local wall
fibers.run(function()
  local t0 = B.clock()
  fibers.run_scope(function(s)
    for i = 1, N do
      local dt = d[i]
      s:spawn(function() sleep.sleep(dt) end)
    end
  end)
  wall = B.clock() - t0
end)
B.report("timers", N, wall, "s", 0.1)

collectgarbage(); collectgarbage()
local t0 = B.clock()
local parked = B.parked_coroutines(N)
local floor = B.clock() - t0 + 0.1
parked = nil
B.report("timers_floor", N, floor, "s", 0.15)
