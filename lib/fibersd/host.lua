-- fibersd.host - the one seam between the daemon's Lua policy and the C host
-- (`_fibersd`, src/fibersd/lhost.c).  Everything else in lib/fibersd goes
-- through this table, so a change of the C side is absorbed here.
--
-- When `_fibersd` is missing (the policy loaded by a plain lua5.4, e.g. for
-- a quick experiment), harmless fallbacks are used: logging goes to stderr
-- with `<N>` prefixes, notifications are dropped, memory is not accounted.
-- This module must not block and must not log (log.lua sits on top of it).

local ok, H = pcall(require, '_fibersd')
if not ok then H = nil end

local M = { native = H }

local function has(name) return H ~= nil and type(H[name]) == 'function' end

-- The config key table (config.c's cfg_keys): { {name, section, type,
-- default, choices, help, reload = "live"|"task"|"daemon"}, ... }.
function M.config_keys() return H.config_keys() end

-- Write one log record (priority 0..7, message, fields table with optional
-- task, scope, stream, pid).
function M.log(priority, msg, fields)
  if has('log') then return H.log(priority, msg, fields or {}) end
  local prefix = ''
  if fields and fields.task then prefix = fields.task .. ': ' end
  io.stderr:write(string.format('<%d>%s%s\n', priority, prefix, msg))
  return true
end

-- Set the host's log level (name or priority) and target (auto|journal|stderr).
function M.set_log(level, target)
  if has('set_log') then return H.set_log(level, target or 'auto') end
end

-- Send a state string to the service manager (sd_notify); no-op without it.
function M.notify(state)
  if has('notify') then return H.notify(state) end
  return false
end

-- The watchdog period in microseconds (0 = off).
function M.watchdog_usec()
  if has('watchdog_usec') then return H.watchdog_usec() or 0 end
  return 0
end

-- Become a child subreaper (orphans are re-parented to us).
function M.subreaper()
  if has('subreaper') then return H.subreaper() end
  return false
end

-- Raise the open-file soft limit to the hard limit.
function M.raise_nofile()
  if has('raise_nofile') then return H.raise_nofile() end
  return false
end

-- Sockets passed by systemd: array of { fd, name, unix_stream } (maybe empty).
function M.listen_fds()
  if has('listen_fds') then return H.listen_fds() or {} end
  return {}
end

-- Bind the control socket; returns fd, warning? or nil, msg, exitcode.
function M.bind_control(path, mode, group)
  if has('bind_control') then return H.bind_control(path, mode, group) end
  return nil, 'no control socket support without the fibersd host', 2
end

-- Remove our socket file at exit.
function M.unlink_control(path)
  if has('unlink_control') then return H.unlink_control(path) end
end

-- Trust check of a path (root only): true or nil, reason.
function M.check_trust(path)
  if has('check_trust') then return H.check_trust(path) end
  return true
end

-- List a directory: array of entry names (without . and ..) or nil, msg.
function M.readdir(dir)
  if has('readdir') then return H.readdir(dir) end
  -- Fallback: ls(1) with the path as one argv element through sh -c "$1".
  local q = "'" .. dir:gsub("'", "'\\''") .. "'"
  local p = io.popen('ls -1A -- ' .. q .. ' 2>/dev/null')
  if not p then return nil, 'cannot list ' .. dir end
  local names = {}
  for line in p:lines() do names[#names + 1] = line end
  local okc = p:close()
  if not okc and #names == 0 then
    local f = io.open(dir, 'r')
    if not f then return nil, dir .. ': No such file or directory' end
    f:close()
  end
  return names
end

-- Memory accounting: a new account (limit in bytes, 0 = none) for one run.
function M.task_new(limit)
  if has('task_new') then return H.task_new(limit or 0) end
  return nil
end

-- Why an account's task was doomed (runaway, memory), or nil.
function M.task_doomed(acct)
  if has('task_doomed') and acct ~= nil then return H.task_doomed(acct) end
  return nil
end

-- Current Lua memory (bytes) held by an account.
function M.task_memory(acct)
  if has('task_memory') and acct ~= nil then return H.task_memory(acct) end
  return 0
end

-- Set an account's memory limit in bytes (0 = none).
function M.task_set_limit(acct, bytes)
  if has('task_set_limit') and acct ~= nil then return H.task_set_limit(acct, bytes) end
end

-- Release an account once its run has ended.
function M.task_free(acct)
  if has('task_free') and acct ~= nil then return H.task_free(acct) end
end

-- Install the resume hooks that switch accounts and arm the runaway guard.
-- After each slice of a task fiber whose account is in `live` (id -> any),
-- a doom (runaway, memory) not reported yet calls on_doom(id, reason): a
-- task that caught the error with pcall and yielded must still fail.
function M.install_hooks(runtime, live, on_doom)
  if not (has('enter') and has('leave')) then return false end
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
  return true
end

-- Set the runaway guard's slice (seconds).
function M.set_max_slice(sec)
  if has('set_max_slice') then return H.set_max_slice(sec) end
end

-- Load the configuration (path or nil for defaults): cfg or nil, msg.
function M.load_config(path)
  if has('load_config') then return H.load_config(path) end
  return nil, 'no configuration support without the fibersd host'
end

-- SIGKILL-style last resort for forced stops: send sig to the process group
-- pgid (every Command leads its own group).  Uses the core's private proc
-- binding, as exec.lua does; true | nil, msg.
function M.killpg(pgid, sig)
  local okc, core = pcall(require, 'fibers.core')
  if okc and core.proc and core.proc.killpg then return core.proc.killpg(pgid, sig) end
  return nil, 'no killpg'
end

return M
