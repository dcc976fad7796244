-- fibers.wait - building blocks for new blocking primitives (doc/library.md §9).
--
-- Owns two things and nothing else:
--   * a waitset: tasks parked under keys, FIFO per key, each with a token
--     that unlinks it in O(1) (so a losing Op never leaves garbage behind);
--   * waitable(register, step, wrap_fn?): turns "a condition you can test
--     (step) plus a way to be told when to re-test it (register)" into an Op.
-- It never touches the scheduler loop itself beyond `schedule(task)`, and it
-- knows nothing about scopes.
--
-- Decisions (not pinned by the spec):
--   * notify_one/notify_all *schedule* the tasks (they run next turn), never
--     run them synchronously, so a notifier cannot be re-entered by a waiter.
--   * is_empty(key?) / size(key?) without a key look at the whole set.
local op = require 'fibers.op'
local runtime = require 'fibers.runtime'

local unpack = table.unpack or unpack
local M = {}

local function pack(...) return { n = select('#', ...), ... } end

---------------------------------------------------------------------------
-- Tokens: one doubly-linked node per waiting task.

local Token = {}
Token.__index = Token

-- Unlink this token's task from its waitset (idempotent).
function Token:unlink()
  local b = self.bucket
  if not b then return false end
  self.bucket = nil
  local p, n = self.prev, self.next
  if p then p.next = n else b.head = n end
  if n then n.prev = p else b.tail = p end
  self.prev, self.next = nil, nil
  b.n = b.n - 1
  local ws = b.set
  ws.count = ws.count - 1
  if b.n == 0 then ws.buckets[b.key] = nil end
  return true
end

-- Is the token still linked into its waitset?
function Token:is_linked()
  return self.bucket ~= nil
end

---------------------------------------------------------------------------
-- Waitset.

local Waitset = {}
Waitset.__index = Waitset

-- Create an empty waitset.
function M.new_waitset()
  return setmetatable({ buckets = {}, count = 0 }, Waitset)
end

-- Park `task` under `key` (FIFO); returns a token with :unlink().
function Waitset:add(key, task)
  if key == nil then error("waitset:add: key must not be nil", 2) end
  if task == nil then error("waitset:add: task must not be nil", 2) end
  local b = self.buckets[key]
  if not b then
    b = { set = self, key = key, n = 0 }
    self.buckets[key] = b
  end
  local tok = setmetatable({ task = task, bucket = b, prev = b.tail }, Token)
  if b.tail then b.tail.next = tok else b.head = tok end
  b.tail = tok
  b.n = b.n + 1
  self.count = self.count + 1
  return tok
end

-- Remove and return every task under `key`, oldest first.
function Waitset:take_all(key)
  local b = self.buckets[key]
  local out = {}
  if not b then return out end
  self.buckets[key] = nil
  self.count = self.count - b.n
  local t, i = b.head, 0
  while t do
    i = i + 1
    out[i] = t.task
    local nx = t.next
    t.bucket, t.prev, t.next = nil, nil, nil
    t = nx
  end
  b.head, b.tail, b.n = nil, nil, 0
  return out
end

-- Remove and return the oldest task under `key` (nil if none).
function Waitset:take_one(key)
  local b = self.buckets[key]
  if not b then return nil end
  local t = b.head
  t:unlink()
  return t.task
end

local function schedule(task)
  runtime.current_scheduler:schedule(task)
end

-- Schedule every task under `key` for the next turn; returns how many.
function Waitset:notify_all(key)
  local tasks = self:take_all(key)
  for i = 1, #tasks do schedule(tasks[i]) end
  return #tasks
end

-- Schedule the oldest task under `key`; returns true if there was one.
function Waitset:notify_one(key)
  local task = self:take_one(key)
  if task == nil then return false end
  schedule(task)
  return true
end

-- True if nothing waits under `key` (or, without a key, anywhere).
function Waitset:is_empty(key)
  if key == nil then return self.count == 0 end
  return self.buckets[key] == nil
end

-- Number of tasks under `key` (or, without a key, in total).
function Waitset:size(key)
  if key == nil then return self.count end
  local b = self.buckets[key]
  return b and b.n or 0
end

-- Drop every task under `key` without running them; returns how many.
function Waitset:clear_key(key)
  return #self:take_all(key)
end

-- Drop every task of the set without running them; returns how many.
function Waitset:clear_all()
  local keys, n = {}, 0
  for k in pairs(self.buckets) do keys[#keys + 1] = k end
  for i = 1, #keys do n = n + #self:take_all(keys[i]) end
  return n
end

---------------------------------------------------------------------------
-- waitable: an Op from a readiness test and a wake-up registration.
--
-- try   = step() -> ready, ...values
-- block = register(task, suspension, leaf_wrap) -> token; when `task` runs
--         the step is retried: ready completes the suspension, otherwise the
--         task is registered again.  The current token is unlinked when the
--         suspension ends (won elsewhere, aborted, cancelled).

-- Build an Op from `register`, `step` and an optional wrap function.
function M.waitable(register, step, wrap_fn)
  if type(register) ~= "function" then error("waitable: register must be a function", 2) end
  if type(step) ~= "function" then error("waitable: step must be a function", 2) end
  local function block(suspension, leaf_wrap)
    local token
    local task = {}
    function task.run()
      if not suspension:waiting() then return end
      local r = pack(step())
      if r[1] then
        token = nil
        suspension:complete(leaf_wrap, unpack(r, 2, r.n))
      else
        token = register(task, suspension, leaf_wrap)
      end
    end
    token = register(task, suspension, leaf_wrap)
    suspension:add_cleanup(function()
      if token then token:unlink(); token = nil end
    end)
  end
  return op.new_primitive(wrap_fn, step, block)
end

return M
