-- fibers.channel - CML/Go channels (doc/library.md §6).
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
--   size, so losing registrations never pile up (doc/library.md §0.8).
--
-- Layout (hot path): the channel state - buffer and the two FIFO wait
-- queues - and the try/block halves of put and get live in C
-- (src/lua/lchan.c); a channel is a userdata whose methods are this
-- module's.  Leaves are built with op._prim (no closures).  ch:put/ch:get
-- take a C fast path for a fiber of a scope that is ok (try, else block
-- in C and yield; on Lua 5.4 the blocked fiber is a C fiber record,
-- src/lua/lfrec.c); anything else goes through the general perform.
-- Must not: resume anyone synchronously, or know about scopes beyond
-- the waitq protocol of fibers.op.
local op = require 'fibers.op'

-- op._prim(try(op), block(susp, token, op), wrap, fields): the leaf
-- constructor that passes the op itself, so a put needs no closures.
local prim = op._prim
local CANCEL = op._CANCEL
local M = {}

local Channel = { __name = "fibers.channel" }
Channel.__index = Channel

local C = op._fast
local cnew, try_put = C.new, C.try_put
local block_put, block_get, cput, cget = C.block_put, C.block_get, C.put, C.get

local perform
local function get_perform()
  perform = require('fibers').perform
  return perform
end

-- Create a channel; `buffer_size` is nil/0, a positive integer or math.huge.
function M.new(buffer_size)
  local size = buffer_size or 0
  if type(size) ~= "number" or size < 0 or (size ~= math.huge and size ~= math.floor(size)) then
    error("channel.new: buffer size must be a non-negative integer or math.huge", 2)
  end
  return cnew(size)
end

local function put_try(o) return try_put(o.ch, o.v) end
local function put_block(suspension, token, o) block_put(o.ch, suspension, token, o.v) end
-- (The try of a get op is C - op._fast.get_try - so that the C perform
-- recognises it and tries the channel inline.)
local get_try = C.get_try
local function get_block(suspension, token, o) block_get(o.ch, suspension, token) end

-- The Op that puts `v` (yields nothing once delivered or buffered).
function Channel:put_op(v)
  -- The k/try/block slots are placeholders that _prim overwrites: sizing
  -- the table up front avoids two rehashes per put (hot path).
  return prim(put_try, put_block, nil, { k = 0, try = 0, block = 0, ch = self, v = v })
end

-- The Op that gets the next value (yields it; nil is a valid value).
-- Built once per channel and kept in the channel (C.op/C.set_op).
local cached_op, set_op = C.op, C.set_op
function Channel:get_op()
  local o = cached_op(self)
  if o then return o end
  o = prim(get_try, get_block, nil, { ch = self })
  set_op(self, o)
  return o
end

-- After a fast-path put/get blocked: the resume values.  Token 1 is the
-- channel's completion; CANCEL comes from the scope's cancel wait queue
-- (with the scope), which raises exactly as fibers.perform does.
local function woken(tok, v)
  if tok == CANCEL then return v:_raise() end
  error("channel: unexpected wake-up token " .. tostring(tok), 0)
end

-- The general forms (a scope-aware perform): outside a fiber of an ok
-- scope - raw fibers, not-ok scopes (which raise), no fiber at all.
local function put_general(self, v) return (perform or get_perform())(self:put_op(v)) end
local function get_general(self) return (perform or get_perform())(self:get_op()) end

-- Put `v`, blocking the calling fiber as needed (scope-aware perform).
-- Get the next value, blocking the calling fiber as needed (scope-aware).
-- On Lua 5.3+ both are C methods (src/lua/lchan.c: try, else block and
-- yield with a continuation); elsewhere these wrappers over the C halves.
local get_m, put_m = C.set_channel_class(Channel, get_general, put_general)
if get_m then
  Channel.get, Channel.put = get_m, put_m
else
  function Channel:put(v)
    local r, x = cput(self, v)
    if r == 1 then return end
    if r == 0 then return put_general(self, v) end
    return woken(r, x)
  end

  function Channel:get()
    local r, v = cget(self)
    if r == 1 then return v end
    if r == 0 then return get_general(self) end
    return woken(r, v)
  end
end

-- Number of values currently buffered.
Channel.buffered = C.buffered

-- The capacity given to new() (0 for a rendezvous channel).
Channel.capacity = C.capacity

return M
