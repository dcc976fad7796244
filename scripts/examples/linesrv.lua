-- linesrv.lua - a UNIX-socket line server with one scope per connection.
--
-- Protocol: the client sends lines; the server answers each with the line
-- in upper case; "quit" ends the connection.  Try it with
--   socat - UNIX-CONNECT:/run/fibersd/linesrv.sock
--
-- Each connection is served in its own child scope of the task (named
-- conn-N, so `fibersctl status linesrv` lists the open connections and
-- `fibersctl cancel linesrv/conn-3` hangs up one of them).  The scope owns
-- the connection: its finaliser closes the stream however the handler
-- ends (quit, EOF, idle timeout, an error, cancellation).  An error in one
-- handler fails only that connection's scope; the server goes on.
-- Stopping the task cancels the task scope, which cancels every
-- connection scope, closes the listener and removes the socket file.
--
-- Untrusted input: lines are limited to `max` bytes (an error otherwise),
-- and a client that stays silent for `param.idle` seconds is dropped.
--
-- Config:
--   [task:linesrv]
--   param.socket = /run/fibersd/linesrv.sock
--   param.idle = 60
-- The default socket path is in $RUNTIME_DIRECTORY (set by systemd to
-- /run/fibersd for fibersd.service), else $XDG_RUNTIME_DIR, else $TMPDIR
-- or /tmp, so the example also works for an unprivileged fibersd.
local fibers  = require 'fibers'
local socket  = require 'fibers.io.socket'
local sleep   = require 'fibers.sleep'
local fibersd = require 'fibersd'

local scope, task = ...
local dir = os.getenv('RUNTIME_DIRECTORY') or os.getenv('XDG_RUNTIME_DIR')
  or os.getenv('TMPDIR') or '/tmp'
local path = task.params.socket or (dir .. '/linesrv.sock')
local idle = tonumber(task.params.idle) or 60

-- unlink_stale: remove a socket file left by an earlier run; ephemeral:
-- remove ours when the listener closes.
local listener = assert(socket.listen_unix(path, { unlink_stale = true, ephemeral = true, mode = '0660' }))
scope:finally(function() listener:close() end)

local function serve(conn_scope, conn, id)
  conn_scope:finally(function() conn:close() end)
  while true do
    local which, line, err = fibers.named_choice{
      line = conn:read_line_op{ max = 4096 },
      idle = sleep.sleep_op(idle),
    }
    if which == 'idle' then
      conn:write_string('bye (idle)\n')
      return 'idle'
    end
    if err then error(err) end           -- e.g. "line too long"
    if line == nil or line == 'quit' then return 'closed' end
    conn:write_string(line:upper() .. '\n')
  end
end

fibersd.ready()
fibersd.log.notice('listening on %s', path)
local n = 0
while true do
  local conn, err = listener:accept()
  if not conn then
    -- e.g. EMFILE: say so and back off instead of spinning.
    fibersd.log.warning('accept: %s', tostring(err))
    sleep.sleep(1)
  else
    n = n + 1
    local id = n
    scope:spawn(function()
      local status, why, _, how = fibers.run_scope(function(cs)
        cs:set_name('conn-' .. id)
        return serve(cs, conn, id)
      end)
      fibersd.log.info('connection %d: %s %s', id, status, tostring(how or why))
    end)
  end
end
