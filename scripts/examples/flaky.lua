-- flaky.lua - a task that fails, to show restarts and backoff.
--
-- It works for a while and then raises.  The error fails the task's scope;
-- fibersd logs it and restarts the task per its policy:
--   restart = on-failure      (default)
--   restart_delay = 0.1       first wait, doubling up to restart_max_delay,
--                             with jitter x[0.8, 1.2]
--   restart_limit/window      more than 5 restarts within 60 s: state "fatal"
-- `fibersctl status flaky` shows the restarts and the last error;
-- `fibersctl start flaky` re-arms a fatal task.
local sleep   = require 'fibers.sleep'
local fibersd = require 'fibersd'

local _, task = ...
local life = tonumber(task.params.life) or 3

fibersd.ready()
fibersd.log.notice('starting; will fail in %gs', life)
sleep.sleep(life)
error('simulated failure after ' .. life .. 's')
