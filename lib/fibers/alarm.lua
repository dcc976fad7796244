-- fibers.alarm - wall-clock (epoch) alarms on top of the monotonic
-- scheduler (doc/library.md §10).
--
-- Owns: `new{ next_time = fn(last_fired_or_nil, now_epoch) -> epoch|nil,
-- label? }`, `set_time_source(now_fn)`, `time_changed()`, `realtime`,
-- `alarm:wait_op()`, `alarm:cancel()`, `alarm:is_active()`.
--
-- Model: an alarm has one pending firing: its time `next` (epoch seconds)
-- and `due`, the scheduler time (monotonic) at which it
-- fires.  When a firing is computed - next_time(last, now_epoch) - the
-- interval next - now_epoch is taken once and due = the monotonic time +
-- interval, so the alarm fires on time whatever the resolution of the time
-- source, even with a fake one that never advances.  wait_op is ready when
-- the scheduler's clock reaches `due`: it consumes that firing (yields
-- `true, alarm, fired_epoch`, fired_epoch being `next`); the following one
-- is asked of next_time(fired, now) lazily, at the next wait (or is_active,
-- next_fire_time, time_changed).  next_time errors are raised in the
-- waiting fiber (never into the scheduler).  Firings nobody waits for are
-- not queued: a late waiter gets the overdue firing once and the schedule
-- continues from "now" (missed recurrences coalesce).  When next_time
-- returns nil the next wait yields `false, "no_more_recurrences", alarm,
-- last_fired` once, then never.
-- cancel() (decision, the spec is silent): the next wait yields
-- `false, "cancelled", alarm, last_fired` once, then never; is_active() is
-- false after cancel or once there are no more recurrences.
-- Several fibers waiting on one alarm: each firing wakes one of them.
--
-- A wall-clock step is not seen by itself (the interval runs on the
-- monotonic clock): time_changed() recomputes every pending firing -
-- including one the new wall time already passed, which is not fired with
-- its old time - as next_time(last, now) and re-arms every waiter.  Call
-- it after a clock step (fibersd does).  Before set_time_source no alarm
-- fires; waiters just stay parked and are armed by set_time_source.
local op = require 'fibers.op'
local runtime = require 'fibers.runtime'
local core = require 'fibers.core'

local unpack = table.unpack or unpack
local M = {}

local function pack(...) return { n = select('#', ...), ... } end

local Alarm = {}
Alarm.__index = Alarm

local time_source = nil
local alarms = setmetatable({}, { __mode = "k" })  -- every alarm, for time_changed

local perform
local function get_perform()
  perform = require('fibers').perform
  return perform
end

-- A CLOCK_REALTIME time source (epoch seconds, float) for set_time_source.
M.realtime = core.sys.realtime

-- Create an alarm from a recurrence function (see the header).
function M.new(spec)
  if type(spec) ~= "table" or type(spec.next_time) ~= "function" then
    error("alarm.new: expected { next_time = function, label = ? }", 2)
  end
  local a = setmetatable({
    next_time = spec.next_time,
    label = spec.label,
    state = "active",      -- active | exhausted | cancelled | done
    next = nil,            -- pending firing (epoch), nil until computed
    computed = false,
    last = nil,            -- last fired epoch
    waiters = {},          -- rec -> true (blocked waiters)
  }, Alarm)
  alarms[a] = true
  return a
end

function Alarm:__tostring()
  return "alarm(" .. tostring(self.label or "?") .. ")"
end

local sched = runtime.current_scheduler
local monotime = runtime.monotime

-- The scheduler time alarms are measured on: a fresh read (never stale,
-- whatever the length of the turn or the time since the last one), or the
-- turn time when a caller drives the scheduler with synthetic turns
-- (sched:run(t)) that are ahead of it.
local function clock()
  local a, b = sched:now(), monotime()
  if a > b then return a end
  return b
end

-- Ask the recurrence for the firing after `last` (validating its result)
-- and fix its scheduler time from the interval to it.
local function compute(a, now)
  local t = a.next_time(a.last, now)
  if t ~= nil and (type(t) ~= "number" or t ~= t) then
    error("alarm next_time must return a number or nil", 0)
  end
  a.next, a.computed = t, true
  if t == nil then
    a.state, a.due = "exhausted", nil
  else
    a.due = clock() + (t - now)
  end
end

-- Non-blocking attempt: ready, ...values.
local function step(a)
  local st = a.state
  if st == "cancelled" then
    a.state = "done"
    return true, false, "cancelled", a, a.last
  end
  if st == "done" or not time_source then return false end
  if not a.computed then compute(a, time_source()) end
  if a.state == "exhausted" then
    a.state = "done"
    return true, false, "no_more_recurrences", a, a.last
  end
  if clock() >= a.due then
    -- Consume the firing; the next one is asked for lazily (next wait,
    -- is_active, next_fire_time, time_changed), so an error raised by
    -- next_time surfaces there and never swallows this firing.
    local t = a.next
    a.last, a.next, a.due, a.computed = t, nil, nil, false
    return true, true, a, t
  end
  return false
end

local function disarm(rec)
  if rec.timer then
    sched:cancel_timer(rec.timer)
    rec.timer = nil
  end
end

-- (Re-)arm the scheduler timer of a blocked waiter.
local arm
local function on_timer(rec)
  rec.timer = nil
  local s = rec.s
  if not s:waiting() then
    rec.alarm.waiters[rec] = nil
    return
  end
  local a = rec.alarm
  -- This runs as a scheduler task: an error of next_time must not escape
  -- into the loop; it is raised in the waiting fiber instead.
  local r = pack(pcall(step, a))
  if not r[1] then
    a.waiters[rec] = nil
    s:complete_task(rec.w):cancel(r[2])
  elseif r[2] then
    a.waiters[rec] = nil
    s:complete(rec.w, unpack(r, 3, r.n))
  else
    arm(rec)
  end
end

arm = function(rec)
  disarm(rec)
  local a = rec.alarm
  if a.state == "done" or (not time_source and a.state ~= "cancelled") then return end
  local due
  if a.state == "active" then
    if not a.computed then compute(a, time_source()) end
    if a.state == "active" then due = a.due end
  end
  due = due or clock()          -- cancelled or exhausted: tell at once
  if due == math.huge then return end
  rec.timer = sched:schedule_at_time(due, rec.task)
end

-- The Op for the next firing (see the header for the values it yields).
function Alarm:wait_op()
  local o = self.op
  if o then return o end
  local function try() return step(self) end
  local function block(suspension, wrap)
    local rec = { alarm = self, s = suspension, w = wrap }
    rec.task = { run = function() on_timer(rec) end }
    self.waiters[rec] = true
    arm(rec)
    suspension:add_cleanup(function()
      disarm(rec)
      self.waiters[rec] = nil
    end)
  end
  o = op.new_primitive(nil, try, block)
  self.op = o
  return o
end

-- Block until the next firing (scope-aware); returns wait_op's values.
function Alarm:wait()
  return (perform or get_perform())(self:wait_op())
end

-- Wake the alarm's blocked waiters so they re-check it next turn.
local function rearm_all(a)
  local recs = {}
  for rec in pairs(a.waiters) do recs[#recs + 1] = rec end
  for i = 1, #recs do arm(recs[i]) end
end

-- Cancel the alarm: one waiter gets `false, "cancelled", ...`, then never.
function Alarm:cancel()
  if self.state == "cancelled" or self.state == "done" then return end
  self.state = "cancelled"
  self.next = nil
  rearm_all(self)
end

-- True until the alarm is cancelled or has no more recurrences.
function Alarm:is_active()
  if self.state ~= "active" then return false end
  if time_source and not self.computed then compute(self, time_source()) end
  return self.state == "active"
end

-- The pending firing time (epoch) or nil, for introspection.
function Alarm:next_fire_time()
  if time_source and self.state == "active" and not self.computed then
    compute(self, time_source())
  end
  return self.next
end

-- Recompute every pending firing after a wall-clock step (one already
-- passed included); re-arm waiters.
function M.time_changed()
  if not time_source then return end
  local now = time_source()
  local list = {}
  for a in pairs(alarms) do list[#list + 1] = a end
  for i = 1, #list do
    local a = list[i]
    if a.state == "active" then compute(a, now) end
    rearm_all(a)
  end
end

-- Install the wall-clock source (once); alarms start firing from then on.
function M.set_time_source(now_fn)
  if type(now_fn) ~= "function" then
    error("alarm.set_time_source: expected a function", 2)
  end
  if time_source then error("alarm.set_time_source: time source already set", 2) end
  time_source = now_fn
  M.time_changed()
end

return M
