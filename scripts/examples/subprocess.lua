-- subprocess.lua - supervise a long-running program.
--
-- The Command belongs to this task's scope: when the task is stopped
-- (fibersctl stop, reload, shutdown) the process group gets SIGTERM, then
-- SIGKILL after shutdown_grace.  Under fibersd, stdout and stderr default
-- to "log": every line the child prints lands in the journal / `fibersctl
-- logs subprocess`, tagged with the task, pid and stream.
local fibers  = require 'fibers'
local exec    = require 'fibers.exec'
local fibersd = require 'fibersd'

local _, task = ...
local period = task.params.period or '2'

-- No shell is involved in exec: we run /bin/sh explicitly for the demo loop.
local cmd = exec.command{
  'sh', '-c', 'n=0; while :; do n=$((n+1)); echo "tick $n"; sleep "$1"; done', 'ticker', period,
}

fibersd.ready()
local status, code, signal, err = fibers.perform(cmd:run_op())

-- The program ended on its own: that is a failure for a daemon, so raise;
-- the restart policy (restart = on-failure by default) starts us again.
error(string.format('ticker ended: %s %s %s %s', status, tostring(code), tostring(signal), tostring(err)))
