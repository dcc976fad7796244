-- bench/sleep1ms.lua - doc/quality.md §2 "1 ms sleeps, 1000 times": mean and
-- p99 oversleep (elapsed - 1 ms, fresh wall-clock reads around each
-- sleep).  Reference: a C clock_nanosleep loop (bench/nanosleep, whose
-- output "mean_us p99_us" is passed in NANOSLEEP_REF by bench/run.sh).
local fibers = require 'fibers'
local sleep = require 'fibers.sleep'
local B = require 'common'

local N = B.n(1000)
local rm, rp = (os.getenv("NANOSLEEP_REF") or ""):match("^%s*(%S+)%s+(%S+)")
rm, rp = tonumber(rm) or 0, tonumber(rp) or 0

local over = {}
fibers.run(function()
  sleep.sleep(0.001)
  for i = 1, N do
    local t0 = B.clock()
    sleep.sleep(0.001)
    over[i] = (B.clock() - t0 - 0.001) * 1e6
  end
end)
local sum = 0
for i = 1, N do sum = sum + over[i] end
table.sort(over)
local p99 = over[math.max(1, math.ceil(N * 0.99))]
B.report("sleep1ms_mean", N, sum / N, "us", rm)
B.report("sleep1ms_p99", N, p99, "us", rp)
