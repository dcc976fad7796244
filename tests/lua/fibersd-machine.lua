-- tests/lua/fibersd-machine.lua - the supervision policy (fibersd.machine,
-- doc/daemon.md §4) driven directly: a virtual clock, a fake task, no
-- daemon, no sockets, no sleeping.  Every cell of actions[state][event] is
-- exercised once (the cell table below), then every rule of restart,
-- backoff, the give-up window, fatal, stop and reload on its own.
local t = require 'tap'
local machine = require 'fibersd.machine'

local cpu0 = os.clock()

-- A world for one machine: the clock, the jitter, the fake task's launch
-- results, and everything the machine asked of it.
local function world(policy, opts)
  opts = opts or {}
  local w = { now = 100, rand = 0.5, launches = 0, cancels = {}, timers = {}, logs = {},
    changes = {}, installs = {}, removed = false, stopping = false, launch_result = { true } }
  local pol = { restart = 'on-failure', restart_delay = 0.1, restart_max_delay = 30,
    restart_limit = 5, restart_window = 60 }
  for k, v in pairs(policy or {}) do pol[k] = v end
  w.env = {
    clock = function() return w.now end,
    random = function() return w.rand end,
    launch = function(m)
      w.launches = w.launches + 1
      return (table.unpack or unpack)(w.launch_result)
    end,
    cancel = function(m, reason) w.cancels[#w.cancels + 1] = reason end,
    timer = function(m, at) w.timers[#w.timers + 1] = at or false end,
    install = function(m, spec)
      w.installs[#w.installs + 1] = spec
      m.enabled = spec.enabled ~= false
    end,
    remove = function(m) w.removed = true end,
    log = function(m, level, fmt, ...) w.logs[#w.logs + 1] = level .. ' ' .. string.format(fmt, ...) end,
    changed = function(m, from, to, reason)
      w.changes[#w.changes + 1] = from .. '>' .. to .. (reason and (':' .. tostring(reason)) or '')
    end,
    shutting_down = function() return w.stopping end,
  }
  w.m = machine.new('web', pol, w.env, opts.state)
  return w
end

-- A machine in `state` as the daemon would have it.
local function in_state(state, policy)
  local w = world(policy, { state = state })
  local m = w.m
  if machine.ACTIVE[state] then m.started_at = w.now end
  if state == 'stopping' then m.intent, m.after = 'stop', 'idle' end
  if state == 'backoff' then m.next_start = w.now + 1 end
  if state == 'stopped' then m.reason = 'stop' end
  if state == 'ready' then m.ready = true end
  return w
end

-- ---- the table is total ---------------------------------------------------
do
  local missing = {}
  for _, st in ipairs(machine.STATES) do
    for _, ev in ipairs(machine.EVENTS) do
      if type((machine.actions[st] or {})[ev]) ~= 'function' then missing[#missing + 1] = st .. ' x ' .. ev end
    end
  end
  t.is(table.concat(missing, ', '), '', 'every state has an action for every event')
  local n = 0
  for _ in pairs(machine.actions) do n = n + 1 end
  t.is(n, #machine.STATES, 'no row for an unknown state')
  t.raises(function() world().m:event('bogus') end, 'no action for stopped x bogus', 'an unknown event raises')
end

-- ---- every cell: the state after each event, and whether a run started -----
local payload = {
  start = {}, loaded = {}, ready = {}, unwinding = { reason = 'boom' }, ['exit-ok'] = {},
  ['exit-fail'] = { reason = 'boom' }, stop = { reason = 'stop', after = 'idle' }, timer = {},
  ['dependency-lost'] = {}, ['reload-changed'] = { spec = { enabled = true } },
}
-- expected[state] = the states after the events, in the order of machine.EVENTS:
-- start loaded ready unwinding exit-ok exit-fail stop timer dependency-lost reload-changed
-- ("+" after a state: a run was launched)
local expected = {
  loading = 'loading running ready stopping exited backoff stopping loading stopping stopping',
  running = 'running running ready stopping exited backoff stopping running stopping stopping',
  ready = 'ready ready ready stopping exited backoff stopping ready stopping stopping',
  stopping = 'stopping stopping stopping stopping stopped failed stopping stopping stopping stopping',
  backoff = 'loading+ backoff backoff backoff backoff backoff stopped loading+ stopped loading+',
  exited = 'loading+ exited exited exited exited exited exited exited exited loading+',
  failed = 'loading+ failed failed failed failed failed failed failed failed loading+',
  fatal = 'loading+ fatal fatal fatal fatal fatal fatal fatal fatal loading+',
  stopped = 'loading+ stopped stopped stopped stopped stopped stopped stopped stopped stopped',
  disabled = 'loading+ disabled disabled disabled disabled disabled disabled disabled disabled loading+',
}
for _, st in ipairs(machine.STATES) do
  local got = {}
  for _, ev in ipairs(machine.EVENTS) do
    local w = in_state(st)
    if ev == 'timer' then w.now = w.now + 2 end
    w.m:event(ev, payload[ev])
    got[#got + 1] = w.m.state .. (w.launches > 0 and '+' or '')
  end
  t.is(table.concat(got, ' '), expected[st], 'row ' .. st)
end

-- ---- restart and backoff --------------------------------------------------
do -- failures back off from restart_delay, doubling, capped at restart_max_delay
  local w = world({ restart_delay = 1, restart_max_delay = 5, restart_limit = 100 })
  local m = w.m
  m:event('start')
  local delays = {}
  for _ = 1, 5 do
    m:event('exit-fail', { reason = 'boom' })
    delays[#delays + 1] = string.format('%g', m.next_start - w.now)
    t.is(w.timers[#w.timers], m.next_start, 'the timer is armed at next_start')
    w.now = m.next_start
    m:event('timer')
    m:event('loaded')
  end
  t.is(table.concat(delays, ' '), '1 2 4 5 5', 'backoff 1 2 4 then capped at 5')
  t.is(m.restarts, 5, 'five restarts counted')
  t.is(w.launches, 6, 'six runs')
  t.like(w.logs[#w.logs], '^notice restarting in 5.000s %(restart 5%)$', 'restart logged with its delay')
end

do -- jitter: x0.8 .. x1.2 of the delay
  local lo, hi = world({ restart_delay = 1 }), world({ restart_delay = 1 })
  lo.rand, hi.rand = 0, 0.999999
  for _, w in ipairs({ lo, hi }) do
    w.m:event('start')
    w.m:event('exit-fail', { reason = 'x' })
  end
  t.is(string.format('%.3f', lo.m.next_start - lo.now), '0.800', 'jitter low end x0.8')
  t.is(string.format('%.3f', hi.m.next_start - hi.now), '1.200', 'jitter high end x1.2')
  t.is(lo.m.reason, '0.800', 'backoff reason is the delay')
end

do -- restart = always: a clean exit restarts after restart_delay, no doubling
  local w = world({ restart = 'always', restart_delay = 2 })
  local m = w.m
  m:event('start')
  for i = 1, 3 do
    m:event('exit-ok')
    t.is(m.state, 'backoff', 'always: clean exit ' .. i .. ' backs off')
    t.is(m.next_start - w.now, 2, 'always: delay stays restart_delay')
    w.now = m.next_start
    m:event('timer')
  end
  t.is(m.restarts, 3, 'always: clean exits count as restarts')
end

do -- on-failure: a clean exit stays exited; restart = no: a failure stays failed
  local w = world()
  w.m:event('start')
  w.m:event('exit-ok', { reason = 'done' })
  t.is(w.m.state, 'exited', 'on-failure: clean exit is not restarted')
  t.is(w.m.last_exit, 'exited: done', 'last_exit carries the reason')
  local n = world({ restart = 'no' })
  n.m:event('start')
  n.m:event('exit-fail', { reason = 'boom' })
  t.is(n.m.state, 'failed', 'restart = no: failure is final')
  t.is(n.m.last_error, 'boom', 'last_error')
  t.is(n.m.last_exit, 'failed', 'last_exit failed')
  t.is(n.launches, 1, 'no second run')
end

do -- restart_delay = 0: restarted at once, no backoff state
  local w = world({ restart_delay = 0 })
  w.m:event('start')
  w.m:event('exit-fail', { reason = 'boom' })
  t.is(w.m.state, 'loading', 'restart_delay 0: straight back to loading')
  t.is(w.launches, 2, 'restart_delay 0: launched again')
  t.is(table.concat(w.changes, ' '), 'stopped>loading loading>failed:boom failed>loading',
    'restart_delay 0: failed then loading, no backoff')
end

-- ---- the give-up window and fatal -----------------------------------------
do -- more than restart_limit restarts within restart_window: fatal
  local w = world({ restart_limit = 3, restart_window = 60, restart_delay = 1 })
  local m = w.m
  m:event('start')
  for _ = 1, 3 do
    m:event('exit-fail', { reason = 'boom' })
    w.now = m.next_start
    m:event('timer')
  end
  m:event('exit-fail', { reason = 'last words' })
  t.is(m.state, 'fatal', 'the 4th failure within the window is fatal')
  t.is(m.reason, 'last words', 'fatal carries the last error')
  t.is(w.logs[#w.logs], 'err more than 3 restarts within 60s: giving up (fatal); last error: last words',
    'giving up is logged with the last error')
  t.is(m.next_start, nil, 'no restart scheduled')
  m:event('timer')
  t.is(m.state, 'fatal', 'a stale timer does not revive a fatal task')
  m:event('start')
  t.is(m.state, 'loading', 'start re-arms a fatal task')
  m:event('exit-fail', { reason = 'again' })
  t.is(m.state, 'backoff', 'after start the restart history is new')
  t.is(m.next_start - w.now, 1, 'and the backoff starts over')
end

do -- restarts older than the window do not count
  local w = world({ restart_limit = 2, restart_window = 10, restart_delay = 1 })
  local m = w.m
  m:event('start')
  for _ = 1, 6 do
    m:event('exit-fail', { reason = 'boom' })
    t.is(m.state, 'backoff', 'spread-out failures keep backing off')
    w.now = w.now + 6
    m:event('timer')
  end
end

do -- a run that lasted restart_window resets the backoff
  local w = world({ restart_delay = 1, restart_window = 30 })
  local m = w.m
  m:event('start')
  m:event('exit-fail', { reason = 'a' })
  w.now = m.next_start; m:event('timer')
  m:event('exit-fail', { reason = 'b' })
  t.is(m.next_start - w.now, 2, 'second quick failure: doubled')
  w.now = m.next_start; m:event('timer')
  w.now = w.now + 30
  m:event('exit-fail', { reason = 'c' })
  t.is(m.next_start - w.now, 1, 'after a run of restart_window: back to restart_delay')
end

do -- an early timer (stale wake-up) re-arms instead of starting
  local w = world({ restart_delay = 5 })
  w.m:event('start')
  w.m:event('exit-fail', { reason = 'x' })
  local at = w.m.next_start
  w.now = at - 1
  w.m:event('timer')
  t.is(w.m.state, 'backoff', 'early timer: still in backoff')
  t.is(w.timers[#w.timers], at, 'early timer: re-armed at next_start')
end

-- ---- runs that do not start -----------------------------------------------
do
  local w = world()
  w.launch_result = { nil, 'compile', 'web.lua:3: syntax error' }
  w.m:event('start')
  t.is(w.m.state, 'failed', 'compile error: failed')
  t.is(w.m.reason, 'compile error', 'compile error: reason')
  t.is(w.m.last_error, 'web.lua:3: syntax error', 'compile error: last_error')
  t.is(w.logs[1], 'err web.lua:3: syntax error', 'compile error logged')
  local r = world()
  r.launch_result = { nil, 'refused', 'scope is closed' }
  r.m:event('start')
  t.is(r.m.state, 'stopped', 'no task scope: stopped')
  t.is(r.m.reason, 'scope is closed', 'no task scope: the reason')
end

-- ---- stop -------------------------------------------------------------------
do -- stop: cancelled with the reason, ends stopped, never restarted
  local w = world({ restart = 'always' })
  local m = w.m
  m:event('start'); m:event('loaded')
  m:event('stop', { reason = 'stop', after = 'idle' })
  t.is(m.state, 'stopping', 'stop: stopping')
  t.is(w.cancels[1], 'stop', 'stop: the run is cancelled with "stop"')
  m:event('unwinding', { reason = 'stop' })
  m:event('stop', { reason = 'stop', after = 'idle' })
  t.is(#w.cancels, 1, 'a second stop does not cancel twice')
  m:event('exit-ok', { reason = 'stop' })
  t.is(m.state, 'stopped', 'stop: stopped')
  t.is(m.reason, 'stop', 'stop: reason stop')
  t.is(w.launches, 1, 'stop: not restarted even with restart = always')
  t.is(m.last_exit, 'stopped', 'stop: last_exit')
end

do -- a failure while stopping is shown as failed and not restarted
  local w = world()
  w.m:event('start')
  w.m:event('stop', { reason = 'stop', after = 'idle' })
  w.m:event('exit-fail', { reason = 'finaliser error' })
  t.is(w.m.state, 'failed', 'failure during stop: failed')
  t.is(w.launches, 1, 'failure during stop: no restart')
end

do -- removed by a reload while unwinding from its own failure: removed, not restarted
  local w = world()
  w.m:event('start'); w.m:event('loaded')
  w.m:event('unwinding', { reason = 'boom' })
  w.m:event('stop', { reason = 'reload', after = 'exit' })
  w.m:event('exit-fail', { reason = 'boom' })
  t.is(w.m.state, 'failed', 'stop while unwinding from a failure: the failure is shown')
  t.ok(w.removed, 'stop while unwinding from a failure: the stop\'s after (exit) is done')
  t.is(w.launches, 1, 'stop while unwinding from a failure: no restart')
  t.is(w.m.next_start, nil, 'stop while unwinding from a failure: no backoff')
end

do -- restart: stop, then run again at once
  local w = world()
  w.m:event('start'); w.m:event('loaded')
  w.m:event('stop', { reason = 'restart', after = 'run' })
  w.m:event('exit-ok', { reason = 'restart' })
  t.is(w.m.state, 'loading', 'restart: running again')
  t.is(w.launches, 2, 'restart: a second run')
  t.is(table.concat(w.changes, ' '),
    'stopped>loading loading>running running>stopping:restart stopping>stopped:restart stopped>loading',
    'restart: the transitions')
end

do -- restart of an idle task starts it; a later stop during a restart wins
  local w = in_state('failed')
  w.m:event('stop', { reason = 'restart', after = 'run' })
  t.is(w.m.state, 'loading', 'restart of a failed task: starts it')
  local s = world()
  s.m:event('start')
  s.m:event('stop', { reason = 'restart', after = 'run' })
  s.m:event('stop', { reason = 'stop', after = 'idle' })
  s.m:event('exit-ok')
  t.is(s.m.state, 'stopped', 'stop during restart: stays stopped')
  t.is(s.m.reason, 'restart', 'stop during restart: the first reason is kept')
end

do -- stop of a task in backoff: stopped, timer disarmed
  local w = in_state('backoff')
  w.m:event('stop', { reason = 'stop', after = 'idle' })
  t.is(w.m.state, 'stopped', 'backoff + stop: stopped')
  t.is(w.m.next_start, nil, 'backoff + stop: no next start')
  t.is(w.timers[#w.timers], false, 'backoff + stop: the timer is disarmed')
end

do -- removed from the task dir (after = exit) and disabled (after = disable)
  local w = world()
  w.m:event('start')
  w.m:event('stop', { reason = 'reload', after = 'exit' })
  t.is(w.removed, false, 'removal waits for the run to end')
  w.m:event('exit-ok', { reason = 'reload' })
  t.is(w.removed, true, 'removed once the run ended')
  local i = in_state('exited')
  i.m:event('stop', { reason = 'reload', after = 'exit' })
  t.is(i.removed, true, 'an idle task is removed at once')
  local d = world()
  d.m:event('start')
  d.m:event('stop', { reason = 'reload', after = 'disable' })
  d.m:event('exit-ok')
  t.is(d.m.state, 'disabled', 'disable: disabled after the run ended')
  t.is(d.m.reason, 'reload', 'disable: reason reload')
end

do -- forced past stop_timeout
  local w = world()
  w.m:event('start')
  w.m:event('stop', { reason = 'stop', after = 'idle' })
  w.m:event('exit-ok', { forced = true })
  t.is(w.m.state, 'stopped', 'forced: stopped')
  t.is(w.m.reason, 'forced', 'forced: reason forced')
  t.is(w.m.last_exit, 'stopped (forced)', 'forced: last_exit')
  local f = world()
  f.m:event('start')
  f.m:event('exit-fail', { reason = 'watchdog timeout', forced = true })
  t.is(f.m.state, 'backoff', 'forced failure: the policy applies')
  t.is(f.m.last_error, 'watchdog timeout', 'forced failure: last_error')
end

do -- shutdown: nothing restarts; a run cancelled with no intent counts as shutdown
  local w = world({ restart = 'always' })
  w.m:event('start'); w.m:event('loaded')
  w.stopping = true
  w.m:event('unwinding', { reason = 'shutdown' })
  t.is(w.m.intent, 'shutdown', 'shutdown: the intent is shutdown')
  w.m:event('exit-ok', { reason = 'shutdown' })
  t.is(w.m.state, 'stopped', 'shutdown: stopped')
  t.is(w.launches, 1, 'shutdown: no restart')
  local f = world()
  f.m:event('start')
  f.stopping = true
  f.m:event('exit-fail', { reason = 'boom' })
  t.is(f.m.state, 'failed', 'failure during shutdown: failed, no backoff')
end

do -- a task that cancels itself exits with its reason
  local w = world()
  w.m:event('start'); w.m:event('loaded')
  w.m:event('unwinding', { reason = 'all done' })
  t.is(w.m.state, 'stopping', 'self-cancel: stopping')
  t.is(w.m.reason, 'all done', 'self-cancel: its reason')
  w.m:event('exit-ok', { reason = 'all done' })
  t.is(w.m.state, 'exited', 'self-cancel: exited')
  t.is(w.m.reason, 'all done', 'self-cancel: exited with its reason')
end

-- ---- ready, dependency lost, reload -----------------------------------------
do
  local w = world()
  w.m:event('start'); w.m:event('loaded')
  w.m:event('ready'); w.m:event('ready')
  t.is(w.m.state, 'ready', 'ready')
  local n = 0
  for _, l in ipairs(w.logs) do if l == 'info ready' then n = n + 1 end end
  t.is(n, 1, 'ready is logged once per run')
  w.m:event('exit-fail', { reason = 'x' })
  t.is(w.m.ready, false, 'ready is cleared when the run ends')
end

do
  local w = world({ restart = 'always' })
  w.m:event('start'); w.m:event('loaded')
  w.m:event('dependency-lost', { reason = 'db is gone' })
  t.is(w.m.state, 'stopping', 'dependency lost: stopping')
  t.is(w.cancels[1], 'db is gone', 'dependency lost: cancelled with the reason')
  w.m:event('exit-ok', { reason = 'db is gone' })
  t.is(w.m.state, 'stopped', 'dependency lost: stopped')
  t.is(w.launches, 1, 'dependency lost: not restarted by the policy')
  local b = in_state('backoff')
  b.m:event('dependency-lost')
  t.is(b.m.reason, 'dependency lost', 'dependency lost in backoff: stopped with the default reason')
end

do -- reload of a running task: stop with "reload", then the new version runs
  local w = world()
  local spec = { enabled = true, hash = 'new' }
  w.m:event('start'); w.m:event('loaded')
  w.m:event('reload-changed', { spec = spec })
  t.is(w.cancels[1], 'reload', 'reload: cancelled with "reload"')
  t.is(#w.installs, 0, 'reload: installed only once the old run ended')
  w.m:event('exit-ok', { reason = 'reload' })
  t.is(w.installs[1], spec, 'reload: the new version installed')
  t.is(w.m.state, 'loading', 'reload: the new version runs')
  local d = world()
  d.m:event('start')
  d.m:event('reload-changed', { spec = { enabled = false } })
  d.m:event('exit-ok')
  t.is(d.m.state, 'disabled', 'reload to a disabled version: disabled')
  local s = in_state('stopped')
  s.m:event('reload-changed', { spec = { enabled = true } })
  t.is(s.m.state, 'stopped', 'reload of an operator-stopped task: stays stopped')
  t.is(#s.installs, 1, 'reload of an operator-stopped task: new version installed')
  local o = world({}, { state = 'stopped' })
  o.m.reason = 'shutdown'
  o.m:event('reload-changed', { spec = { enabled = true } })
  t.is(o.m.state, 'loading', 'reload of a task stopped for another reason: runs')
  local f = in_state('fatal')
  f.m.recent = { 1, 2, 3, 4, 5 }
  f.m:event('reload-changed', { spec = { enabled = true } })
  t.is(#f.m.recent, 0, 'reload of a new version forgets the restart history')
end

t.ok(os.clock() - cpu0 < 2, 'the whole table runs in well under 2 s of CPU')
t.done()
