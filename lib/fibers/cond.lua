-- fibers.cond - a one-shot condition variable (doc/library.md §8).
--
-- Owns: `new()`, `c:wait_op()`, `c:wait()`, `c:signal()`.  signal() is
-- one-shot and idempotent: it wakes every fiber blocked in wait (they resume
-- next turn) and every later wait returns at once.  Waiters are kept in an
-- op._waitq (shared with scope and waitgroup): a wait that loses a choice
-- leaves a stale entry that is skipped, and the queue is compacted whenever
-- it doubles, so 10^5 losing waits keep memory bounded.
--
-- Hot path notes: the wait Op is built once per cond (Ops are immutable and
-- reusable), and a parked waiter costs two array slots (suspension, token),
-- not a table, because the "parked fibers" benchmark counts bytes per fiber.
-- Must not: run anyone synchronously, or know about scopes (perform is the
-- facade's scope-aware fibers.perform, required lazily to avoid a cycle).
local op = require 'fibers.op'

local waitq, push, wake = op._waitq, op._waitq_push, op._waitq_wake

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
  return setmetatable({ triggered = false, q = waitq() }, Cond)
end

local function wait_try(o)
  return o.obj.triggered
end

local function wait_block(suspension, token, o)
  push(o.obj.q, suspension, token)
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
  wake(self.q)
end

-- True once signal() has been called.
function Cond:is_triggered()
  return self.triggered
end

return M
