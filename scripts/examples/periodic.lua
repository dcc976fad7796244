-- periodic.lua - a periodic job with a timeout.
--
-- Every `param.every` seconds run a command; if it takes longer than
-- `param.timeout` seconds it is abandoned: the job runs in its own child
-- scope, and the race against the timer cancels that scope, which stops
-- the command (SIGTERM to its process group, SIGKILL after the grace).
local fibers  = require 'fibers'
local exec    = require 'fibers.exec'
local sleep   = require 'fibers.sleep'
local fibersd = require 'fibersd'

local _, task = ...
local every   = tonumber(task.params.every) or 5
local timeout = tonumber(task.params.timeout) or 2

local function job()
  local cmd = exec.command{ 'df', '-kP', '/', stdout = 'pipe' }
  local out, status, code = fibers.perform(cmd:output_op())
  if status ~= 'exited' or code ~= 0 then
    error('df failed: ' .. tostring(status) .. ' ' .. tostring(code))
  end
  local used = out:match('\n%S+%s+%d+%s+%d+%s+%d+%s+(%d+)%%')
  fibersd.log.info('root filesystem %s%% used', used or '?')
end

fibersd.ready()
while true do
  local which, status, err = fibers.named_choice{
    done    = fibers.run_scope_op(job),
    timeout = sleep.sleep_op(timeout),
  }
  if which == 'timeout' then
    fibersd.log.warning('job took longer than %gs: abandoned', timeout)
  elseif status ~= 'ok' then
    -- A failed run is logged, not fatal: the next period tries again.
    fibersd.log.err('job %s: %s', status, tostring(err))
  end
  sleep.sleep(every)
end
