-- fibersd.reload - turning (config, task directory) into supervisor
-- actions: the initial load at startup and every reload (SIGHUP or
-- `fibersctl reload`).
--
-- A reload re-reads the config (an invalid one keeps the old), rescans the
-- task dir by content hash and diffs it against the supervisor: new files
-- start, removed files stop, changed files are compiled first (a compile
-- error keeps the old version running), unchanged tasks only get their
-- restart policy updated live.  It returns the reply for the control
-- socket: { added, removed, changed, unchanged, kept, errors, warnings }
-- (kept: changed files that could not be loaded, whose old version keeps
-- running; each has its error, with file:line, in errors).

local fibers = require 'fibers'
local cond = require 'fibers.cond'
local compat = require 'fibers.compat'
local host = require 'fibersd.host'
local log = require 'fibersd.log'
local task = require 'fibersd.task'

local M = {}

-- The reload rules come from the key table (config.c's cfg_keys, through
-- _fibersd.config_keys): TASK_KEYS are the per-task keys ([defaults], and
-- [task:NAME] overrides), RESTARTS_TASK those whose change stops and starts
-- the task, DAEMON_KEYS the [fibersd] keys kept until fibersd restarts.
-- Every other key applies at reload.
local TASK_KEYS, RESTARTS_TASK, DAEMON_KEYS = {}, {}, {}
for _, k in ipairs(host.config_keys()) do
  if k.section == 'defaults' then
    TASK_KEYS[#TASK_KEYS + 1] = k.name
    if k.reload == 'task' then RESTARTS_TASK[#RESTARTS_TASK + 1] = k.name end
  elseif k.section == 'fibersd' and k.reload == 'daemon' then
    DAEMON_KEYS[#DAEMON_KEYS + 1] = k.name
  end
end

-- The effective policy, params and enabled flag of task `name` under cfg
-- (whose defaults section the config loader has filled from the key table).
function M.task_config(cfg, name)
  local d = cfg.defaults
  local t = cfg.tasks[name] or {}
  local pol = {}
  for _, k in ipairs(TASK_KEYS) do
    if t[k] ~= nil then pol[k] = t[k] else pol[k] = d[k] end
  end
  -- stop_timeout left empty follows the task's own grace
  if pol.stop_timeout == nil then pol.stop_timeout = pol.shutdown_grace + 5 end
  -- environment.NAME of [defaults], then of [task:NAME]
  if d.environment or t.environment then
    local env = {}
    for k, v in pairs(d.environment or {}) do env[k] = v end
    for k, v in pairs(t.environment or {}) do env[k] = v end
    pol.environment = env
  end
  return pol, t.params or {}, t.enabled ~= false
end

-- Read an environment_file: { NAME = value } or nil, "file:line: message".
-- Lines NAME=value; blank lines and # comments skipped; one pair of
-- surrounding quotes removed.
function M.read_env_file(path)
  local f, err = io.open(path, 'r')
  if not f then return nil, tostring(err) end
  local env, n = {}, 0
  for line in f:lines() do
    n = n + 1
    local l = line:gsub('^%s+', ''):gsub('%s+$', '')
    if l ~= '' and l:sub(1, 1) ~= '#' then
      local k, v = l:match('^([A-Za-z_][A-Za-z0-9_]*)=(.*)$')
      if not k then
        f:close()
        return nil, string.format('%s:%d: expected NAME=value', path, n)
      end
      local q = v:sub(1, 1)
      if #v >= 2 and (q == '"' or q == "'") and v:sub(-1) == q then v = v:sub(2, -2) end
      env[k] = v
    end
  end
  f:close()
  return env
end

-- The line of the config that set key for task name (its [task:NAME]
-- section, else [defaults]), as "file:line: ", or "" when unknown.
local function where(cfg, name, key)
  local L = cfg.lines or {}
  local line = ((L.tasks or {})[name] or {})[key] or (L.defaults or {})[key]
  if not line or not cfg.file then return '' end
  return string.format('%s:%d: ', cfg.file, line)
end

-- Checks only the daemon can make: limit keys need their cgroup
-- controller; environment_file must be readable.  Completes pol.
-- Returns true or nil, message.
function M.check_policy(cfg, name, pol)
  local cgroup = require 'fibersd.cgroup'
  for _, key in ipairs(cgroup.LIMIT_KEYS) do
    if pol[key] ~= nil then
      local why = cgroup.refuse_limit(key)
      if why then return nil, where(cfg, name, key) .. why end
    end
  end
  if pol.environment_file then
    local env, err = M.read_env_file(pol.environment_file)
    if not env then return nil, where(cfg, name, 'environment_file') .. 'environment_file: ' .. err end
    for k, v in pairs(pol.environment or {}) do env[k] = v end
    pol.environment = env
  end
  return true
end

-- Does the change from policy a to policy b restart the task?
local function same_env(a, b)
  a, b = a or {}, b or {}
  for k, v in pairs(a) do if b[k] ~= v then return false end end
  for k, v in pairs(b) do if a[k] ~= v then return false end end
  return true
end

local function restarts_task(a, b)
  for _, k in ipairs(RESTARTS_TASK) do
    if a[k] ~= b[k] then return true end
  end
  return not same_env(a.environment, b.environment)
end

local function same_params(a, b)
  for k, v in pairs(a) do if b[k] ~= v then return false end end
  for k, v in pairs(b) do if a[k] ~= v then return false end end
  return true
end

-- Read, hash, trust-check and compile one task file.  Returns a spec for
-- the supervisor; spec.error is set when it cannot run (compile error).
-- Returns nil, msg when the file must be refused altogether.
function M.prepare(cfg, entry)
  local okt, why = host.check_trust(entry.file)
  if not okt then return nil, 'refused: ' .. tostring(why) end
  local src, err = task.read(entry.file)
  if not src then return nil, tostring(err) end
  local pol, params, enabled = M.task_config(cfg, entry.name)
  local okp, perr = M.check_policy(cfg, entry.name, pol)
  if not okp then return nil, perr end
  local spec = { name = entry.name, file = entry.file, source = src, hash = task.hash(src),
    policy = pol, params = params, enabled = enabled }
  local chunk, cerr = task.compile(src, entry.file, task.new_env())
  if chunk then spec.chunk = chunk else spec.error = cerr end
  return spec
end

-- Scan the task dir of cfg (trust-checked): entries, errors.
function M.scan(cfg)
  local dir = cfg.fibersd.task_dir
  local errors = {}
  local okt, why = host.check_trust(dir)
  if not okt then
    return nil, { { file = dir, message = 'refused: ' .. tostring(why) } }
  end
  local entries, refused = task.scan(dir)
  if not entries then
    return nil, { { file = dir, message = tostring(refused) } }
  end
  for _, r in ipairs(refused) do
    errors[#errors + 1] = { file = r.file, message = r.file .. ': refused: ' .. r.reason }
  end
  return entries, errors
end

-- The [task:NAME] sections of cfg that name no task file (seen: name ->
-- true for the files of the task dir): they do nothing, which is almost
-- always a typo or a forgotten file.  Messages "file:line: ...", sorted.
function M.orphan_sections(cfg, seen)
  local out = {}
  for name, t in pairs(cfg.tasks or {}) do
    if not seen[name] then
      out[#out + 1] = string.format('%s: [task:%s] has no task file %s/%s.lua: the section does nothing',
        t.where or '?', name, (tostring(cfg.fibersd.task_dir):gsub('/+$', '')), name)
    end
  end
  table.sort(out)
  return out
end

-- Apply the task set of cfg to the supervisor.  Used at startup (empty
-- supervisor) and by reload.  Returns the result table.
function M.apply(sv, cfg)
  local res = { added = {}, removed = {}, changed = {}, unchanged = {}, kept = {}, errors = {},
    warnings = {} }
  local entries, errs = M.scan(cfg)
  for _, e in ipairs(errs or {}) do
    res.errors[#res.errors + 1] = e
    log.daemon('err', '%s', e.message)
  end
  if not entries then return res end
  local seen = {}
  for _, entry in ipairs(entries) do
    seen[entry.name] = true
    local rec = sv:get(entry.name)
    local spec, err = M.prepare(cfg, entry)
    if not spec then
      if rec then
        -- refused now (trust, unreadable): the running version stays
        err = entry.name .. ': not reloaded, the old version keeps running: ' .. err
        res.kept[#res.kept + 1] = entry.name
      end
      res.errors[#res.errors + 1] = { task = entry.name, file = entry.file, message = err }
      log.daemon('err', '%s', err)
    elseif not rec then
      if spec.error then
        res.errors[#res.errors + 1] = { task = entry.name, file = entry.file, message = spec.error }
      end
      sv:add(spec)
      res.added[#res.added + 1] = entry.name
    elseif rec.hash ~= spec.hash or not same_params(rec.params, spec.params)
        or restarts_task(rec.policy, spec.policy) then
      if spec.error then
        -- the new version does not compile: the old one keeps running
        local msg = 'not reloaded, the old version keeps running: ' .. spec.error
        res.errors[#res.errors + 1] = { task = entry.name, file = entry.file,
          message = entry.name .. ': ' .. msg }
        log.task(entry.name, entry.name, 'err', '%s', msg)
        rec.policy = spec.policy
        res.kept[#res.kept + 1] = entry.name
      else
        res.changed[#res.changed + 1] = entry.name
        rec:replace(spec)
      end
    else
      res.unchanged[#res.unchanged + 1] = entry.name
      rec.policy = spec.policy
      rec.public.params = spec.params
      if rec.enabled ~= spec.enabled then
        rec.enabled = spec.enabled
        if spec.enabled then
          if rec.state == 'disabled' then sv:start(entry.name) end
        else
          rec:request('reload', 'disable')
        end
      elseif not spec.enabled and rec.state ~= 'disabled' then
        -- enabled = no, but started by hand since: the config wins again
        rec:request('reload', 'disable')
      end
    end
  end
  for _, w in ipairs(M.orphan_sections(cfg, seen)) do
    res.warnings[#res.warnings + 1] = w
    log.daemon('warning', '%s', w)
  end
  for _, name in ipairs(sv:names()) do
    if not seen[name] then
      res.removed[#res.removed + 1] = name
      sv:get(name):request('reload', 'exit')
    end
  end
  return res
end

-- The body of a reload: re-read the config, apply it; returns the result.
local function reload_body(ctx)
  log.daemon('notice', 'reloading')
  local cfg, err = ctx.load()
  local errors, warnings = {}, {}
  if not cfg then
    for line in tostring(err):gmatch('[^\n]+') do
      errors[#errors + 1] = { message = line }
      log.daemon('err', 'config: %s (keeping the old configuration)', line)
    end
    cfg = ctx.cfg
  else
    for _, k in ipairs(DAEMON_KEYS) do
      if cfg.fibersd[k] ~= ctx.cfg.fibersd[k] then
        warnings[#warnings + 1] = k .. ' changed: takes effect when fibersd restarts'
        cfg.fibersd[k] = ctx.cfg.fibersd[k]
      end
    end
    if ctx.on_config then ctx.on_config(cfg, ctx.cfg) end
    ctx.cfg = cfg
  end
  local res = M.apply(ctx.sv, cfg)
  for _, e in ipairs(errors) do table.insert(res.errors, 1, e) end
  for _, w in ipairs(warnings) do
    res.warnings[#res.warnings + 1] = w
    log.daemon('warning', '%s', w)
  end
  log.daemon('notice', 'reloaded: %d added, %d removed, %d changed, %d unchanged, %d kept, %d errors',
    #res.added, #res.removed, #res.changed, #res.unchanged, #res.kept, #res.errors)
  return res
end

local function monotonic_usec() return math.floor(log.monotime() * 1e6) end

-- Reload (SIGHUP and `fibersctl reload` alike): re-read the config
-- (ctx.load() -> cfg | nil, msg), then apply it.  ctx = { sv, cfg (current),
-- load = fn, on_config = fn(new, old), status_line = fn() -> STATUS text }.
--
-- For systemd every reload is RELOADING=1 ... READY=1, each with
-- MONOTONIC_USEC (sd_notify(3)), and READY=1 is sent on every path - a bad
-- config, errors in task files, even a Lua error in the reload itself -
-- or the unit would stay "reloading" and queue every later job behind it.
-- Reloads are serialised: one asked for while another runs waits for it to
-- finish, so the notifications pair up and no two diffs interleave.
function M.reload(ctx)
  while ctx.reloading do fibers.perform(ctx.reloading:wait_op()) end
  local done = cond.new()
  ctx.reloading = done
  host.notify(string.format('RELOADING=1\nMONOTONIC_USEC=%d', monotonic_usec()))
  local ok, res = compat.pcall(reload_body, ctx)
  if not ok then
    log.daemon('err', 'reload failed: %s', tostring(res))
    res = { added = {}, removed = {}, changed = {}, unchanged = {}, kept = {}, warnings = {},
      errors = { { message = 'reload failed: ' .. tostring(res) } } }
  end
  local status = ctx.status_line and select(2, compat.pcall(ctx.status_line))
  host.notify(string.format('READY=1\nMONOTONIC_USEC=%d%s', monotonic_usec(),
    type(status) == 'string' and '\nSTATUS=' .. status or ''))
  ctx.reloading = nil
  done:signal()
  return res
end

return M
