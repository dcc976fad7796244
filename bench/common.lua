-- bench/common.lua - helpers shared by the library benchmarks (doc/quality.md
-- §2): a fresh wall clock, the one-line report format, memory readings.
-- Uses only the public API (fibers.alarm.realtime is the public fresh
-- CLOCK_REALTIME read), so the scripts run under lua5.4 and luajit alike.
local alarm = require 'fibers.alarm'

local M = {}

-- Fresh wall-clock read in seconds (float).
M.clock = alarm.realtime

-- Scale factor: BENCH_SCALE=0.1 shrinks every n (quick smoke runs).
local scale = tonumber(os.getenv("BENCH_SCALE") or "") or 1

-- n scaled by BENCH_SCALE (at least 1).
function M.n(n)
  local v = math.floor(n * scale + 0.5)
  if v < 1 then v = 1 end
  return v
end

local function num(x)
  if x == math.floor(x) and math.abs(x) < 1e15 then return string.format("%d", x) end
  return string.format("%.4g", x)
end

-- Print the machine-readable line: bench=NAME n=N value=X unit=U ref=R ratio=X/R
function M.report(name, n, value, unit, ref)
  local ratio = (ref and ref ~= 0) and value / ref or 0
  io.stdout:write(string.format("bench=%s n=%d value=%s unit=%s ref=%s ratio=%.3f\n",
    name, n, num(value), unit, num(ref or 0), ratio))
  io.stdout:flush()
end

-- n bare coroutines, each parked in a yield, in a table (the reference
-- of the parked case and the floor of the timers case).
function M.parked_coroutines(n)
  local cos = {}
  local function park() coroutine.yield() end
  for i = 1, n do
    local c = coroutine.create(park)
    coroutine.resume(c)
    cos[i] = c
  end
  return cos
end

-- Lua heap in bytes after a full collection.
function M.heap()
  collectgarbage(); collectgarbage()
  return collectgarbage("count") * 1024
end

-- Resident set size in KiB from /proc/self/status (nil if unavailable).
function M.rss_kb()
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- Time fn() (no arguments) with the wall clock; returns seconds.
function M.time(fn)
  local t0 = M.clock()
  fn()
  return M.clock() - t0
end

return M
