-- fibers.cond - a one-shot condition variable (library.md §8).
--
-- Owns: `new()`, `c:wait_op()`, `c:wait()`, `c:signal()`.  signal() is
-- one-shot and idempotent: it wakes every fiber blocked in wait (they resume
-- next turn) and every later wait returns at once.  A wait that loses a
-- choice leaves a stale entry that is skipped; the waiter list is compacted
-- whenever it doubles, so 10^5 losing waits keep memory bounded.
--
-- Hot path notes: the wait Op is built once per cond (Ops are immutable and
-- reusable), and a parked waiter costs two array slots (suspension, wrap),
-- not a table, because the "parked fibers" benchmark counts bytes per fiber.
-- Must not: run anyone synchronously, or know about scopes (perform is the
-- facade's scope-aware fibers.perform, required lazily to avoid a cycle).
local op = require 'fibers.op'

local M = {}

local Cond = {}
Cond.__index = Cond

local perform
local function get_perform()
  perform = require('fibers').perform
  return perform
end

-- Create a new, untriggered condition.
function M.new()
  return setmetatable({ triggered = false, susp = {}, wraps = {}, n = 0, limit = 16 }, Cond)
end

-- Drop entries whose suspension is no longer waiting (lost a choice, ...).
local function compact(self)
  local ss, ws, n = self.susp, self.wraps, self.n
  local j = 0
  for i = 1, n do
    local s = ss[i]
    if s:waiting() then
      j = j + 1
      ss[j], ws[j] = s, ws[i]
    end
  end
  for i = j + 1, n do ss[i], ws[i] = nil, nil end
  self.n = j
  local lim = 2 * j
  self.limit = lim > 16 and lim or 16
end

local function wait_try(o)
  return o.obj.triggered
end

local function wait_block(suspension, token, o)
  local self = o.obj
  local n = self.n + 1
  self.susp[n], self.wraps[n] = suspension, token
  self.n = n
  if n >= self.limit then compact(self) end
end

-- The Op that becomes ready (yielding nothing) once the cond is signalled.
function Cond:wait_op()
  local o = self.op
  if o then return o end
  o = op._prim(wait_try, wait_block, nil, { obj = self })
  self.op = o
  return o
end

-- Block the calling fiber until the cond is signalled (scope-aware).
function Cond:wait()
  return (perform or get_perform())(self.op or self:wait_op())
end

-- Trigger the cond (idempotent): waiters resume next turn.
function Cond:signal()
  if self.triggered then return end
  self.triggered = true
  local ss, ws, n = self.susp, self.wraps, self.n
  self.susp, self.wraps, self.n = {}, {}, 0
  for i = 1, n do
    local s = ss[i]
    if s:waiting() then s:complete(ws[i]) end
  end
end

-- True once signal() has been called.
function Cond:is_triggered()
  return self.triggered
end

return M
