-- tests/lua/testing.lua - fibers.testing.run_virtual: the virtual clock.
-- Jumps to the next timer when only timers can wake a fiber (every sleep
-- path: the C fast paths and the Lua ones), exact arithmetic from 0, real
-- I/O and process waits stop the jumps (signal waits do not), alarms
-- measure their interval on
-- it, scope timeouts follow it, deadlocks are still reported, and the real
-- clock is back afterwards.
local t = require 'tap'
local fibers = require 'fibers'
local op = require 'fibers.op'
local runtime = require 'fibers.runtime'
local sleep = require 'fibers.sleep'
local chan = require 'fibers.channel'
local alarm = require 'fibers.alarm'
local file = require 'fibers.io.file'
local exec = require 'fibers.exec'
local testing = require 'fibers.testing'

local unpack = table.unpack or unpack
-- real time for the generous bounds (the wall clock is never virtual)
local monotime_real = alarm.realtime

t.raises(function() testing.run_virtual() end, "expected function, got nil",
  "run_virtual(nil) raises")
t.is(testing.is_virtual(), false, "not virtual outside run_virtual")

-- the clock starts at 0 and moves only by jumps: exact arithmetic
local got = t.pack(testing.run_virtual(function(_, a, b)
  local out = { testing.is_virtual(), fibers.now(), runtime.monotime() }
  sleep.sleep(3600)                                 -- C fast path (5.4)
  out[#out + 1] = fibers.now()
  fibers.perform(sleep.sleep_op(60))               -- C perform (5.3+)
  out[#out + 1] = fibers.now()
  op.perform_raw(sleep.sleep_op(1.5))              -- Lua perform
  out[#out + 1] = fibers.now()
  sleep.sleep_until(4000)
  out[#out + 1] = runtime.monotime()
  out[#out + 1] = a + b
  return unpack(out)
end, 1, 2))
t.is_deeply(got, { n = 8, true, 0, 0, 3600, 3660, 3661.5, 4000, 3 },
  "now() starts at 0; sleep, perform(sleep_op), perform_raw, sleep_until jump exactly")
t.is(testing.is_virtual(), false, "real clock again after run_virtual")

t.raises(function()
  fibers.run(function() testing.run_virtual(function() end) end)
end, "must not be called from inside a fiber", "run_virtual inside a fiber raises")

-- 10,000 fibers sleep one hour each: done at once, exactly 3600 later
do
  local w0 = monotime_real()
  local n, wrong = 0, 0
  local elapsed = testing.run_virtual(function()
    local t0 = fibers.now()
    fibers.run_scope(function(s)
      for _ = 1, 10000 do
        s:spawn(function()
          local a = fibers.now()
          sleep.sleep(3600)
          if fibers.now() - a ~= 3600 then wrong = wrong + 1 end
          n = n + 1
        end)
      end
    end)
    return fibers.now() - t0
  end)
  local wall = monotime_real() - w0
  t.is(n, 10000, "10,000 fibers slept one hour")
  t.is(wrong, 0, "each saw the clock advance by exactly 3600")
  t.is(elapsed, 3600, "the virtual clock advanced by exactly 3600")
  t.ok(wall < 10, "in well under 10 s of real time (" .. wall .. " s)")
end

-- choices, timeouts and scopes follow the virtual clock
got = t.pack(testing.run_virtual(function()
  local out = {}
  out[1] = fibers.named_choice{ long = sleep.sleep_op(10), short = sleep.sleep_op(5) }
  out[2] = fibers.now()
  local ch = chan.new()
  out[3] = fibers.named_choice{ get = ch:get_op(), timeout = sleep.sleep_op(30) }
  out[4] = fibers.now()
  local st, err = fibers.run_scope(function(s)
    s:spawn(function() sleep.sleep(1e6) end)
    sleep.sleep(100)
    s:cancel("timed out")
  end)
  out[5], out[6], out[7] = st, err, fibers.now()
  out[8] = fibers.named_choice{
    work = fibers.run_scope_op(function() sleep.sleep(500) end),
    timeout = sleep.sleep_op(60),
  }
  out[9] = fibers.now()
  return out
end))
t.is_deeply(got[1], { "short", 5, "timeout", 35, "cancelled", "timed out", 135, "timeout", 195 },
  "sleep_op choices, a channel timeout and scope timeouts follow the virtual clock")

-- a deadlock is still a deadlock
t.raises(function()
  testing.run_virtual(function() chan.new():get() end)
end, "deadlock", "a fiber blocked forever on a channel: deadlock error")
t.is(testing.is_virtual(), false, "real clock again after a raising run_virtual")

-- real I/O stops the jumps: a timeout raced against a pipe nobody writes
-- fires after the real time, and data that comes in real time wins
do
  local w0 = monotime_real()
  got = t.pack(testing.run_virtual(function()
    local r, w = assert(file.pipe())
    local out = {}
    out[1] = fibers.named_choice{ line = r:read_line_op(), timeout = sleep.sleep_op(0.2) }
    out[2] = fibers.now()
    fibers.spawn(function()
      sleep.sleep(0.1)     -- in real time: the read is pending
      w:write_string("hi\n"); w:flush()
    end)
    out[3] = fibers.named_choice{ line = r:read_line_op(), timeout = sleep.sleep_op(1000) }
    r:close(); w:close()
    return out
  end))
  local o = got[1]
  t.is(o[1], "timeout", "a timeout raced with a pending read still fires")
  t.ok(o[2] >= 0.2 and o[2] < 60, "after real time, not a jump (" .. tostring(o[2]) .. ")")
  t.is(o[3], "line", "pending I/O stops a jump past it")
  t.ok(monotime_real() - w0 < 30, "real time spent is bounded")
end

-- a process wait stops the jumps: the exit of `sleep 0.3` beats a 100 s
-- timeout, and the virtual clock advanced by the real time waited
got = t.pack(testing.run_virtual(function()
  local cmd = exec.command{ "sleep", "0.3" }
  local which, st, code = fibers.named_choice{ exit = cmd:run_op(), timeout = sleep.sleep_op(100) }
  return which, st, code, fibers.now()
end))
t.is_deeply({ got[1], got[2], got[3] }, { "exit", "exited", 0 },
  "a process exit beats a long timeout (jumps stop while it runs)")
t.ok(got[4] > 0 and got[4] < 60, "the clock moved by the real time waited, no jump (" .. tostring(got[4]) .. ")")

-- a pending signal wait does not stop the jumps (signals are rare events
-- from outside), and a signal that arrives is still delivered
local signal = require 'fibers.signal'
got = t.pack(testing.run_virtual(function()
  local usr1 = signal.signal_op('USR1')
  local out = {}
  out[1] = fibers.named_choice{ sig = usr1, timeout = sleep.sleep_op(3600) }
  out[2] = fibers.now()
  local which, st = fibers.named_choice{
    exit = exec.command{ "sh", "-c", "kill -USR1 $PPID" }:run_op(),
    timeout = sleep.sleep_op(3600),
  }
  out[3], out[4] = which, st
  out[5] = fibers.named_choice{ sig = usr1, timeout = sleep.sleep_op(3600) }
  out[6] = fibers.now() < 3660
  return out
end))
t.is_deeply(got[1], { "timeout", 3600, "exit", "exited", "sig", true },
  "a pending signal wait lets the clock jump; a signal sent is delivered")

-- alarms measure their interval on the virtual clock, with a coarse fake
-- wall clock (1 s resolution) that follows it
local WALL0 = 600000
alarm.set_time_source(function() return WALL0 + math.floor(runtime.monotime()) end)
got = t.pack(testing.run_virtual(function()
  local out = {}
  -- every 10 minutes on the 10-minute boundary
  local a = alarm.new{ next_time = function(_, now) return (math.floor(now / 600) + 1) * 600 end }
  for i = 1, 3 do
    local ok, _, epoch = a:wait()
    out[#out + 1] = { ok, epoch, fibers.now() }
    if i == 3 then a:cancel() end
  end
  -- 0.1 s ahead of a wall time that reads 0.55 s late (coarse clock)
  sleep.sleep(0.55)
  local t0 = fibers.now()
  local b = alarm.new{ next_time = function(last, now) if not last then return now + 0.1 end end }
  local ok, _, epoch = b:wait()
  out[#out + 1] = { ok, math.abs(epoch - WALL0 - 1800.1) < 1e-6, math.abs(fibers.now() - t0 - 0.1) < 1e-9 }
  return out
end))
t.is_deeply(got[1], {
  { true, WALL0 + 600, 600 }, { true, WALL0 + 1200, 1200 }, { true, WALL0 + 1800, 1800 },
  { true, true, true },
}, "alarms fire on the virtual clock, 0.1 s ahead of a coarse wall clock in 0.1 s")

-- fibers.run is on the real clock again
got = t.pack(fibers.run(function()
  local a = fibers.now()
  sleep.sleep(0.01)
  return fibers.now() - a
end))
t.ok(got[1] >= 0.01 and got[1] < 5, "fibers.run after run_virtual sleeps in real time")

t.done()
