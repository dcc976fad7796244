-- bench/spawn.lua - doc/quality.md §2 "spawn": 10^6 fibers that return at once,
-- then the scope joins.  Reference: coroutine.create + resume of an empty
-- function.
local fibers = require 'fibers'
local B = require 'common'

local N = B.n(1000000)
local function noop() end

local ref = B.time(function()
  for _ = 1, N do coroutine.resume(coroutine.create(noop)) end
end) / N * 1e6

local per
fibers.run(function()
  local t0 = B.clock()
  local st = fibers.run_scope(function(s)
    for _ = 1, N do s:spawn(noop) end
  end)
  per = (B.clock() - t0) / N * 1e6
  assert(st == "ok", st)
end)
B.report("spawn", N, per, "us/fiber", ref)
