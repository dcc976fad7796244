-- drain.lua - a graceful drain on cancellation, with finalisers.
--
-- A producer queues work items; a consumer handles them one at a time.
-- When the task is stopped (fibersctl stop, restart, reload of a changed
-- file, daemon shutdown) its scope is cancelled: both fibers return from
-- their blocking operation by cancellation, then the scope's finalisers
-- run, last registered first:
--   1. "drain": finish the items still queued (bounded by param.drain_max
--      and by time, so a stop cannot hang; fibersd forces a task that
--      exceeds stop_timeout),
--   2. "checkpoint": record how far we got (a real task would flush a
--      file or tell a peer).
-- A finaliser runs while the scope is already cancelled, so it blocks with
-- op.perform_raw (the scope-aware fibers.perform would raise the
-- cancellation at once).  finally(f) calls f(aborted, status, primary).
--
-- Config:
--   [task:drain]
--   param.rate = 0.5        ; seconds between new items
--   param.cost = 0.2        ; seconds to handle one item
--   param.drain_max = 10    ; items handled at most while draining
local fibers  = require 'fibers'
local op      = require 'fibers.op'
local channel = require 'fibers.channel'
local sleep   = require 'fibers.sleep'
local fibersd = require 'fibersd'

local scope, task = ...
local p = task.params
local rate  = tonumber(p.rate) or 0.5
local cost  = tonumber(p.cost) or 0.2
local drain_max = tonumber(p.drain_max) or 10

local queue = channel.new(math.huge)   -- unbounded buffer
local queued, handled = 0, 0

-- Registered first, so it runs last.
scope:finally(function(aborted, status, primary)
  fibersd.log.notice('checkpoint: %d items handled, %d left (scope %s%s)', handled,
    queued - handled, status, primary and (': ' .. tostring(primary)) or '')
end)

-- Registered last, so it runs first: finish what is queued.
scope:finally(function()
  local n = 0
  while n < drain_max and queued > handled do
    -- or_else: take an item only if one is ready, never block here.
    local item = op.perform_raw(queue:get_op():or_else(function() return nil end))
    if item == nil then break end
    op.perform_raw(sleep.sleep_op(cost))    -- handle it
    handled, n = handled + 1, n + 1
  end
  fibersd.log.notice('drained %d queued items', n)
end)

scope:spawn(function()                  -- producer
  while true do
    queued = queued + 1
    queue:put('item ' .. queued)
    sleep.sleep(rate)
  end
end)

scope:spawn(function()                  -- consumer
  while true do
    local item = queue:get()            -- waiting: cancellation ends it here
    -- Handling an item is not interrupted by cancellation (perform_raw):
    -- an item taken from the queue is always finished.
    op.perform_raw(sleep.sleep_op(cost))
    handled = handled + 1
    fibersd.log.debug('handled %s', item)
  end
end)

fibersd.ready()
-- The chunk returns here; the task scope then waits for its fibers.
