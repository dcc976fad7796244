-- fibers.channel - CML/Go channels (library.md §6).
--
-- Owns: `new(buffer_size?)` (0/nil: unbuffered rendezvous; n > 0: bounded
-- FIFO buffer; math.huge: unbounded), `ch:put_op(v)`, `ch:get_op()`,
-- `ch:put(v)`, `ch:get()`.  nil is a valid value.
--
-- Semantics:
--   put: hand the value to the oldest *still waiting* receiver, else buffer
--        it if there is room, else block in the FIFO put queue.
--   get: take the buffer head (then move the oldest waiting sender's value
--        into the buffer and release that sender), else take directly from
--        the oldest waiting sender, else block in the FIFO get queue.
--   A put that loses a choice delivers nothing and a get that loses consumes
--   nothing: a value only moves inside a try (synchronously, by the fiber
--   that performs) and only into/out of a suspension that is still waiting,
--   which `suspension:complete` atomically ends.
--   Stale queue entries (suspensions that lost, were cancelled or timed out)
--   are skipped when popped and compacted away whenever a queue doubles in
--   size, so losing registrations never pile up (library.md §0.8).
--
-- Layout (hot path): leaves are built with op._prim (no closures);
-- queues are flat arrays with a head index and a stride
-- (get: suspension, wrap; put: suspension, wrap, value) - no table per
-- waiter.  The buffer is a flat array with head/tail indices (nil-safe).
-- Must not: resume anyone synchronously, or know about scopes.
local op = require 'fibers.op'

-- op._prim(try(op), block(susp, token, op), wrap, fields): the leaf
-- constructor that passes the op itself, so a put needs no closures.
local prim = op._prim
local M = {}

local Channel = {}
Channel.__index = Channel

local perform
local function get_perform()
  perform = require('fibers').perform
  return perform
end

local function new_queue(stride)
  -- h: index of the first slot of the oldest entry; t: last used slot.
  return { h = 1, t = 0, stride = stride, limit = 16 * stride }
end

-- Rebuild `q` without entries whose suspension stopped waiting.
local function compact(q)
  local h, t, st = q.h, q.t, q.stride
  local j = 0
  local live = {}
  for i = h, t, st do
    local s = q[i]
    if s:waiting() then
      for k = 0, st - 1 do live[j + 1 + k] = q[i + k] end
      j = j + st
    end
  end
  for i = h, t do q[i] = nil end
  for i = 1, j do q[i] = live[i] end
  q.h, q.t = 1, j
  local lim = 2 * j
  q.limit = lim > 16 * st and lim or 16 * st
end

local function push2(q, s, w)
  local t = q.t
  q[t + 1], q[t + 2] = s, w
  t = t + 2
  q.t = t
  if t - q.h + 1 >= q.limit then compact(q) end
end

local function push3(q, s, w, v)
  local t = q.t
  q[t + 1], q[t + 2], q[t + 3] = s, w, v
  t = t + 3
  q.t = t
  if t - q.h + 1 >= q.limit then compact(q) end
end

-- Pop the oldest still-waiting getter: suspension, wrap (nil if none).
local function pop_get(q)
  local h, t = q.h, q.t
  while h < t do
    local s, w = q[h], q[h + 1]
    q[h], q[h + 1] = nil, nil
    h = h + 2
    if s:waiting() then
      if h > t then q.h, q.t = 1, 0 else q.h = h end
      return s, w
    end
  end
  q.h, q.t = 1, 0
  return nil
end

-- Pop the oldest still-waiting putter: suspension, wrap, value.
local function pop_put(q)
  local h, t = q.h, q.t
  while h < t do
    local s, w, v = q[h], q[h + 1], q[h + 2]
    q[h], q[h + 1], q[h + 2] = nil, nil, nil
    h = h + 3
    if s:waiting() then
      if h > t then q.h, q.t = 1, 0 else q.h = h end
      return s, w, v
    end
  end
  q.h, q.t = 1, 0
  return nil
end

-- Create a channel; `buffer_size` is nil/0, a positive integer or math.huge.
function M.new(buffer_size)
  local size = buffer_size or 0
  if type(size) ~= "number" or size < 0 or (size ~= math.huge and size ~= math.floor(size)) then
    error("channel.new: buffer size must be a non-negative integer or math.huge", 2)
  end
  return setmetatable({
    size = size,
    -- buffer: values in slots bh..bt (nil allowed), count = bt - bh + 1
    buf = {}, bh = 1, bt = 0,
    getq = new_queue(2),
    putq = new_queue(3),
  }, Channel)
end

-- Put `v`: oldest waiting receiver, else the buffer; false if it must block.
local function try_put(self, v)
  local s, w = pop_get(self.getq)
  if s then
    s:complete(w, v)
    return true
  end
  local bt = self.bt
  if bt - self.bh + 1 < self.size then
    bt = bt + 1
    self.buf[bt] = v
    self.bt = bt
    return true
  end
  return false
end

-- Get: buffer head (refilled from the oldest waiting sender), else the
-- oldest waiting sender; false if it must block.
local function try_get(self)
  local bh, bt = self.bh, self.bt
  if bh <= bt then
    local buf = self.buf
    local v = buf[bh]
    buf[bh] = nil
    if bh == bt then
      self.bh, self.bt = 1, 0
    else
      self.bh = bh + 1
    end
    local s, w, pv = pop_put(self.putq)
    if s then
      bt = self.bt + 1
      buf[bt] = pv
      self.bt = bt
      s:complete(w)
    end
    return true, v
  end
  local s, w, pv = pop_put(self.putq)
  if s then
    s:complete(w)
    return true, pv
  end
  return false
end

local function put_try(o) return try_put(o.ch, o.v) end
local function put_block(suspension, token, o) push3(o.ch.putq, suspension, token, o.v) end
local function get_try(o) return try_get(o.ch) end
local function get_block(suspension, token, o) push2(o.ch.getq, suspension, token) end

-- The Op that puts `v` (yields nothing once delivered or buffered).
function Channel:put_op(v)
  -- The k/try/block slots are placeholders that _prim overwrites: sizing
  -- the table up front avoids two rehashes per put (hot path).
  return prim(put_try, put_block, nil, { k = 0, try = 0, block = 0, ch = self, v = v })
end

-- The Op that gets the next value (yields it; nil is a valid value).
function Channel:get_op()
  local o = self.gop
  if o then return o end
  o = prim(get_try, get_block, nil, { ch = self })
  self.gop = o
  return o
end

-- Fast path of put/get (hot: ping-pong, pipelines): when the calling
-- fiber's scope is ok and the op is ready at once, do exactly what
-- fibers.perform would do for this single primitive (check the scope, try
-- once) without building the op.  Otherwise - not ready, scope not ok, or
-- not in a fiber - fall through to the full perform, whose try repeats the
-- failed one harmlessly (a failed try changes nothing but dropping stale
-- queue entries) and which raises or blocks as usual.
local current_fiber = require('fibers.runtime').current_fiber
local root_scope
local function scope_ok(f)
  local sc = f.scope
  if not sc then
    root_scope = root_scope or require('fibers.scope').root
    sc = root_scope()
  end
  return not sc._status
end

-- Put `v`, blocking the calling fiber as needed (scope-aware perform).
function Channel:put(v)
  local f = current_fiber()
  if f and scope_ok(f) and try_put(self, v) then return end
  return (perform or get_perform())(self:put_op(v))
end

-- Get the next value, blocking the calling fiber as needed (scope-aware).
function Channel:get()
  local f = current_fiber()
  if f and scope_ok(f) then
    local ok, v = try_get(self)
    if ok then return v end
  end
  return (perform or get_perform())(self.gop or self:get_op())
end

-- Number of values currently buffered.
function Channel:buffered()
  return self.bt - self.bh + 1
end

-- The capacity given to new() (0 for a rendezvous channel).
function Channel:capacity()
  return self.size
end

return M
