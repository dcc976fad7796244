-- fibers.testing - helpers for testing code built on fibers.
--
-- run_virtual(fn, ...) runs fn(scope, ...) exactly as fibers.run does
-- (same arguments, results, errors and teardown), but on a virtual clock:
--   * the clock starts at 0 and stands still while fibers run;
--   * when every fiber is blocked and nothing but a timer can wake one (no
--     fd wait pending: no stream or socket read/write, no process exit
--     wait), the clock jumps straight to the next timer's deadline instead
--     of sleeping; a pending signal wait does not stop the jump (a signal
--     that has arrived is still delivered first);
--   * while some fd wait is pending the loop really waits, and the clock
--     advances by the real time waited, so timeouts raced against I/O
--     still fire.
-- Everything that reads the scheduler's clock follows it: fibers.now(),
-- runtime.monotime(), sleep/sleep_op/sleep_until, alarm intervals, and
-- the timeouts built from them.  The wall clock (alarm.realtime, os.time)
-- is not virtual: give alarms a fake time source if they must agree.
-- The clock is back to real time when run_virtual returns or raises.
local fibers = require 'fibers'
local runtime = require 'fibers.runtime'
local sys = require('fibers.core').sys

local unpack = table.unpack or unpack

local M = {}

local function pack(...) return { n = select('#', ...), ... } end

-- run_virtual(fn, ...) -> the results of fn, as fibers.run.
function M.run_virtual(fn, ...)
  if runtime.current_fiber() then
    error("fibers.testing.run_virtual must not be called from inside a fiber", 2)
  end
  if type(fn) ~= "function" then
    error("fibers.testing.run_virtual: expected function, got " .. type(fn), 2)
  end
  if sys.is_virtual() then
    error("fibers.testing.run_virtual: the virtual clock is already running", 2)
  end
  sys.virtual_clock(0)
  local r = pack(pcall(fibers.run, fn, ...))
  sys.virtual_clock(nil)
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

-- is_virtual() -> true while run_virtual is running.
M.is_virtual = sys.is_virtual

return M
