-- fibersd.main - the daemon's entry point, called by the C host (main.c) as
-- require('fibersd.main').run(cfg, opts) whose result is the exit status.
--
-- It owns the daemon's life cycle: host setup (subreaper, file limit,
-- runaway/memory hooks, exec and alarm hosting), the scope layout, the
-- control socket hand-off to control.lua, the initial load, readiness and
-- STATUS= notifications, the systemd watchdog, signals (HUP reload,
-- TERM/INT graceful shutdown) and --check.  Policy details live in
-- supervisor.lua (restarts) and reload.lua (config + task dir diff).
--
-- Scope layout (children of the library's root scope):
--   daemon             this file's fibers (signals, notifier, watchdog)
--     supervisor       one supervisor fiber per task
--     tasks            one child scope per running task, named after it
--     control          the control server (control.lua)

local fibers = require 'fibers'
local runtime = require 'fibers.runtime'
local scope = require 'fibers.scope'
local sleep = require 'fibers.sleep'
local host = require 'fibersd.host'
local log = require 'fibersd.log'
local task = require 'fibersd.task'
local supervisor = require 'fibersd.supervisor'
local reload = require 'fibersd.reload'
local control = require 'fibersd.control'
local cgroup = require 'fibersd.cgroup'

local M = {}

local ORPHAN_FMT = 'reaped orphan pid %d (%s)'

-- Trust-check the lua_path directories (main.c put them on package.path;
-- when root, an unsafe one is refused by removing it again).
local function check_lua_path(lp)
  if not lp or lp == '' then return end
  for entry in lp:gmatch('[^;]+') do
    local dir = entry:gsub('^%s+', ''):gsub('%s+$', '')
    local q = dir:find('?', 1, true)
    if dir:sub(1, 1) == '/' then
      -- a template ("/opt/x/?.lua") is checked at the directory holding
      -- its '?' part; module files themselves at load (task.sandbox)
      local checked = q and dir:sub(1, q - 1):match('^(.*)/') or dir
      local okt, why = host.check_trust(checked == '' and '/' or checked)
      if not okt then
        log.daemon('err', 'lua_path %s refused: %s', dir, tostring(why))
        local d = dir:gsub('/+$', '')
        local tails = q and { ';' } or { '/?.lua;', '/?/init.lua;', '/?.so;' }
        for _, tail in ipairs(tails) do
          local pat = (d .. tail):gsub('[%^%$%(%)%%%.%[%]%*%+%-%?]', '%%%0')
          package.path = (package.path .. ';'):gsub(pat, ''):gsub(';$', '')
          package.cpath = (package.cpath .. ';'):gsub(pat, ''):gsub(';$', '')
        end
      end
    end
  end
end

-- --check: compile every task script, print problems, 0 when all is well.
local function check(cfg)
  cgroup.probe() -- limit keys are checked against what start would find
  local bad = 0
  local entries, errs = reload.scan(cfg)
  for _, e in ipairs(errs or {}) do
    io.stderr:write(e.message, '\n')
    bad = bad + 1
  end
  local seen = {}
  for _, entry in ipairs(entries or {}) do seen[entry.name] = true end
  if entries then
    for _, msg in ipairs(reload.orphan_sections(cfg, seen)) do
      io.stderr:write(msg, '\n')
      bad = bad + 1
    end
  end
  -- what bind would refuse at start (sun_path holds 107 bytes and a NUL)
  local sock = cfg.fibersd.control_socket
  if type(sock) == 'string' and #sock > 107 then
    io.stderr:write(string.format('control socket path too long (max 107 bytes): %s\n', sock))
    bad = bad + 1
  end
  for _, entry in ipairs(entries or {}) do
    local spec, err = reload.prepare(cfg, entry)
    if not spec then err = err elseif spec.error then err = spec.error else err = nil end
    if err then
      io.stderr:write(err, '\n')
      bad = bad + 1
    end
  end
  return bad == 0 and 0 or 1
end
M.check = check

-- The STATUS= line: "4 tasks running, 1 in backoff, 3 processes".
function M.status_line(sv)
  local c = sv:counts()
  local running = (c.running or 0) + (c.ready or 0) + (c.loading or 0)
  local parts = { string.format('%d task%s running', running, running == 1 and '' or 's') }
  for _, k in ipairs({ 'stopping', 'backoff', 'failed', 'fatal' }) do
    if (c[k] or 0) > 0 then
      parts[#parts + 1] = string.format('%d %s', c[k], k == 'backoff' and 'in backoff' or k)
    end
  end
  local procs = 0
  cgroup.each_running_command(sv:scopes(), function() procs = procs + 1 end)
  parts[#parts + 1] = string.format('%d process%s', procs, procs == 1 and '' or 'es')
  return table.concat(parts, ', ')
end

-- The open-file limit children get by default: the usual soft limit (we
-- raised ours), never above the hard limit (setrlimit would fail in every
-- child); said once when clamped.
local CHILD_NOFILE = 1024
local function child_nofile(hard)
  if math.type(hard) == 'integer' and hard >= 0 and hard < CHILD_NOFILE then
    log.daemon('notice', 'open-file hard limit is %d: children get nofile = %d (not %d)',
      hard, hard, CHILD_NOFILE)
    return hard
  end
  return CHILD_NOFILE
end

-- Hook exec (log modes, defaults, orphans) and alarms into the daemon.
local function host_library(nofile_hard)
  local exec = require 'fibers.exec'
  exec._set_host({
    defaults = { stdin = 'null', stdout = 'log', stderr = 'log',
      rlimits = { nofile = child_nofile(nofile_hard) } },
    scrub_env = { 'NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'LISTEN_FDS',
      'LISTEN_PID', 'LISTEN_FDNAMES', 'JOURNAL_STREAM', 'INVOCATION_ID' },
    log_line = function(cmd, stream, line, s)
      local rec, path = task.of_scope(s or scope.current())
      local pid = cmd and cmd.pid and cmd:pid() or nil
      log.emit(stream == 'stderr' and 4 or 6, line, rec and rec.name, path, pid, stream)
    end,
    task_defaults = function(s)
      local rec = task.rec_of(s)
      return rec and rec.exec_defaults
    end,
    on_orphan = function(pid, status)
      log.emit(5, string.format(ORPHAN_FMT, pid, tostring(status)), nil, nil, pid)
    end,
  })
  local alarm = require 'fibers.alarm'
  alarm.set_time_source(alarm.realtime)
  return alarm
end

-- Containment (fibersd.cgroup): build the cgroup tree, or say once what
-- the process-group fallback cannot catch; then end what a previous,
-- SIGKILLed daemon left in task cgroups.
local function containment()
  if cgroup.setup() == 'cgroup' then
    log.daemon('info', 'containment: cgroup %s (controllers for tasks: %s)', cgroup.base,
      cgroup.controllers_line() == '' and 'none' or cgroup.controllers_line())
    local n = cgroup.reap_leftovers(function(fmt, ...) log.daemon('warning', fmt, ...) end)
    if n > 0 then log.daemon('warning', 'killed %d leftover process%s of a previous fibersd', n, n == 1 and '' or 'es') end
  else
    log.daemon('notice', 'containment: process-group (%s): processes that leave their process group '
      .. '(setsid, double fork) are not stopped with their task', tostring(cgroup.why))
  end
end

-- Adopt a socket-activated control socket or bind our own.
-- Returns fd, bound_path | nil, msg, exitcode.
local function control_socket(F)
  local fds = host.listen_fds()
  local pick
  for _, l in ipairs(fds) do
    if l.name == 'control' then pick = l end
  end
  if not pick and #fds == 1 then pick = fds[1] end
  if pick then
    log.daemon('info', 'adopted control socket (fd %d, %s)', pick.fd, tostring(pick.name))
    return pick.fd, nil
  end
  local fd, warn, code = host.bind_control(F.control_socket, F.control_mode, F.control_group)
  if not fd then return nil, warn, code end
  if warn then log.daemon('warning', '%s', warn) end
  return fd, F.control_socket
end

-- The daemon body, in the `daemon` scope.  Returns the exit status.
local function daemon(D, cfg, opts)
  local F = cfg.fibersd
  local T0 = fibers.now()
  -- Signals first: from here on TERM, INT and HUP are held for the main
  -- loop (a HUP during the initial load is a reload after it, a TERM
  -- stops what has started) instead of killing the daemon, and the
  -- watcher's fd is taken before any task can use up the fds.
  local signal = require 'fibers.signal'
  for _, sig in ipairs({ 'TERM', 'INT', 'HUP' }) do signal.signal_op(sig) end
  log.configure(F.log_level, F.log_lines)
  host.subreaper()
  local _, nofile_hard = host.raise_nofile()
  containment()
  host.set_max_slice(F.max_slice)
  host.install_hooks(runtime, supervisor.live, supervisor.on_doom)
  check_lua_path(F.lua_path)
  _G.print = task.print
  local alarm = host_library(nofile_hard)

  local S = assert(D:child()); pcall(S.set_name, S, 'supervisor')
  local T = assert(D:child()); pcall(T.set_name, T, 'tasks')
  local C = assert(D:child()); pcall(C.set_name, C, 'control')
  local sv = supervisor.new({ tasks_scope = T, sup_scope = S })
  local rctx = { sv = sv, cfg = cfg, status_line = function() return M.status_line(sv) end }
  function rctx.load()
    local new, err = host.load_config(opts.config_file)
    if new then
      for k, v in pairs(opts.overrides or {}) do new.fibersd[k] = v end
    end
    return new, err
  end
  function rctx.on_config(new)
    log.configure(new.fibersd.log_level, new.fibersd.log_lines)
    host.set_log(new.fibersd.log_level, new.fibersd.log_target)
    host.set_max_slice(new.fibersd.max_slice)
  end
  sv.reload_fn = function() return reload.reload(rctx) end
  function sv.reload() return sv.reload_fn() end

  local fd, bound, code = control_socket(F)
  if not fd then
    log.daemon('err', '%s', tostring(bound))
    host.notify('STATUS=' .. tostring(bound) .. '\nERRNO=98')
    return code or 2
  end
  control.start({ scope = C, fd = fd, sv = sv, cfg = cfg, reload = sv.reload,
    version = host.version, started = T0 })

  local res = reload.apply(sv, cfg)
  while sv:loading() > 0 do fibers.perform(sv:changed_op()) end
  local ready_line = M.status_line(sv)
  host.notify('READY=1\nSTATUS=' .. ready_line)
  log.daemon('notice', 'fibersd %s ready: %d tasks (%d errors) in %.3fs',
    host.version, #res.added, #res.errors, fibers.now() - T0)

  -- STATUS= on changes, at most one per 100 ms.
  D:spawn(function()
    -- (real clock reads: the turn's cached time may lag the send)
    local last_line, last_t = ready_line, log.monotime()
    while true do
      fibers.perform(sv:changed_op())
      local wait = last_t + 0.1 - log.monotime()
      if wait > 0 then sleep.sleep(wait) end
      local line = M.status_line(sv)
      if line ~= last_line then
        host.notify('STATUS=' .. line)
        last_line, last_t = line, log.monotime()
      end
    end
  end)
  -- systemd watchdog from the scheduler: a wedged loop stops the pings.
  local wd = host.watchdog_usec()
  if wd > 0 then
    D:spawn(function()
      while true do
        host.notify('WATCHDOG=1')
        sleep.sleep(wd / 2e6)
      end
    end)
  end
  -- Clock steps: tell alarms (wall clock minus monotonic moved by > 1 s).
  if alarm and alarm.time_changed then
    D:spawn(function()
      local off = log.realtime() - log.monotime()
      while true do
        sleep.sleep(10)
        local o = log.realtime() - log.monotime()
        if math.abs(o - off) > 1 then alarm.time_changed() end
        off = o
      end
    end)
  end

  while true do
    local which = fibers.named_choice({
      term = signal.signal_op('TERM'), int = signal.signal_op('INT'), hup = signal.signal_op('HUP'),
    })
    if which ~= 'hup' then
      log.daemon('notice', 'SIG%s: shutting down', which:upper())
      break
    end
    local r = sv.reload()
    if #r.errors > 0 then log.daemon('warning', 'reload finished with %d errors', #r.errors) end
  end

  -- Graceful shutdown: cancel every task with "shutdown", wait for them.
  local F2 = rctx.cfg.fibersd
  host.notify('STOPPING=1')
  sv:shutdown()
  T:cancel('shutdown')
  local t0 = fibers.now()
  local deadline = t0 + F2.shutdown_timeout
  local next_extend = t0 + 1
  local forced = false
  while sv:active() > 0 do
    local which = fibers.named_choice({
      changed = sv:changed_op(), timeout = sleep.sleep_until_op(deadline),
      extend = sleep.sleep_until_op(next_extend),
      term = signal.signal_op('TERM'), int = signal.signal_op('INT'),
    })
    if which == 'timeout' or which == 'term' or which == 'int' then
      forced = true
      break
    elseif which == 'extend' then
      local left = math.max(deadline - fibers.now(), 0) + 5
      host.notify(string.format('EXTEND_TIMEOUT_USEC=%d', math.floor(math.min(left, 10) * 1e6)))
      next_extend = fibers.now() + 5
    end
  end
  local left = sv:active()
  for _, s in ipairs(sv:scopes()) do supervisor.kill_tree(s) end
  if forced or left > 0 then
    log.daemon('warning', 'shutdown: %d task%s did not stop in time: killed', left, left == 1 and '' or 's')
  end
  C:cancel('shutdown')
  fibers.named_choice({ joined = C:join_op(), timeout = sleep.sleep_op(1) })
  if bound then host.unlink_control(bound) end
  log.daemon('notice', 'stopped')
  return 0
end

-- Entry point: run the daemon (or --check) and return the exit status.
function M.run(cfg, opts)
  opts = opts or {}
  if opts.check then return check(cfg) end
  local code = 1
  local sched = runtime.current_scheduler
  local D = assert(scope.root():child())
  pcall(D.set_name, D, 'fibersd')
  D:spawn(function(s)
    local okd, c = pcall(daemon, s, cfg, opts)
    if okd then
      code = c
    else
      log.daemon('crit', 'fatal: %s', tostring(c))
      host.notify('STATUS=fatal: ' .. tostring(c))
      code = 1
    end
    sched:stop()
  end)
  sched:main()
  return code
end

return M
