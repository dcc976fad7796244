-- fibersd.supervisor - the task records and the API the control server
-- (control.lua) and reload (reload.lua) drive.
--
-- The policy of a task - its states, restarts, backoff, the give-up window,
-- stop and reload - is the state x event table of fibersd.machine; a task
-- record is such a machine, and this module is its environment: a run is a
-- fresh child scope of the tasks scope watched by a monitor fiber (in the
-- daemon's `supervisor` scope) that turns the run's end into the machine's
-- exit event; each record has a driver fiber for the backoff timer.  The
-- supervisor is itself a client of scopes and Ops: it never reaches into a
-- task's fibers.
--
-- States: loading running ready stopping backoff exited failed fatal stopped
-- disabled.  Cancellation reasons sent by the daemon: stop restart reload
-- shutdown (anything else cancelling a task scope is the task's own doing).
--
-- ---- API for control.lua ---------------------------------------------------
--   sv:names()            sorted array of task names
--   sv:get(name)          task record or nil (treat as read-only)
--   sv:status(name)       plain table { name, file, state, since, uptime,
--                         reason, restarts, next_restart_in, last_exit,
--                         last_error, extra_errors, ready, memory, enabled,
--                         forced, id (scope id|nil), scope (live Scope|nil) }
--                         or nil when unknown
--   sv:counts()           { tasks, running, ready, backoff, failed, fatal, ... }
--   sv:start(name) / sv:stop(name) / sv:restart(name)
--                         -> true | nil, code, message  (code: not_found,
--                         shutting_down, failed); they do not wait
--   sv:wait_op(name, fn)  Op ready (yielding the status table) once
--                         fn(status) is true, e.g. to await "stopped"
--   sv:watch(fn)          fn(event) for every state change, returns an
--                         unsubscribe function; event = { event = "state",
--                         task, scope (path), id, from, to, reason, t, time }
--                         (t monotonic, time epoch seconds; never blocks)
--   sv:reload()           see reload.lua (set by main as sv.reload_fn)
--   sv.shutting_down      true once shutdown began
--   logs: require('fibersd.log').lines(name, n) / .follow(name, fn)

local fibers = require 'fibers'
local runtime = require 'fibers.runtime'
local sleep = require 'fibers.sleep'
local cond = require 'fibers.cond'
local host = require 'fibersd.host'
local log = require 'fibersd.log'
local task = require 'fibersd.task'
local machine = require 'fibersd.machine'
local cgroup = require 'fibersd.cgroup'

local M = {}

local Sup = {}
Sup.__index = Sup
local Rec = setmetatable({}, { __index = machine.Machine })
Rec.__index = Rec

-- Accounts of running tasks: id -> record (for the doom hook).
M.live = {}

-- The host's doom hook: fail the task whose account `id` was doomed.
function M.on_doom(id, why)
  local r = M.live[id]
  if r and r.scope and not r.fail_override then
    r.fail_override = why
    r:poke()
  end
end

local function now() return fibers.now() end

-- ---- the supervisor ---------------------------------------------------------

-- Create the supervisor: opts.tasks_scope (parent of task scopes),
-- opts.sup_scope (where supervisor fibers live).
function M.new(opts)
  local sv = setmetatable({
    tasks = {}, tasks_scope = opts.tasks_scope, sup_scope = opts.sup_scope,
    watchers = {}, changed = cond.new(), started = now(), nstate = {},
    shutting_down = false,
  }, Sup)
  sv.env = M.env(sv)
  return sv
end

-- The machine's env (fibersd.machine) for the records of supervisor sv.
function M.env(sv)
  return {
    clock = now,
    random = math.random,
    launch = function(r) return r:launch_run() end,
    cancel = function(r, reason)
      if r.scope then r.scope:cancel(reason) end
      r:poke()
    end,
    timer = function(r, t)
      r.timer_at = t
      r:poke()
    end,
    install = function(r, spec) r:set_version(spec) end,
    remove = function(r)
      sv.tasks[r.name] = nil
      sv._names = nil
      log.drop(r.name)
      r.gone = true
      r:set_state('removed', 'reload')
      sv.nstate.removed = 0
      r:poke()
    end,
    log = function(r, level, fmt, ...) log.task(r.name, r.name, level, fmt, ...) end,
    changed = function(r, from, to, reason)
      local ns = sv.nstate
      if from ~= to then
        ns[from] = ns[from] - 1
        ns[to] = (ns[to] or 0) + 1
      end
      sv:emit({ event = 'state', task = r.name, scope = r.name,
        id = r.scope and r.scope:id() or nil, from = from, to = to,
        reason = reason, t = r.since, time = log.realtime() })
    end,
    shutting_down = function() return sv.shutting_down end,
  }
end

-- Sorted task names.
function Sup:names()
  local sorted = self._names -- cached until a task is added or removed
  if not sorted then
    sorted = {}
    for name in pairs(self.tasks) do sorted[#sorted + 1] = name end
    table.sort(sorted)
    self._names = sorted
  end
  local out = {}
  for i = 1, #sorted do out[i] = sorted[i] end
  return out
end

-- The record of a task or nil.
function Sup:get(name) return self.tasks[name] end

-- Call fn(event) on every state change; returns the unsubscribe function.
function Sup:watch(fn)
  self.watchers[fn] = true
  return function() self.watchers[fn] = nil end
end

-- An Op ready once anything changed (for the STATUS= notifier and waiters).
function Sup:changed_op() return self.changed:wait_op() end

-- Publish a state event: wake changed_op waiters, call the watchers.
function Sup:emit(ev)
  local c = self.changed
  self.changed = cond.new()
  c:signal()
  for fn in pairs(self.watchers) do
    local okc, err = pcall(fn, ev)
    if not okc then
      self.watchers[fn] = nil
      log.daemon('warning', 'state watcher failed: %s', tostring(err))
    end
  end
end

-- Counts of tasks by state, plus the total (`tasks`).
function Sup:counts()
  local c = { tasks = 0 }
  for st, n in pairs(self.nstate) do
    if n > 0 and st ~= 'removed' then
      c[st] = n
      c.tasks = c.tasks + n
    end
  end
  return c
end

-- Plain status table of one task (see the header), or nil.
function Sup:status(name)
  local r = self.tasks[name]
  if not r then return nil end
  local t = now()
  return {
    name = r.name, file = r.file, state = r.state, since = r.since,
    uptime = t - r.since, reason = r.reason, restarts = r.restarts,
    next_restart_in = r.next_start and math.max(0, r.next_start - t) or nil,
    last_exit = r.last_exit, last_error = r.last_error,
    extra_errors = r.extra_errors or {}, ready = r.ready,
    memory = host.task_memory(r.acct), enabled = r.enabled,
    forced = r.forced or false, id = r.scope and r.scope:id() or nil,
    scope = r.scope,
  }
end

-- An Op that becomes ready (yielding the status) once pred(status) holds
-- (or the task is gone: nil).  Raceable: a losing wait unregisters itself.
function Sup:wait_op(name, pred)
  local op = require 'fibers.op'
  return op.guard(function()
    local st = self:status(name)
    if st == nil or pred(st) then return op.always(st) end
    local c, result, unsub = cond.new(), nil, nil
    unsub = self:watch(function(ev)
      if ev.task ~= name or c:is_triggered() then return end
      local s2 = self:status(name)
      if s2 == nil or pred(s2) then
        result = s2
        unsub()
        c:signal()
      end
    end)
    return c:wait_op():wrap(function() return result end):finally(function() unsub() end)
  end)
end

local function lookup(self, name)
  local r = self.tasks[name]
  if not r then return nil, 'not_found', "no task '" .. tostring(name) .. "'" end
  if self.shutting_down then return nil, 'shutting_down', 'fibersd is shutting down' end
  return r
end

-- Start a task (re-arms fatal ones).  true | nil, code, msg.
function Sup:start(name)
  local r, code, msg = lookup(self, name)
  if not r then return nil, code, msg end
  r:event('start')
  return true
end

-- Stop a task (state stopped; not restarted until started).
function Sup:stop(name)
  local r, code, msg = lookup(self, name)
  if not r then return nil, code, msg end
  r:request('stop', 'idle')
  return true
end

-- Restart a task now (stopping it first when it runs).
function Sup:restart(name)
  local r, code, msg = lookup(self, name)
  if not r then return nil, code, msg end
  r.recent, r.delay = {}, nil
  r:request('restart', 'run')
  return true
end

-- Add a task record and start its supervisor fiber.  spec = { name, file,
-- source, hash, chunk|nil, error|nil, policy, params, enabled }.
function Sup:add(spec)
  local r = setmetatable({ sv = self, file = spec.file, wake = cond.new(), ready = false }, Rec)
  machine.init(r, spec.name, spec.policy, self.env, spec.enabled == false and 'disabled' or 'loading')
  r:set_version(spec)
  self.tasks[r.name] = r
  self._names = nil
  self.nstate[r.state] = (self.nstate[r.state] or 0) + 1
  self:emit({ event = 'state', task = r.name, scope = r.name, from = nil, to = r.state,
    reason = 'added', t = now(), time = log.realtime() })
  local me = runtime.current_fiber()
  local old = me and me.tag
  if me then me.tag = nil end
  self.sup_scope:spawn(function() r:main() end)
  if me then me.tag = old end
  if r.enabled then machine.launch(r) end
  return r
end

-- Begin a graceful shutdown: no restarts; running tasks are cancelled by
-- the caller cancelling the tasks scope with "shutdown".
function Sup:shutdown()
  self.shutting_down = true
  for _, r in pairs(self.tasks) do r:request('shutdown', 'idle') end
end

-- Number of tasks whose scope has not ended yet (running or stopping).
function Sup:active()
  local n = 0
  for _, r in pairs(self.tasks) do
    if r.scope then n = n + 1 end
  end
  return n
end

-- Number of tasks still loading (READY=1 waits for 0).
function Sup:loading()
  return self.nstate.loading or 0
end

-- Every live task scope (for process counts and the final SIGKILL).
function Sup:scopes()
  local out = {}
  for _, r in pairs(self.tasks) do
    if r.scope then out[#out + 1] = r.scope end
    for s in pairs(r.abandoned or {}) do out[#out + 1] = s end
  end
  return out
end

-- ---- one task ----------------------------------------------------------------
-- A task record is a fibersd.machine (the policy: actions[state][event])
-- whose env is the daemon: runs are task scopes, the timer is the record's
-- driver fiber, log lines go to the task's log.

-- Install a (new) version: source, chunk, policy, params.
function Rec:set_version(spec)
  self.file = spec.file or self.file
  self.source, self.hash = spec.source, spec.hash
  self.first_chunk, self.compile_error = spec.chunk, spec.error
  self.policy = spec.policy
  self.params = spec.params or {}
  self.enabled = spec.enabled ~= false
  self.public = { name = self.name, file = self.file, params = self.params }
end

-- Wake the record's driver fiber (the backoff timer changed, or it is gone).
function Rec:poke()
  local c = self.wake
  self.wake = cond.new()
  c:signal()
end

-- Ask the task to stop with a reason, then do `after` (idle|run|exit|
-- disable) once it has stopped.
function Rec:request(reason, after)
  self:event('stop', { reason = reason, after = after })
end

-- Install a changed version (reload): a running task is stopped with reason
-- "reload" first; then the new version starts (unless the operator stopped
-- it or it is disabled).
function Rec:replace(spec)
  self:event('reload-changed', { spec = spec })
end

-- fibersd.ready() of this task.
function Rec:on_ready() self:event('ready') end

-- fibersd.watchdog() of this task: it is alive.
function Rec:on_watchdog() self.wd_last = now() end

-- The record's driver fiber: fires the backoff timer until the task is gone.
function Rec:main()
  while not self.gone do
    local t = self.timer_at
    if t then
      local which = fibers.named_choice({ timer = sleep.sleep_until_op(t), wake = self.wake:wait_op() })
      if which == 'timer' and self.timer_at == t then
        self.timer_at = nil
        self:event('timer')
      end
    else
      fibers.perform(self.wake:wait_op())
    end
  end
end

local function kill_tree(s, seen)
  seen = seen or {}
  if seen[s] then return end
  seen[s] = true
  local okc, snap = pcall(s.snapshot, s)
  if not okc or not snap then return end
  for _, c in ipairs(snap.commands or {}) do
    if c.pid and c.state == 'running' then host.killpg(c.pid, 9) end
  end
  local scope = require 'fibers.scope'
  for _, id in ipairs(snap.children or {}) do
    local ch = scope.by_id(id)
    if ch then kill_tree(ch, seen) end
  end
end
M.kill_tree = kill_tree

-- env.launch: start one run in a fresh task scope, supervised by a new
-- monitor fiber.  true | nil, 'compile', message | nil, 'refused', reason.
function Rec:launch_run()
  local pol = self.policy
  local chunk, err = self.first_chunk, self.compile_error
  self.first_chunk = nil
  if not chunk and not err then
    chunk, err = task.compile(self.source, self.file, task.new_env())
  end
  if not chunk then return nil, 'compile', err end
  local cg
  if cgroup.mode == 'cgroup' then
    local cerr
    cg, cerr = cgroup.new_run(self.name, pol)
    if not cg then
      log.task(self.name, self.name, 'err', '%s', cerr)
      return nil, 'refused', cerr
    end
  end
  -- defaults of every Command the run starts (fibers.exec task_defaults)
  local xd, xerr = task.exec_defaults(pol, cg)
  if xd == nil then
    if cg then cgroup.release(cg) end
    log.task(self.name, self.name, 'err', '%s', xerr)
    return nil, 'refused', xerr
  end
  local sc, why = self.sv.tasks_scope:child()
  if not sc then
    if cg then cgroup.release(cg) end
    return nil, 'refused', why
  end
  self.cg = cg
  self.exec_defaults = xd or nil
  pcall(sc.set_name, sc, self.name)
  sc:set_default('shutdown_grace', pol.shutdown_grace)
  task.register(sc, self)
  local acct = host.task_new(pol.memory_limit)
  if acct then M.live[acct] = self end
  self.scope, self.acct, self.forced = sc, acct, false
  self.fail_override, self.force_at = nil, nil
  self.started_at, self.wd_last = now(), now()
  local chunk_done = cond.new()
  local public = self.public
  local me = runtime.current_fiber()
  local oldtag = me and me.tag
  if me then me.tag = acct end
  sc:spawn(function(s)
    chunk(s, public)
    s:close()
    chunk_done:signal()
  end)
  if me then me.tag = nil end
  self.sv.sup_scope:spawn(function() self:monitor(sc, chunk_done) end)
  if me then me.tag = oldtag end
  return true
end

-- Supervise one run to its end; the end is the machine's exit event.
function Rec:monitor(sc, chunk_done)
  local pol = self.policy
  runtime.yield() -- the chunk runs its first slice before we go on
  if self.scope == sc and self.state == 'loading' then self:event('loaded') end

  local phase, status, perr, report = 'body', nil, nil, nil
  local fail_sent = false
  while true do
    -- act on what happened while we were not waiting (no lost wake-ups)
    if self.fail_override and not fail_sent and not self.intent then
      fail_sent = true
      if sc:status() == 'running' then
        log.task(self.name, self.name, 'err', '%s', self.fail_override)
        sc:cancel(self.fail_override)
      end
      -- a doomed task unwinds like a stopped one (the guard never hits the
      -- library's bookkeeping, task.c); stop_timeout remains the safety net
      -- for finalisers that block (outcome "failed" with the doom reason)
      self.force_at = self.force_at or now() + pol.stop_timeout
    end
    if self.intent and not self.force_at then
      self.force_at = now() + pol.stop_timeout
      self:stop_begins(sc)
    end
    local arms = { wake = self.wake:wait_op() }
    if phase == 'body' then
      arms.done = chunk_done:wait_op()
      arms.notok = sc:not_ok_op()
    else
      arms.joined = sc:join_op()
    end
    local wd = pol.watchdog_sec
    if wd > 0 and not self.intent and not self.fail_override then
      arms.wd = sleep.sleep_until_op(self.wd_last + wd)
    end
    if self.force_at then arms.force = sleep.sleep_until_op(self.force_at) end
    local which, a, b, c = fibers.named_choice(arms)
    if which == 'joined' then
      status, perr, report = a, b, c
      break
    elseif which == 'done' then
      phase = 'join'
    elseif which == 'notok' then
      phase = 'join'
      self:event('unwinding', { reason = b })
      self.force_at = self.force_at or now() + pol.stop_timeout
      self:stop_begins(sc)
    elseif which == 'wd' then
      if now() - self.wd_last >= wd then
        self.fail_override, fail_sent = 'watchdog timeout', true
        log.task(self.name, self.name, 'err', 'watchdog timeout (no fibersd.watchdog() for %gs)', wd)
        sc:cancel('watchdog timeout')
      end
    elseif which == 'force' then
      break
    end
  end
  self:empty_cgroup(sc, status == nil)
  self:end_run(sc, status, perr, report)
end

-- The run is stopping: processes of its cgroup outside its Commands'
-- process groups (escaped daemons) get SIGTERM now, as the groups do from
-- fibers.exec; the grace for all of them starts here.
function Rec:stop_begins(sc)
  if self.stop_t then return end
  self.stop_t = now()
  if self.cg then cgroup.term_strays(self.cg, sc) end
end

-- A run ends only once its cgroup is empty: what is left gets SIGTERM
-- (unless the stop already sent it), and after shutdown_grace (from the
-- stop's start) cgroup.kill.  Then the cgroup is removed.
function Rec:empty_cgroup(sc, forced)
  local cg = self.cg
  if not cg then return end
  self:stop_begins(sc)
  local deadline = forced and now() or self.stop_t + self.policy.shutdown_grace
  cgroup.drain(cg, deadline, function(level, fmt, ...) log.task(self.name, self.name, level, fmt, ...) end)
  self.cg, self.stop_t = nil, nil
end

-- Release a run's resources and hand its outcome to the machine.
function Rec:end_run(sc, status, perr, report)
  self.scope = nil
  if status == nil then -- forced past stop_timeout
    kill_tree(sc)
    self.abandoned = self.abandoned or setmetatable({}, { __mode = 'k' })
    self.abandoned[sc] = true
    self.forced = true
    if self.acct then M.live[self.acct] = nil end
    if self.fail_override then
      log.task(self.name, self.name, 'warning', 'did not unwind after "%s": forced (processes killed, fibers abandoned)',
        self.fail_override)
    else
      log.task(self.name, self.name, 'warning', 'did not stop within %gs: forced (processes killed, fibers abandoned)',
        self.policy.stop_timeout)
    end
  else
    local doomed = host.task_doomed(self.acct)
    if doomed and status == 'failed' then perr = doomed end
    task.unregister(sc)
    if self.acct then M.live[self.acct] = nil end
    host.task_free(self.acct)
    if status == 'failed' and tostring(perr):find('not enough memory', 1, true) then host.reclaim() end
  end
  self.acct = nil
  self.extra_errors = report and report.extra_errors or {}
  local forced = status == nil
  if self.fail_override then
    self:event('exit-fail', { reason = self.fail_override, forced = forced })
  elseif forced or status == 'ok' then
    self:event('exit-ok', { forced = forced })
  elseif status == 'failed' then
    self:event('exit-fail', { reason = perr })
  else
    self:event('exit-ok', { reason = perr })
  end
end

return M
