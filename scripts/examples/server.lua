-- server.lua - supervise a long-running server process, with readiness
-- and restart.
--
-- The program is started with its stdout on a pipe.  The task reads lines
-- until one matches `param.ready` (a Lua pattern), then calls
-- fibersd.ready(): `fibersctl status` shows the task as "ready" only once
-- the server really is (the same idea as systemd's Type=notify).  If no
-- such line comes within `param.ready_timeout` seconds, the task fails.
-- After that every line of output goes to the log, and the task waits for
-- the program to end.  A server that ends is a failure: the error makes
-- fibersd restart the task per its policy (restart = on-failure, backoff
-- from restart_delay, state "fatal" past restart_limit).  Stopping the task
-- (fibersctl stop, reload, shutdown) SIGTERMs the server's process group,
-- then SIGKILLs it after shutdown_grace.
--
-- Config:
--   [task:server]
--   param.cmd = /usr/sbin/mydaemon --foreground   ; argv, split on blanks
--   param.ready = ^listening                      ; Lua pattern
--   param.ready_timeout = 10
-- The default command is a small shell stand-in that becomes ready after a
-- short start-up and then prints a line every few seconds.
local fibers  = require 'fibers'
local exec    = require 'fibers.exec'
local sleep   = require 'fibers.sleep'
local fibersd = require 'fibersd'

local _, task = ...
local p = task.params
local ready_pattern = p.ready or '^listening'
local ready_timeout = tonumber(p.ready_timeout) or 10

local argv = {}
if p.cmd then
  for word in p.cmd:gmatch('%S+') do argv[#argv + 1] = word end
else
  argv = { 'sh', '-c',
    'sleep 0.3; echo "listening on port 8080"; n=0; ' ..
    'while :; do n=$((n+1)); echo "served $n requests"; sleep 3; done' }
end
-- stdout: a pipe we read; stderr keeps the fibersd default ("log").
argv.stdout = 'pipe'

local cmd = exec.command(argv)
local out = cmd:stdout_stream()       -- starts the process
fibersd.log.info('started %s (pid %d)', argv[1], cmd:pid())

-- Readiness: race the next line against the deadline, line by line.
local deadline = fibers.now() + ready_timeout
while true do
  local which, line = fibers.named_choice{
    line    = out:read_line_op{ max = 65536 },
    timeout = sleep.sleep_until_op(deadline),
  }
  if which == 'timeout' then
    error(string.format('not ready after %gs (no line matching %q)', ready_timeout, ready_pattern))
  end
  if line == nil then break end        -- EOF: the program is gone
  fibersd.log.info('%s', line)
  if line:match(ready_pattern) then
    fibersd.ready()
    fibersd.log.notice('ready after %.1fs', ready_timeout - (deadline - fibers.now()))
    break
  end
end

-- Forward the rest of the output until EOF, then collect the exit status.
while true do
  local line = out:read_line{ max = 65536 }
  if line == nil then break end
  fibersd.log.info('%s', line)
end
local status, code, signal = fibers.perform(cmd:run_op())
error(string.format('server ended: %s %s', status, tostring(code or signal)))
