-- fibers.waitgroup - Go-style wait groups (library.md §8).
--
-- Owns: `new()`, `wg:add(delta)`, `wg:done()`, `wg:wait_op()`, `wg:wait()`.
-- wait_op is ready (yielding nothing) while the counter is zero.  When the
-- counter drops to zero every blocked waiter is woken (resumes next turn).
-- Reusable: after reaching zero, add() starts a new round, and waits that
-- begin then block until that round's zero.
-- A counter below zero raises `waitgroup counter goes negative` and leaves
-- the counter unchanged.  Losing waits are skipped lazily; the waiter list
-- is compacted whenever it doubles (bounded memory).
local op = require 'fibers.op'

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
  return setmetatable({ count = 0, susp = {}, wraps = {}, n = 0, limit = 16 }, WaitGroup)
end

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

-- Add `delta` (a number, may be negative) to the counter.
function WaitGroup:add(delta)
  if type(delta) ~= "number" or delta ~= delta then
    error("waitgroup:add: delta must be a number", 2)
  end
  local c = self.count + delta
  if c < 0 then error("waitgroup counter goes negative", 2) end
  self.count = c
  if c == 0 and self.n > 0 then
    local ss, ws, n = self.susp, self.wraps, self.n
    self.susp, self.wraps, self.n, self.limit = {}, {}, 0, 16
    for i = 1, n do
      local s = ss[i]
      if s:waiting() then s:complete(ws[i]) end
    end
  end
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
  local self = o.obj
  local n = self.n + 1
  self.susp[n], self.wraps[n] = suspension, token
  self.n = n
  if n >= self.limit then compact(self) end
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
