-- fibers.waitgroup - Go-style wait groups (doc/library.md §8).
--
-- Owns: `new()`, `wg:add(delta)`, `wg:done()`, `wg:wait_op()`, `wg:wait()`.
-- wait_op is ready (yielding nothing) while the counter is zero.  When the
-- counter drops to zero every blocked waiter is woken (resumes next turn).
-- Reusable: after reaching zero, add() starts a new round, and waits that
-- begin then block until that round's zero.
-- A counter below zero raises `waitgroup counter goes negative` and leaves
-- the counter unchanged.  Waiters are kept in an op._waitq (shared with
-- scope and cond): losing waits are skipped lazily, and the queue is
-- compacted whenever it doubles (bounded memory).
local op = require 'fibers.op'

local waitq, push, wake, waitq_len = op._waitq, op._waitq_push, op._waitq_wake, op._waitq_len

local M = {}

local WaitGroup = {}
WaitGroup.__index = WaitGroup

local perform
local function get_perform()
  perform = require('fibers').perform
  return perform
end

-- Create a wait group with counter 0.
function M.new()
  return setmetatable({ count = 0, q = waitq() }, WaitGroup)
end

-- Add `delta` (a number, may be negative) to the counter.
function WaitGroup:add(delta)
  if type(delta) ~= "number" or delta ~= delta then
    error("waitgroup:add: delta must be a number", 2)
  end
  local c = self.count + delta
  if c < 0 then error("waitgroup counter goes negative", 2) end
  self.count = c
  if c == 0 and waitq_len(self.q) > 0 then wake(self.q) end
end

-- Decrement the counter by one.
function WaitGroup:done()
  local c = self.count - 1
  if c < 0 then error("waitgroup counter goes negative", 2) end
  return self:add(-1)
end

-- Current counter value.
function WaitGroup:count_value()
  return self.count
end

local function wait_try(o)
  return o.obj.count == 0
end

local function wait_block(suspension, token, o)
  push(o.obj.q, suspension, token)
end

-- The Op that is ready once the counter is zero.
function WaitGroup:wait_op()
  local o = self.op
  if o then return o end
  o = op._prim(wait_try, wait_block, nil, { obj = self })
  self.op = o
  return o
end

-- Block the calling fiber until the counter is zero (scope-aware).
function WaitGroup:wait()
  return (perform or get_perform())(self.op or self:wait_op())
end

return M
