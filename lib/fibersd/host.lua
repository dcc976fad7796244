-- fibersd.host - the one seam between the daemon's Lua policy and the C host
-- (`_fibersd`, src/fibersd/lhost.c).  Everything else in lib/fibersd goes
-- through this table, so a change of the C side is absorbed here.
--
-- `_fibersd` is preloaded by the fibersd program (and by the unit tests
-- that embed it); the policy does not run without it.  Optional system
-- features (systemd, the cgroup v2 hierarchy) are detected once by the host
-- and listed in M.features.  This module must not block and must not log
-- (log.lua sits on top of it).

local H = require '_fibersd'
local core = require 'fibers.core'

local M = { version = H.version, features = H.features() }

-- The config key table (config.c's cfg_keys): { {name, section, type,
-- default, choices, help, reload = "live"|"task"|"daemon"}, ... }.
function M.config_keys() return H.config_keys() end

-- Write one log record (priority 0..7, message, fields table with optional
-- task, scope, stream, pid).
function M.log(priority, msg, fields) return H.log(priority, msg, fields or {}) end

-- Set the host's log level (name or priority) and target (auto|journal|stderr).
function M.set_log(level, target) return H.set_log(level, target or 'auto') end

-- Send a state string to the service manager (sd_notify); false without one.
function M.notify(state) return H.notify(state) end

-- The watchdog period in microseconds (0 = off).
function M.watchdog_usec() return H.watchdog_usec() end

-- Become a child subreaper (orphans are re-parented to us).
function M.subreaper() return H.subreaper() end

-- Raise the open-file soft limit to the hard limit.
function M.raise_nofile() return H.raise_nofile() end

-- Sockets passed by systemd: array of { fd, name, unix_stream } (maybe empty).
function M.listen_fds() return H.listen_fds() end

-- Bind the control socket; returns fd, warning? or nil, msg, exitcode.
function M.bind_control(path, mode, group) return H.bind_control(path, mode, group) end

-- Remove our socket file at exit.
function M.unlink_control(path) return H.unlink_control(path) end

-- Trust check of a path (root only): true or nil, reason.
function M.check_trust(path) return H.check_trust(path) end

-- Read a regular file of at most max bytes without ever waiting (a FIFO is
-- refused, not opened for good): contents or nil, "path: message".
function M.read_file(path, max) return H.read_file(path, max) end

-- List a directory: array of entry names (without . and ..) or nil, msg.
function M.readdir(dir) return H.readdir(dir) end

-- The sandbox's questions: is a task running (a slice, or task code on the
-- stack)?  Is the first Lua function at stack level `level` task code?
-- Is a chunk name ("@/path...") the library's own?
M.in_task = H.in_task
M.task_caller = H.task_caller
M.library_source = H.library_source
-- The library's modules are also loaded from dir (daemon only).
M.library_dir = H.library_dir

-- After a run failed for memory: collect what it left (a dead buffer of a
-- failed table.concat can be most of memory_limit and would wait for the
-- next cycle) and give the freed pages back to the system.
local collect = collectgarbage
function M.reclaim()
  collect('collect')
  return H.trim()
end

-- Memory accounting: a new account (limit in bytes, 0 = none) for one run.
function M.task_new(limit) return H.task_new(limit) end

-- Why an account's task was doomed (runaway, memory), or nil.
function M.task_doomed(acct)
  if acct ~= nil then return H.task_doomed(acct) end
end

-- Current Lua memory (bytes) held by an account (0 without one).
function M.task_memory(acct)
  if acct ~= nil then return H.task_memory(acct) end
  return 0
end

-- Set an account's memory limit in bytes (0 = none).
function M.task_set_limit(acct, bytes)
  if acct ~= nil then return H.task_set_limit(acct, bytes) end
end

-- Release an account once its run has ended.
function M.task_free(acct)
  if acct ~= nil then return H.task_free(acct) end
end

-- Install the resume hooks that switch accounts and arm the runaway guard.
-- After each slice of a task fiber whose account is in `live` (id -> any),
-- a doom (runaway, memory) not reported yet calls on_doom(id, reason): a
-- task that caught the error with pcall and yielded must still fail.
function M.install_hooks(runtime, live, on_doom)
  local enter, leave, doomed = H.enter, H.leave, H.task_doomed
  local reported = setmetatable({}, { __mode = 'k' })
  runtime.set_resume_hook(enter, function(f)
    leave(f)
    local id = f.tag
    if id and live[id] and not reported[live[id]] then
      local why = doomed(id)
      if why then
        reported[live[id]] = true
        on_doom(id, why)
      end
    end
  end)
end

-- Set the runaway guard's slice (seconds).
function M.set_max_slice(sec) return H.set_max_slice(sec) end

-- Load the configuration (path or nil for defaults): cfg or nil, msg.
function M.load_config(path) return H.load_config(path) end

-- Last resort for forced stops: send sig to the process group pgid (every
-- Command leads its own group), through the core's private proc binding as
-- exec.lua does; true | nil, msg.
function M.killpg(pgid, sig) return core.proc.killpg(pgid, sig) end

return M
