-- fifo.lua - watch a FIFO (named pipe) and react to what is written to it.
--
-- Any program can talk to the task with a plain write:
--   echo hello > /run/fibersd/fifo-ctl
-- Each line is a command:
--   hello      logs a greeting
--   count      logs how many lines were read so far
--   fail       raises: the task fails and is restarted (restart policy)
--   quit       the task returns: state "exited", not restarted
--   anything else is logged as unknown.
--
-- The FIFO is opened read-write: the task itself then always holds a
-- writer, so the read side never sees end-of-file when a client closes
-- (no re-open loop needed), and opening never blocks.  Streams over FIFOs
-- are non-blocking: a read waits in the scheduler, so the other tasks and
-- the control socket go on.  The task's finaliser removes the FIFO.
--
-- Config:
--   [task:fifo]
--   param.path = /run/fibersd/fifo-ctl
-- The default path is in $RUNTIME_DIRECTORY, else $XDG_RUNTIME_DIR, else
-- $TMPDIR or /tmp (works unprivileged).
local fibers  = require 'fibers'
local exec    = require 'fibers.exec'
local file    = require 'fibers.io.file'
local fibersd = require 'fibersd'

local scope, task = ...
local dir = os.getenv('RUNTIME_DIRECTORY') or os.getenv('XDG_RUNTIME_DIR')
  or os.getenv('TMPDIR') or '/tmp'
local path = task.params.path or (dir .. '/fifo-ctl')

-- mkfifo(1): there is no mkfifo in Lua's standard library.
os.remove(path)
local status, code = fibers.perform(exec.command{ 'mkfifo', '-m', '0620', path }:run_op())
if status ~= 'exited' or code ~= 0 then error('mkfifo ' .. path .. ' failed') end
scope:finally(function() os.remove(path) end)

local fifo = assert(file.open(path, 'r+'))
scope:finally(function() fifo:close() end)

local actions = {}
local count = 0
function actions.hello() fibersd.log.notice('hello to you too') end
function actions.count() fibersd.log.notice('%d lines so far', count) end
function actions.fail() error('asked to fail') end

fibersd.ready()
fibersd.log.notice('watching %s', path)
while true do
  local line = fifo:read_line{ max = 4096 }
  if line == nil then break end
  count = count + 1
  local word = line:match('^%s*(%S+)') or ''
  if word == 'quit' then
    fibersd.log.notice('quit after %d lines', count)
    break
  elseif actions[word] then
    actions[word]()
  else
    fibersd.log.warning('unknown command %q', line)
  end
end
