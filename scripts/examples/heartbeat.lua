-- heartbeat.lua - the smallest useful fibersd task: a forever loop that
-- logs a line every few seconds.
--
-- A task file is a Lua chunk; fibersd calls it as chunk(scope, task):
--   scope  the task's own scope (everything started here belongs to it)
--   task   { name = "heartbeat", file = ".../heartbeat.lua", params = {...} }
-- Parameters come from the config:  [task:heartbeat]  param.interval = 5
local fibers  = require 'fibers'
local sleep   = require 'fibers.sleep'
local fibersd = require 'fibersd'

local scope, task = ...
local interval = tonumber(task.params.interval) or 2

-- Tell fibersd (and `fibersctl status`) that we are up.
fibersd.ready()

local n = 0
while true do
  n = n + 1
  -- Structured log line, tagged with the task (journal field FIBERS_TASK).
  fibersd.log.info('beat %d (every %gs, up %.0fs)', n, interval, fibers.now() - scope:snapshot().since)
  -- sleep is an Op: when the task is stopped, this returns by cancellation
  -- and the loop ends; nothing else to clean up.
  sleep.sleep(interval)
end
