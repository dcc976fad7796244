-- fibers.oneshot - a one-shot notifier of plain thunks (doc/library.md §8).
--
-- Owns: `new(after_cb?)`, `os:add_waiter(thunk) -> cancel_fn`,
-- `os:signal()`, `os:is_triggered()`.  It is the low-level building block
-- for "tell these callbacks once": it has no Op and no scheduler; thunks run
-- synchronously inside signal(), in registration order, then `after_cb()`.
--
-- Decisions (not pinned by the spec):
--   * add_waiter on a triggered oneshot runs the thunk at once and returns a
--     no-op cancel function.
--   * cancel_fn() is O(1) and idempotent; cancelled slots are compacted when
--     they outnumber live ones, so add/cancel loops keep memory bounded.
--   * a thunk that raises propagates out of signal(); the oneshot is already
--     triggered at that point and the remaining thunks are not run.
local M = {}

local Oneshot = {}
Oneshot.__index = Oneshot

-- Create a oneshot; `after_cb` (optional) runs once after all waiters.
function M.new(after_cb)
  if after_cb ~= nil and type(after_cb) ~= "function" then
    error("oneshot.new: after_cb must be a function", 2)
  end
  return setmetatable({ triggered = false, after = after_cb, ws = {}, n = 0, live = 0 }, Oneshot)
end

local function noop() end

-- Remove cancelled (false) slots, keeping registration order.
local function compact(self)
  local ws, n, j = self.ws, self.n, 0
  for i = 1, n do
    local w = ws[i]
    if w then
      j = j + 1
      ws[j] = w
      if type(w) == "table" then w.idx = j end
    end
  end
  for i = j + 1, n do ws[i] = nil end
  self.n = j
end

-- Register `thunk` to run on signal; returns a function that unregisters it.
function Oneshot:add_waiter(thunk)
  if type(thunk) ~= "function" then error("oneshot:add_waiter: expected a function", 2) end
  if self.triggered then
    thunk()
    return noop
  end
  local n = self.n + 1
  local cell = { f = thunk, idx = n }
  self.ws[n] = cell
  self.n = n
  self.live = self.live + 1
  local ws = self.ws
  return function()
    local i = cell.idx
    if i == nil or self.triggered or self.ws ~= ws then return end
    cell.idx = nil
    ws[i] = false
    self.live = self.live - 1
    if self.n > 16 and self.live * 2 < self.n then compact(self) end
  end
end

-- Trigger once: run every registered thunk in order, then after_cb.
function Oneshot:signal()
  if self.triggered then return end
  self.triggered = true
  local ws, n = self.ws, self.n
  self.ws, self.n, self.live = {}, 0, 0
  for i = 1, n do
    local cell = ws[i]
    if cell then
      cell.idx = nil
      cell.f()
    end
  end
  local after = self.after
  if after then
    self.after = nil
    after()
  end
end

-- True once signal() has been called.
function Oneshot:is_triggered()
  return self.triggered
end

return M
