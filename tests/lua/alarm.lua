-- tests/lua/alarm.lua - fibers.alarm (doc/library.md §10) on virtual time: a
-- fake wall clock (set_time_source) and synthetic scheduler turns
-- (current_scheduler:run(t)).  Firing values, recurrence end, clock steps
-- with time_changed(), cancel, losing waits, scope/timeout cancellation.
local t = require 'tap'
local fx = require 'fixture'
local fibers = require 'fibers'
local op = require 'fibers.op'
local runtime = require 'fibers.runtime'
local alarm = require 'fibers.alarm'
local sleep = require 'fibers.sleep'
local chan = require 'fibers.channel'

local unpack = fx.unpack
local sched = runtime.current_scheduler
local perform = op.perform_raw

t.raises(function() alarm.new() end, "next_time", "new() without a spec raises")
t.raises(function() alarm.new{ next_time = 5 } end, "next_time", "next_time must be a function")
t.raises(function() alarm.set_time_source("x") end, "expected a function", "set_time_source(non-function) raises")
local rt = alarm.realtime()
t.ok(type(rt) == "number" and math.abs(rt - os.time()) < 2, "alarm.realtime() is the epoch time")

-- Real time, before any time source: alarms never fire; waits are
-- cancellable by a timeout and by their scope.
local early = alarm.new{ next_time = function() return 0 end, label = "early" }
local res = t.pack(fibers.run(function()
  local out = {}
  out[#out + 1] = fibers.named_choice{ alarm = early:wait_op(), timeout = sleep.sleep_op(0.03) }
  local st, err = fibers.run_scope(function(s)
    s:spawn(function() early:wait(); out[#out + 1] = "should not run" end)
    sleep.sleep(0.01)
    s:cancel("off")
  end)
  out[#out + 1] = st
  out[#out + 1] = err
  return unpack(out)
end))
t.is_deeply(res, { n = 3, "timeout", "cancelled", "off" },
  "no firing before set_time_source (epoch-0 alarm); timeout and scope cancel a wait")

---------------------------------------------------------------------------
-- Virtual time from here on: `epoch` is the fake wall clock and `mono`
-- the synthetic scheduler time; advance() moves both.
local epoch = 1000
local mono = sched:now() + 1000
local function advance(d_epoch, d_mono)
  epoch = epoch + d_epoch
  mono = mono + (d_mono or d_epoch)
  sched:run(mono)
  sched:run(mono)   -- fibers completed by a timer task may resume a turn later
end
local function collector(a, log)
  return runtime.spawn_raw(function()
    while true do
      local r = t.pack(perform(a:wait_op()))
      log[#log + 1] = r
    end
  end)
end

-- three firings every 10 s from 1010, then the end of recurrences
local calls = {}
local a = alarm.new{ label = "tri", next_time = function(last, now)
  calls[#calls + 1] = { last or "nil", now }
  if last == nil then return 1010 end
  if last < 1030 then return last + 10 end
  return nil
end }
local log = {}
collector(a, log)
advance(0)
advance(20, 20)
t.is(#log, 0, "blocked before the time source is set, even past the first time")
epoch = 1000
alarm.set_time_source(function() return epoch end)
t.raises(function() alarm.set_time_source(function() return 0 end) end, "already set",
  "set_time_source is once only")
t.is_deeply(calls, { { "nil", 1000 } }, "next_time(nil, now) asked when the source is set")
advance(0)
advance(9.5)
t.is(#log, 0, "not fired at 1009.5")
advance(0.5)
t.is(#log, 1, "fired once at 1010")
t.is_deeply(log[1], { n = 3, true, a, 1010 }, "yields true, alarm, fired_epoch")
advance(9.5)
t.is(#log, 1, "not fired at 1019.5")
advance(0.5); advance(10)
t.is(#log, 4, "three firings by 1030, then at once the end")
t.is_deeply({ log[2][3], log[3][3] }, { 1020, 1030 }, "at 1020 and 1030")
t.is_deeply(log[4], { n = 4, false, "no_more_recurrences", a, 1030 },
  "then false, no_more_recurrences, alarm, last_fired")
advance(100); advance(100)
t.is(#log, 4, "then never again")
t.is(a:is_active(), false, "no longer active")
t.is_deeply(calls[2], { 1010, 1010 }, "next_time(last_fired, now) after a firing")

-- clock steps: calendar-like recurrence (every 100 s on the hundred)
local function hundreds(_, now) return (math.floor(now / 100) + 1) * 100 end
epoch = 1950
local b = alarm.new{ next_time = hundreds, label = "h" }
local blog = {}
collector(b, blog)
advance(0)
t.ok(b:is_active(), "active alarm")
t.is(b:next_fire_time(), 2000, "next firing at 2000")
-- wall clock steps back 500 s (to 1450) and nobody says so: the interval
-- (50 s) runs on the monotonic clock, so the firing comes on time
epoch = epoch - 500
advance(49)
t.is(#blog, 0, "an unsignalled clock step: not before the interval")
advance(1)
t.is(#blog, 1, "an unsignalled clock step: fired after the interval")
t.is(blog[1] and blog[1][3], 2000, "with its firing time (2000)")
t.is(b:next_fire_time(), 1600, "next firing from the wall clock (1500 -> 1600)")
-- steps signalled with time_changed() recompute the pending firing
epoch = epoch - 50
alarm.time_changed()
t.is(b:next_fire_time(), 1500, "time_changed recomputes a not-yet-due firing")
advance(0)
advance(49)
t.is(#blog, 1, "not before the recomputed time")
advance(1)
t.is(#blog, 2, "fired at the recomputed time")
t.is(blog[2] and blog[2][3], 1500, "fired_epoch 1500")
t.is(b:next_fire_time(), 1600, "next firing 1600")
-- wall clock jumps forward 1000 s, past the pending firing (1600):
-- time_changed recomputes it too, nothing fires at once with the old time
epoch = epoch + 1000
alarm.time_changed()
t.is(b:next_fire_time(), 2600, "time_changed recomputes a firing the new time passed (1600 -> 2600)")
advance(0)
advance(0)
t.is(#blog, 2, "no firing at once after a forward jump")
advance(99)
t.is(#blog, 2, "not before the recomputed time")
advance(1)
t.is(#blog, 3, "fired at the recomputed time")
t.is(blog[3] and blog[3][3], 2600, "fired_epoch 2600")

-- cancel: one waiter gets false, "cancelled", then never
b:cancel()
advance(0); advance(0)
t.is_deeply(blog[4], { n = 4, false, "cancelled", b, 2600 }, "cancel wakes the waiter with false, cancelled")
advance(1000); advance(0)
t.is(#blog, 4, "nothing after cancel")
t.is(b:is_active(), false, "cancelled alarm is inactive")

-- a wall clock that does not advance (a test's fake clock, or a coarse
-- one between its ticks): the alarm fires once its interval has passed
-- on the monotonic clock
do
  local frozen = alarm.new{ label = "frozen", next_time = function(last, now)
    if last == nil then return now + 5 end
    return last + 0.25
  end }
  local flog = {}
  collector(frozen, flog)
  local e0 = epoch
  advance(0, 0)
  advance(0, 4.9)
  t.is(#flog, 0, "frozen wall clock: not before 5 s of monotonic time")
  advance(0, 0.1)
  t.is(#flog, 1, "frozen wall clock: fired after 5 s of monotonic time")
  t.is_deeply(flog[1], { n = 3, true, frozen, e0 + 5 }, "with its firing time")
  -- next: e0 + 5.25 computed at wall time e0, so 5.25 s from the firing
  advance(0, 5.2)
  t.is(#flog, 1, "the next interval is computed from the wall time")
  advance(0, 0.05)
  t.is(#flog, 2, "and fires when it has passed")
  t.is(flog[2] and flog[2][3], e0 + 5.25, "with its firing time")
  frozen:cancel()
  advance(0); advance(0)
end

-- a wait that loses a choice does not consume a firing, and leaves no timer
local c = alarm.new{ next_time = function(last, now) return (last or now) + 5 end }
local ch = chan.new()
local won
runtime.spawn_raw(function()
  won = t.pack(perform(op.choice(c:wait_op(), ch:get_op():wrap(function(v) return "chan", v end))))
end)
runtime.spawn_raw(function() perform(ch:put_op("x")) end)
advance(0); advance(0)
t.is_deeply(won, { n = 2, "chan", "x" }, "channel arm won")
t.is(sched:next_wake_time() == nil or sched:next_wake_time() == math.huge
  or sched:next_wake_time() > mono + 1e6, true, "the losing alarm wait cancelled its timer")
advance(5)
local r
runtime.spawn_raw(function() r = t.pack(perform(c:wait_op())) end)
advance(0)
t.is_deeply(r, { n = 3, true, c, epoch }, "the firing is still there for the next waiter")

-- an error raised by next_time reaches the waiting fiber, after the firing
do
  local n = 0
  local e = alarm.new{ next_time = function(_, now)
    n = n + 1
    if n > 1 then error("bad recurrence", 0) end
    return now + 1
  end }
  local got = {}
  runtime.spawn_raw(function()
    got[1] = t.pack(perform(e:wait_op()))
    got[2] = t.pack(pcall(perform, e:wait_op()))
  end)
  advance(0)
  advance(1)
  t.is_deeply(got[1], { n = 3, true, e, epoch }, "the firing is delivered")
  t.is_deeply(got[2], { n = 2, false, "bad recurrence" }, "then next_time's error is raised in the waiter")
end

-- bounded memory over 10^5 losing alarm waits
do
  local d = alarm.new{ next_time = function(_, now) return now + 3600 end }
  local tick = chan.new()
  local mem = {}
  runtime.spawn_raw(function()
    for i = 1, 100000 do
      perform(op.choice(d:wait_op(), tick:get_op()))
      if i == 10000 or i == 100000 then
        fx.sample_mem(mem)
      end
    end
  end)
  runtime.spawn_raw(function() for _ = 1, 100000 do perform(tick:put_op(1)) end end)
  local guard = 0
  while #mem < 2 and guard < 400000 do sched:run(mono); guard = guard + 1 end
  t.ok(#mem == 2 and mem[2] - mem[1] < 64,
    ("memory flat over 9*10^4 losing alarm waits (%.1f -> %.1f KB)"):format(mem[1] or -1, mem[2] or -1))
end

t.done()
