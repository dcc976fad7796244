-- fibersd.machine - the supervision policy of one task as a state x event
-- table: `actions[state][event]` is the function that handles `event` in
-- `state`.  Every cell is filled (a cell that has nothing to do says so with
-- `ignore`), so the table is the whole policy: restart, backoff, the give-up
-- window (fatal), stop, reload and their interplay.
--
-- The machine does no I/O itself.  Everything it needs from the world comes
-- through `m.env`, so tests drive it with a virtual clock and a fake task:
--   env.clock()                 -> now (monotonic seconds)
--   env.random()                -> [0, 1) for the backoff jitter
--   env.launch(m)               start a run: true | nil, 'compile', message
--                               | nil, 'refused', message
--   env.cancel(m, reason)       cancel the running run (its exit event follows)
--   env.timer(m, t|nil)         arm (or disarm) the one timer: event 'timer' at t
--   env.install(m, spec)        take a new version of the task (reload)
--   env.remove(m)               the task is gone (removed from the task dir)
--   env.log(m, level, fmt, ...) a log line of the task
--   env.changed(m, from, to, reason)  the state changed
--   env.shutting_down()         true once the daemon stops
--
-- States: loading running ready stopping (a run exists) and backoff exited
-- failed fatal stopped disabled (no run).  Events and their fields:
--   start                  operator start (re-arms fatal and resets backoff)
--   loaded                 the run's first slice has run
--   ready                  the task called fibersd.ready()
--   unwinding {reason}     the run's scope turned not ok (failing/cancelled)
--   exit-ok {reason, forced}  the run ended without failing (ok, or
--                          cancelled; forced = abandoned past stop_timeout)
--   exit-fail {reason, forced}  the run ended failed
--   stop {reason, after}   the daemon stops the task, then does `after`:
--                          idle | run | disable | exit
--   timer                  the backoff timer is due
--   dependency-lost {reason}  something the task needs went away
--   reload-changed {spec}  a changed version of the task (new file, params
--                          or a key whose change restarts the task)
--
-- Policy (doc/daemon.md §4): on failure (restart = on-failure|always) or a
-- clean exit (restart = always) the task restarts after a delay: failures
-- start at restart_delay and double up to restart_max_delay, clean exits
-- wait restart_delay; both get a jitter of x[0.8, 1.2].  A run that lasted
-- restart_window resets the backoff.  More than restart_limit restarts
-- within restart_window: state fatal (until `start`).  A run the daemon
-- stopped (stop, restart, reload, shutdown) ends `stopped` and is not
-- restarted by the policy; what follows is the stop's `after`.

local M = {}

local ACTIVE = { loading = true, running = true, ready = true, stopping = true }
M.ACTIVE = ACTIVE
M.STATES = { 'loading', 'running', 'ready', 'stopping', 'backoff', 'exited', 'failed', 'fatal',
  'stopped', 'disabled' }
M.EVENTS = { 'start', 'loaded', 'ready', 'unwinding', 'exit-ok', 'exit-fail', 'stop', 'timer',
  'dependency-lost', 'reload-changed' }

local Machine = {}
Machine.__index = Machine
M.Machine = Machine

-- A machine for task `name` in state `state` (default 'stopped') with
-- policy `policy` (the task's effective [defaults]/[task:NAME] keys).
function M.new(name, policy, env, state)
  return setmetatable(M.init({}, name, policy, env, state), Machine)
end

-- Initialise the machine fields of an existing table t (the supervisor's
-- task record); returns t.
function M.init(t, name, policy, env, state)
  t.name, t.policy, t.env = name, policy, env
  t.state, t.since = state or 'stopped', env.clock()
  t.restarts, t.recent, t.delay = 0, {}, nil
  t.enabled = true
  return t
end

-- Change state and tell env.changed (also when only the reason changes).
function Machine:set_state(to, reason)
  local from = self.state
  if from == to and self.reason == reason then return end
  self.state, self.reason, self.since = to, reason, self.env.clock()
  if to ~= 'backoff' and self.next_start then
    self.next_start = nil
    self.env.timer(self, nil)
  end
  self.env.changed(self, from, to, reason)
end

-- Handle one event: actions[state][event](self, ev).
function Machine:event(name, ev)
  local row = M.actions[self.state]
  local fn = row and row[name]
  if not fn then error('fibersd.machine: no action for ' .. tostring(self.state) .. ' x ' .. tostring(name), 2) end
  return fn(self, ev or {})
end

-- ---- the actions ----------------------------------------------------------

local function ignore() end

-- Forget the restart history (start, restart, reload of a new version).
local function rearm(m)
  m.recent, m.delay = {}, nil
end

-- Start a run now (also the first run of a new record).
local function launch(m)
  m.intent, m.after, m.pending = nil, nil, nil
  if m.next_start then
    m.next_start = nil
    m.env.timer(m, nil)
  end
  m.ready = false
  m:set_state('loading')
  local ok, why, msg = m.env.launch(m)
  if ok then
    m.started_at = m.env.clock()
  elseif why == 'compile' then
    m.last_error, m.last_exit = msg, 'failed'
    m.env.log(m, 'err', '%s', msg)
    m:set_state('failed', 'compile error')
  else
    m:set_state('stopped', msg)
  end
end

M.launch = launch

local function start(m)
  rearm(m)
  launch(m)
end

local function start_active(m) rearm(m) end

local function loaded(m) m:set_state('running') end

local function ready(m)
  if m.ready then return end
  m.ready = true
  if m.state ~= 'stopping' then m:set_state('ready') end
  m.env.log(m, 'info', 'ready')
end

local function unwinding(m, ev)
  if not m.intent and m.env.shutting_down() then m.intent = 'shutdown' end
  m:set_state('stopping', m.intent or ev.reason)
end

-- Cancel the run with `reason`; `after` says what follows its end.
local function begin_stop(m, ev)
  m.after = ev.after or 'idle'
  if ev.spec then m.pending = ev.spec end
  if not m.intent then
    m.intent = ev.reason
    m.env.cancel(m, ev.reason)
  end
  m:set_state('stopping', m.intent)
end

-- A stop while stopping: the run is already going; the later `after` wins.
-- A run unwinding on its own (it failed) has no intent yet: the stop's
-- reason becomes it, so the run's end does the stop's `after` (e.g. a
-- reload's removal) instead of the restart policy.
local function restop(m, ev)
  m.after = ev.after or 'idle'
  if ev.spec then m.pending = ev.spec end
  if not m.intent then m.intent = ev.reason end
end

-- Install the pending version; run it unless it is disabled.
local function replace_now(m, spec, reason)
  m.env.install(m, spec)
  if not m.enabled then
    m:set_state('disabled', reason)
  else
    launch(m)
  end
end

-- What follows a stop, once no run exists.
local function after_stop(m, after, reason)
  if after == 'run' then
    launch(m)
  elseif after == 'replace' then
    local spec = m.pending
    m.pending = nil
    replace_now(m, spec, reason)
  elseif after == 'disable' then
    m:set_state('disabled', reason)
  elseif after == 'exit' then
    m.env.remove(m)
  end
end

-- A stop without a run: backoff ends stopped; other states keep theirs.
local function stop_idle(m, ev)
  local after = ev.after or 'idle'
  if after == 'idle' then
    if m.state == 'backoff' then m:set_state('stopped', ev.reason) end
  else
    if m.state == 'backoff' and after ~= 'run' then m:set_state('stopped', ev.reason) end
    after_stop(m, after, ev.reason)
  end
end

-- Backoff and the give-up window after a run of `dur` seconds.
local function schedule_restart(m, failure, dur)
  local pol, t = m.policy, m.env.clock()
  local window = pol.restart_window
  if dur >= window then rearm(m) end
  local recent = {}
  for _, ts in ipairs(m.recent) do
    if t - ts < window then recent[#recent + 1] = ts end
  end
  m.recent = recent
  if #recent >= pol.restart_limit then
    m.env.log(m, 'err', 'more than %d restarts within %gs: giving up (fatal); last error: %s',
      pol.restart_limit, window, tostring(m.last_error or 'none'))
    m:set_state('fatal', m.last_error)
    return
  end
  recent[#recent + 1] = t
  m.restarts = m.restarts + 1
  local first, maxd = pol.restart_delay, pol.restart_max_delay
  local base
  if failure then
    base = math.min(m.delay or first, maxd)
    m.delay = math.min(base * 2, maxd)
  else
    base = math.min(first, maxd)
  end
  local d = base * (0.8 + 0.4 * m.env.random())
  if d > 0 then
    m.next_start = t + d
    m.env.log(m, 'notice', 'restarting in %.3fs (restart %d)', d, m.restarts)
    m:set_state('backoff', string.format('%.3f', d))
    m.env.timer(m, m.next_start)
  else
    launch(m)
  end
end

-- The run ended: outcome, log line, then the stop's `after` or the policy.
local function finish(m, failed, ev)
  local dur = m.env.clock() - (m.started_at or m.env.clock())
  local intent, after = m.intent, m.after
  m.intent, m.after, m.ready = nil, nil, false
  local outcome, reason
  if failed then
    outcome, reason = 'failed', ev.reason
  elseif ev.forced then
    outcome, reason = 'stopped', 'forced'
  elseif intent then
    outcome, reason = 'stopped', intent
  else
    outcome, reason = 'exited', ev.reason
  end
  if ev.forced and not failed then
    m.last_exit = 'stopped (forced)'
  elseif outcome == 'exited' then
    m.last_exit = reason and ('exited: ' .. tostring(reason)) or 'exited'
  else
    m.last_exit = outcome
  end
  if outcome == 'failed' then
    m.last_error = tostring(reason)
    m.env.log(m, 'err', 'failed: %s', m.last_error)
  elseif outcome == 'exited' then
    m.env.log(m, 'info', 'exited%s', reason and (' (' .. tostring(reason) .. ')') or '')
  else
    m.env.log(m, 'info', 'stopped (%s)', tostring(reason))
  end
  m:set_state(outcome, reason)
  if intent or m.env.shutting_down() then
    if not m.env.shutting_down() then after_stop(m, after, intent) end
    return
  end
  local restart = m.policy.restart
  if outcome == 'failed' and restart ~= 'no' then
    schedule_restart(m, true, dur)
  elseif outcome == 'exited' and restart == 'always' then
    schedule_restart(m, false, dur)
  end
end

local function exit_ok(m, ev) finish(m, false, ev) end
local function exit_fail(m, ev) finish(m, true, ev) end

local function timer(m)
  if m.next_start and m.env.clock() >= m.next_start then
    launch(m)
  elseif m.next_start then
    m.env.timer(m, m.next_start) -- early or stale: re-arm
  end
end

local function dependency_lost(m, ev)
  begin_stop(m, { reason = ev.reason or 'dependency lost', after = 'idle' })
end

local function dependency_lost_backoff(m, ev)
  m:set_state('stopped', ev.reason or 'dependency lost')
end

local function reload_active(m, ev)
  rearm(m)
  begin_stop(m, { reason = 'reload', after = 'replace', spec = ev.spec })
end

local function reload_stopping(m, ev)
  rearm(m)
  restop(m, { after = 'replace', spec = ev.spec })
end

-- A new version while no run exists: install it; it runs unless disabled
-- or stopped by the operator (who starts it again with `start`).
local function reload_idle(m, ev)
  rearm(m)
  if m.state == 'stopped' and m.reason == 'stop' then
    m.env.install(m, ev.spec)
    if not m.enabled then m:set_state('disabled', 'reload') end
    return
  end
  replace_now(m, ev.spec, 'reload')
end

local function row(t)
  for _, e in ipairs(M.EVENTS) do assert(t[e], e) end
  return t
end

-- actions[state][event]; the columns are M.EVENTS.
M.actions = {
  loading = row {
    start = start_active, loaded = loaded, ready = ready, unwinding = unwinding,
    ['exit-ok'] = exit_ok, ['exit-fail'] = exit_fail, stop = begin_stop, timer = ignore,
    ['dependency-lost'] = dependency_lost, ['reload-changed'] = reload_active },
  running = row {
    start = start_active, loaded = ignore, ready = ready, unwinding = unwinding,
    ['exit-ok'] = exit_ok, ['exit-fail'] = exit_fail, stop = begin_stop, timer = ignore,
    ['dependency-lost'] = dependency_lost, ['reload-changed'] = reload_active },
  ready = row {
    start = start_active, loaded = ignore, ready = ignore, unwinding = unwinding,
    ['exit-ok'] = exit_ok, ['exit-fail'] = exit_fail, stop = begin_stop, timer = ignore,
    ['dependency-lost'] = dependency_lost, ['reload-changed'] = reload_active },
  stopping = row {
    start = start_active, loaded = ignore, ready = ready, unwinding = ignore,
    ['exit-ok'] = exit_ok, ['exit-fail'] = exit_fail, stop = restop, timer = ignore,
    ['dependency-lost'] = ignore, ['reload-changed'] = reload_stopping },
  backoff = row {
    start = start, loaded = ignore, ready = ignore, unwinding = ignore,
    ['exit-ok'] = ignore, ['exit-fail'] = ignore, stop = stop_idle, timer = timer,
    ['dependency-lost'] = dependency_lost_backoff, ['reload-changed'] = reload_idle },
}
for _, st in ipairs({ 'exited', 'failed', 'fatal', 'stopped', 'disabled' }) do
  M.actions[st] = row {
    start = start, loaded = ignore, ready = ignore, unwinding = ignore,
    ['exit-ok'] = ignore, ['exit-fail'] = ignore, stop = stop_idle, timer = ignore,
    ['dependency-lost'] = ignore, ['reload-changed'] = reload_idle }
end

return M
