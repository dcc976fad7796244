-- fibersd.control_methods - the handlers of the control protocol's methods
-- (doc/daemon.md §7), one per row of the method table in
-- src/fibersd/protocol.h (name, arguments, role, streaming, help).  A handler
-- gets (conn, id, params) and returns a result table, or nil, code, message
-- (, ids), or `true` when it replied itself (streams: watch, logs -f).
-- Request parsing and dispatch (`handle`) live here too; connections,
-- framing and limits are control.lua's.  Handlers read the supervisor
-- through its API (supervisor.lua header) and scopes through introspect.lua.

local fibers = require 'fibers'
local scope_mod = require 'fibers.scope'
local sleep = require 'fibers.sleep'
local log = require 'fibersd.log'
local introspect = require 'fibersd.introspect'
local host = require 'fibersd.host'
local methods = require 'fibersd.methods'
local H = require '_fibersd'
local C = H.control

local M = {}
local E = C.errors
local array = C.array

local ACTIVE = { loading = true, running = true, ready = true, stopping = true }
local STOPPED = { stopped = true, exited = true, failed = true, fatal = true, disabled = true }
local STARTED = { running = true, ready = true, exited = true, failed = true, fatal = true,
  backoff = true, disabled = true }

local function str_or_nil(v)
  if v == nil or v == C.null then return nil end
  return type(v) == 'string' and v or tostring(v)
end

-- A number param (nil when absent); raises a bad_request marker otherwise.
local function num_param(p, key, min, max)
  local v = p[key]
  if v == nil or v == C.null then return nil end
  if type(v) ~= 'number' or v ~= v or v < min or v > max then
    error({ bad_request = string.format('%s must be a number in [%g, %g]', key, min, max) }, 0)
  end
  return v
end

-- A string param; required ones raise a bad_request marker when missing.
local function str_param(p, key, required)
  local v = p[key]
  if v == nil or v == C.null then
    if required then error({ bad_request = 'missing ' .. key }, 0) end
    return nil
  end
  if type(v) == 'number' and v == math.floor(v) then return string.format('%d', v) end
  if type(v) ~= 'string' then error({ bad_request = key .. ' must be a string' }, 0) end
  return v
end

-- JSON-friendly copy of a join report (arrays marked).
local function report_json(r)
  if type(r) ~= 'table' then return nil end
  local out = { id = r.id, name = r.name, extra_errors = array(), children = array() }
  for i, e in ipairs(r.extra_errors or {}) do out.extra_errors[i] = tostring(e) end
  for i, c in ipairs(r.children or {}) do
    out.children[i] = { id = c.id, name = c.name, status = c.status, primary = str_or_nil(c.primary),
      report = report_json(c.report) }
  end
  return out
end

local function log_record(rec)
  return { t = rec.t, time = C.rfc3339(rec.time or 0), level = rec.level, task = rec.task,
    scope = rec.scope, pid = rec.pid, stream = rec.stream, message = rec.message }
end

local function known_task(sv, name)
  if introspect.RESERVED[name] or not sv:status(name) then
    return nil, E.not_found, "no task '" .. name .. "'"
  end
  return true
end

local T = {}

function T.version(conn)
  local srv = conn.srv
  return { daemon = 'fibersd', version = srv.version, protocol = C.PROTOCOL,
    pid = H.getpid(), uptime = fibers.now() - srv.started, features = host.features }
end

function T.status(conn, id, p)
  local srv, sv = conn.srv, conn.srv.sv
  local depth = num_param(p, 'depth', 0, 1e9)
  local now = fibers.now()
  local counts = { processes = 0 }
  if p.scope ~= nil and p.scope ~= C.null then
    local r, code, msg, ids = introspect.resolve(sv, p.scope)
    if not r then return nil, code, msg, ids end
    if r.task and r.status then
      local sc = r.status.scope
      local node = introspect.task_node(r.status, depth, now, counts)
      introspect.containment(node, sv:get(r.task), sc)
      return node
    end
    return introspect.scope_node(r.scope, r.path, depth, now, counts)
  end
  -- Every task: the nodes of introspect.task_node, built in C straight
  -- from the records (lstatus.c) as the reply is encoded; `brief` leaves
  -- out what fibersctl's table does not show (lstatus.c's header).
  local c = sv:counts()
  c.processes = 0
  local res = T.version(conn)
  res.counts, res.tasks = c, array()
  local opts = {
    brief = p.brief == true,
    memory = H.task_memory,
    subtree = function(sc, name)
      local cnt = { processes = 0 }
      local sn = introspect.scope_node(sc, name, depth, now, cnt)
      return sn.children, sn.commands, cnt.processes
    end,
  }
  local names, tasks = sv:names(), sv.tasks
  conn:result(id, res, nil, function(msg) return C.status_encode(msg, names, tasks, now, opts) end)
  return true
end

function T.cancel(conn, id, p)
  local sv = conn.srv.sv
  local addr = str_param(p, 'scope', true)
  local reason = str_param(p, 'reason', false) or 'cancelled by fibersctl'
  local timeout = num_param(p, 'timeout', 0, 86400) or 10
  local r, code, msg, ids = introspect.resolve(sv, addr)
  if not r then return nil, code, msg, ids end
  local s = r.scope
  if not s then return nil, E.failed, "task '" .. r.task .. "' is not running" end
  log.daemon('notice', 'control: pid %d uid %d cancels %s [%d] (%s)', conn.pid, conn.uid, r.path, s:id(), reason)
  if r.task then
    local ok, c2, m2 = sv:stop(r.task) -- on a task scope, cancel means stop
    if not ok then return nil, c2, m2 end
  else
    s:cancel(reason)
  end
  -- A cancelled scope ends with its join: for a task the supervisor joins
  -- it; any other scope may belong to an owner that never joins it before
  -- its own end (a plain scope:child()), so the operator's cancel starts the
  -- join (idempotent; it runs on in its own fiber if we stop waiting).  The
  -- join shuts down the scope's Commands and builds the report.
  local done = r.task and s:done_op() or s:join_op()
  if p.wait == false then
    if not r.task then fibers.spawn(function() fibers.perform(done) end) end
    return { scope = r.path, id = s:id(), status = 'cancelling' }
  end
  local which, st, err, report = fibers.named_choice({ done = done, timeout = sleep.sleep_op(timeout) })
  if which == 'timeout' then
    return nil, E.timeout, string.format('%s [%d] still joining after %gs', r.path, s:id(), timeout)
  end
  return { scope = r.path, id = s:id(), status = st, primary = str_or_nil(err), report = report_json(report) }
end

-- start/stop/restart: ask the supervisor, then wait (bounded) until the
-- task settles, and report its state.
local function task_op(method)
  return function(conn, id, p)
    local sv = conn.srv.sv
    local name = str_param(p, 'task', true)
    local timeout = num_param(p, 'timeout', 0, 86400) or 10
    local ok, code, msg = known_task(sv, name)
    if not ok then return nil, code, msg end
    local st0 = sv:status(name)
    local t0 = fibers.now()
    ok, code, msg = sv[method](sv, name)
    if not ok then return nil, code or E.failed, msg end
    log.daemon('notice', 'control: pid %d uid %d: %s %s', conn.pid, conn.uid, method, name)
    local pred
    if method == 'stop' then
      pred = function(st) return STOPPED[st.state] end
    elseif method == 'start' and ACTIVE[st0.state] then
      pred = function() return true end
    else
      pred = function(st) return st.since >= t0 and STARTED[st.state] end
    end
    local which, st = fibers.named_choice({ done = sv:wait_op(name, pred), timeout = sleep.sleep_op(timeout) })
    if which == 'timeout' then
      return nil, E.timeout, string.format("task '%s' did not settle within %gs", name, timeout)
    end
    st = st or sv:status(name)
    if not st then return { task = name, state = 'removed' } end
    local note
    local rec = sv:get(name)
    if method ~= 'stop' and rec and rec.enabled == false then
      -- started by hand, but the config says enabled = no: say so, and that
      -- the config wins at the next reload (or restart of fibersd)
      note = 'disabled in the configuration (enabled = no): runs until the next reload or restart of fibersd'
      log.task(name, name, 'warning', 'started by hand while %s', note)
    end
    return { task = name, state = st.state, reason = str_or_nil(st.reason), id = st.id, note = note }
  end
end
T.start, T.stop, T.restart = task_op('start'), task_op('stop'), task_op('restart')

function T.signal(conn, id, p)
  local addr = str_param(p, 'scope', true)
  local sig = p.sig
  if sig == nil or sig == C.null then return nil, E.bad_request, 'missing sig' end
  local signo, name = C.signum(sig)
  if not signo then return nil, E.bad_request, name end
  local r, code, msg, ids = introspect.resolve(conn.srv.sv, addr)
  if not r then return nil, code, msg, ids end
  if not r.scope then return nil, E.failed, "task '" .. r.task .. "' is not running" end
  local pids = array()
  introspect.each_command(r.scope, function(c)
    if c.state == 'running' and c.pid then
      if H.kill(c.pid, signo, true) then pids[#pids + 1] = c.pid end
    end
  end)
  log.daemon('notice', 'control: pid %d uid %d sent SIG%s to %d process groups of %s', conn.pid, conn.uid,
    name, #pids, r.path)
  return { scope = r.path, id = r.scope:id(), sig = name, signo = signo, pids = pids }
end

function T.reload(conn)
  local reload = conn.srv.reload
  if not reload then return nil, E.failed, 'reload is not available' end
  log.daemon('notice', 'control: pid %d uid %d requests a reload', conn.pid, conn.uid)
  local res = reload()
  local out = {}
  for _, k in ipairs({ 'added', 'removed', 'changed', 'unchanged', 'kept', 'errors', 'warnings' }) do
    out[k] = array()
    for i, v in ipairs(res and res[k] or {}) do out[k][i] = v end
  end
  return out
end

function T.logs(conn, id, p)
  local sv = conn.srv.sv
  local name = str_param(p, 'task', true)
  local n = num_param(p, 'lines', 0, 1e9)
  if name ~= 'fibersd' then
    local ok, code, msg = known_task(sv, name)
    if not ok then return nil, code, msg end
  end
  local lines = array()
  for i, rec in ipairs(log.lines(name, n and math.floor(n))) do lines[i] = log_record(rec) end
  if p.follow ~= true then return { task = name, lines = lines } end
  conn:result(id, { task = name, lines = lines }, true)
  conn:add_stream(log.follow(name, function(rec)
    conn:result(id, { task = name, lines = array({ log_record(rec) }) }, true)
  end))
  return true
end

function T.watch(conn, id)
  local sv = conn.srv.sv
  local tasks = array()
  for _, name in ipairs(sv:names()) do
    local st = sv:status(name)
    if st then
      tasks[#tasks + 1] = { name = name, path = name, id = st.id, state = st.state, since = st.since,
        reason = str_or_nil(st.reason) }
    end
  end
  conn:result(id, { event = 'snapshot', tasks = tasks }, true)
  conn:add_stream(sv:watch(function(ev)
    conn:result(id, { event = 'state', task = ev.task, scope = ev.scope, id = ev.id, from = ev.from,
      to = ev.to, reason = str_or_nil(ev.reason), t = ev.t,
      time = C.rfc3339(ev.time or log.realtime()) }, true)
  end))
  -- scopes below the tasks (control.lua's state hook); events arrive ready
  conn:add_stream(require('fibersd.control').watch_scopes(function(ev) conn:result(id, ev, true) end))
  return true
end

-- The handlers bound to the rows of protocol.h's method table (role and
-- the rest come from there); a row without a handler or a handler without
-- a row stops the daemon from starting.
M.methods = assert(methods.bind(C.methods, T))

-- Parse one request line and dispatch it; every failure becomes an error reply.
function M.handle(conn, line)
  local req, err = C.json_decode(line)
  if req == nil then return conn:error(nil, E.bad_request, 'bad JSON: ' .. tostring(err)) end
  if type(req) ~= 'table' or getmetatable(req) ~= nil then
    return conn:error(nil, E.bad_request, 'a request must be a JSON object')
  end
  local id = req.id
  if id == C.null then id = nil end
  if type(req.method) ~= 'string' then return conn:error(id, E.bad_request, 'missing method') end
  local m = M.methods[req.method]
  if not m then return conn:error(id, E.unknown_method, "unknown method '" .. req.method .. "'") end
  local params = req.params
  if params == nil or params == C.null then params = {} end
  if type(params) ~= 'table' or getmetatable(params) ~= nil then
    return conn:error(id, E.bad_request, 'params must be a JSON object')
  end
  if m.admin and conn.role ~= 'admin' then
    log.daemon('warning', "control: refused '%s' from read-only peer pid %d uid %d", req.method, conn.pid, conn.uid)
    return conn:error(id, E.permission_denied,
      string.format("'%s' needs the admin role (uid %d is read-only)", req.method, conn.uid))
  end
  if conn.srv.sv.shutting_down and m.admin then
    return conn:error(id, E.shutting_down, 'fibersd is shutting down')
  end
  local ok, res, code, msg, ids = pcall(m.fn, conn, id, params)
  if not ok then
    if scope_mod.is_cancelled(res) then error(res, 0) end
    if type(res) == 'table' and res.bad_request then return conn:error(id, E.bad_request, res.bad_request) end
    log.daemon('err', "control: '%s' failed: %s", req.method, tostring(res))
    return conn:error(id, E.failed, 'internal error: ' .. tostring(res))
  end
  if res == nil then return conn:error(id, code or E.failed, msg or 'failed', ids) end
  if res ~= true then return conn:result(id, res) end
end

return M
