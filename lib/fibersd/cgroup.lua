-- fibersd.cgroup - containment: one cgroup v2 per task.
--
-- With a writable cgroup v2 subtree (systemd Delegate=yes, or root with a
-- cgroup of its own on the unified hierarchy) the daemon moves itself to
-- `<own>/supervisor` (cgroup v2 allows processes only in leaves) and each
-- run of a task gets a fresh `<own>/task-<name>`; every Command of the
-- task is spawned into it (fibers.exec's host task_defaults), so whatever
-- its children start - setsid, double forks - stays in it.  A run ends only
-- when that cgroup is empty ("populated 0" in cgroup.events, waited for
-- through inotify): processes outside the task's Commands' process groups
-- get SIGTERM when the stop begins, after shutdown_grace cgroup.kill ends
-- what is left.  The empty cgroup is removed (a fresh one per run: some
-- kernels kill clone3 children placed into a cgroup killed before).
-- Leftover task-* cgroups of a previous daemon (SIGKILLed) are killed and
-- removed at start, each process named in the log.
--
-- Without that (no unified hierarchy, not root and not delegated, or the
-- daemon in the hierarchy's root cgroup, shared with everything else) the
-- mode is `process-group`: tasks' processes are tracked by process group,
-- as fibers.exec does anyway; setup() says once what that cannot catch.
-- Must not: block except in wait_empty/drain (Ops on the inotify fd).

local fibers = require 'fibers'
local sleep = require 'fibers.sleep'
local core = require 'fibers.core'

local CG = core.cgroup
local P = core.proc

local M = { mode = 'process-group', why = nil, base = nil, controllers = {}, available = '' }

local LIMIT_FILES = { memory_max = 'memory.max', cpu_weight = 'cpu.weight', cpu_max = 'cpu.max',
  pids_max = 'pids.max' }
local LIMIT_CTRL = { memory_max = 'memory', cpu_weight = 'cpu', cpu_max = 'cpu', pids_max = 'pids' }
M.LIMIT_CTRL = LIMIT_CTRL
M.LIMIT_KEYS = { 'cpu_max', 'cpu_weight', 'memory_max', 'pids_max' }

local function words(s)
  local t = {}
  for w in (s or ''):gmatch('%S+') do t[#t + 1] = w end
  return t
end

-- "sleep 100 (pid 123)": a process for the log.
function M.describe(pid)
  local f = io.open('/proc/' .. pid .. '/cmdline', 'rb')
  local cmd = f and f:read('a') or ''
  if f then f:close() end
  cmd = cmd:gsub('%z$', ''):gsub('%z', ' ')
  if cmd == '' then
    f = io.open('/proc/' .. pid .. '/comm', 'r')
    cmd = f and (f:read('l') or '') or '?'
    if f then f:close() end
    cmd = '[' .. cmd .. ']'
  end
  if #cmd > 200 then cmd = cmd:sub(1, 200) .. '...' end
  return string.format('pid %d (%s)', pid, cmd)
end

-- Process group of pid (nil when it is gone).
local function pgid_of(pid)
  local f = io.open('/proc/' .. pid .. '/stat', 'r')
  if not f then return nil end
  local s = f:read('a') or ''
  f:close()
  local pg = s:match('%) %S+ %d+ (%d+)')
  return pg and tonumber(pg)
end
M.pgid_of = pgid_of

-- Decide the mode at start: 'cgroup' (tree built, daemon moved) or
-- 'process-group' (M.why says why).  force = 'process-group' skips it.
function M.setup(force)
  M.mode, M.base, M.why, M.controllers = 'process-group', nil, nil, {}
  if force == 'process-group' then
    M.why = 'containment = process-group in the configuration'
    return M.mode
  end
  if not CG then M.why = 'built without cgroup support'; return M.mode end
  local own, err = CG.path_of()
  if not own then M.why = 'no cgroup v2 hierarchy (' .. tostring(err) .. ')'; return M.mode end
  local mnt = CG.mount()
  if own == mnt then
    M.why = 'fibersd runs in the root cgroup of ' .. own .. ', which it does not own'
    return M.mode
  end
  -- restarted inside our own supervisor cgroup (e.g. exec'd in place)
  if own:match('/supervisor$') then own = own:gsub('/supervisor$', '') end
  local sup = own .. '/supervisor'
  local ok, e = CG.create(sup)
  if not ok then M.why = 'cannot create ' .. sup .. ' (' .. tostring(e) .. ')'; return M.mode end
  ok, e = CG.attach(sup)
  if not ok then
    CG.remove(sup)
    M.why = 'cannot move fibersd to ' .. sup .. ' (' .. tostring(e) .. ')'
    return M.mode
  end
  M.base, M.mode = own, 'cgroup'
  -- controllers for the task cgroups: enable what the parent offers
  M.available = table.concat(words(CG.read(own, 'cgroup.controllers')), ' ')
  for _, c in ipairs(words(M.available)) do
    if c == 'memory' or c == 'cpu' or c == 'pids' then CG.write(own, 'cgroup.subtree_control', '+' .. c) end
  end
  for _, c in ipairs(words(CG.read(own, 'cgroup.subtree_control'))) do M.controllers[c] = true end
  return M.mode
end

-- What setup would decide, without changing anything (fibersd --check):
-- the mode, and the controllers the own cgroup offers.
function M.probe()
  M.mode, M.base, M.why, M.controllers, M.available = 'process-group', nil, nil, {}, ''
  local own, err = CG.path_of()
  if not own then M.why = 'no cgroup v2 hierarchy (' .. tostring(err) .. ')'; return M.mode end
  if own == CG.mount() then
    M.why = 'fibersd runs in the root cgroup of ' .. own .. ', which it does not own'
    return M.mode
  end
  local f = io.open(own .. '/cgroup.procs', 'a')
  if not f then M.why = 'cannot write ' .. own; return M.mode end
  f:close()
  M.base, M.mode = own, 'cgroup'
  M.available = table.concat(words(CG.read(own, 'cgroup.controllers')), ' ')
  for _, c in ipairs(words(M.available)) do M.controllers[c] = true end
  return M.mode
end

-- The cgroup.controllers line the refusal message quotes.
function M.controllers_line()
  local t = {}
  for c in pairs(M.controllers) do t[#t + 1] = c end
  table.sort(t)
  return table.concat(t, ' ')
end

-- nil, or the message refusing limit key `key` (its controller is missing).
function M.refuse_limit(key)
  local c = LIMIT_CTRL[key]
  if M.mode == 'cgroup' and M.controllers[c] then return nil end
  if M.mode ~= 'cgroup' then
    return string.format('%s: the %s controller is not available: containment is process-group (%s)', key, c,
      tostring(M.why))
  end
  return string.format('%s: the %s controller is not delegated to fibersd (cgroup.controllers: %s)', key, c,
    M.available == '' and 'empty' or M.available)
end

-- Wait until path is empty (or gone); false when deadline (monotonic,
-- optional) passed first.  Blocks the calling fiber on an inotify fd.
function M.wait_empty(path, deadline)
  local S = require 'fibers.io.stream'
  while true do
    local fd = CG.watch(path)
    if not fd then return true end -- gone
    local pop = CG.populated(path)
    if not pop then P.close(fd); return true end
    local s = S.from_fd(fd, true, false, { kind = 'fifo', name = path .. '/cgroup.events' })
    local arms = { ev = s:read_op(4096) }
    if deadline then arms.timeout = sleep.sleep_until_op(deadline) end
    local which = fibers.named_choice(arms)
    s:close()
    if which == 'timeout' then
      if not CG.populated(path) then return true end
      return false
    end
  end
end

-- Remove path and any cgroups below it (empty ones; deepest first).
local function remove_tree(path)
  local okr, names = pcall(require('fibersd.host').readdir, path)
  if okr and names then
    for _, n in ipairs(names) do
      local sub = path .. '/' .. n
      local f = io.open(sub .. '/cgroup.procs', 'r')
      if f then f:close(); remove_tree(sub) end
    end
  end
  return CG.remove(path)
end

-- Kill and remove the task-* cgroups a previous daemon left; logf(fmt, ...)
-- names each killed process.  Returns the number of processes killed.
function M.reap_leftovers(logf)
  if M.mode ~= 'cgroup' then return 0 end
  local names = require('fibersd.host').readdir(M.base) or {}
  table.sort(names)
  local n = 0
  for _, name in ipairs(names) do
    if name:match('^task%-') then
      local path = M.base .. '/' .. name
      local pids = CG.procs(path) or {}
      for _, pid in ipairs(pids) do
        logf('%s: killed leftover %s of a previous fibersd', name, M.describe(pid))
        n = n + 1
      end
      if #pids > 0 or CG.populated(path) then
        CG.kill(path)
        M.wait_empty(path, fibers.now() + 10)
      end
      local ok, e = remove_tree(path)
      if not ok then logf('%s: cannot remove %s: %s', name, path, tostring(e)) end
    end
  end
  return n
end

-- A fresh cgroup for one run of task `name` with its limits applied:
-- { path, fd } or nil, message.
function M.new_run(name, pol)
  local path = M.base .. '/task-' .. name
  if CG.populated(path) then
    -- a previous run's processes are still there (should not happen:
    -- runs end empty); end them, a run never shares its cgroup
    CG.kill(path)
    M.wait_empty(path, fibers.now() + 10)
  end
  remove_tree(path)
  local ok, e = CG.create(path)
  if not ok then return nil, 'cannot create cgroup ' .. path .. ': ' .. tostring(e) end
  for key, file in pairs(LIMIT_FILES) do
    local v = pol and pol[key]
    if v ~= nil then
      ok, e = CG.write(path, file, tostring(v))
      if not ok then
        CG.remove(path)
        return nil, string.format('%s = %s: cannot write %s/%s: %s', key, tostring(v), path, file, tostring(e))
      end
    end
  end
  local fd
  fd, e = CG.open(path)
  if not fd then
    CG.remove(path)
    return nil, 'cannot open cgroup ' .. path .. ': ' .. tostring(e)
  end
  return { path = path, fd = fd }
end

-- Calls fn(command snapshot) for every running Command in the subtrees of
-- the scopes given (each scope walked once).
function M.each_running_command(scopes, fn)
  local scope = require 'fibers.scope'
  local seen = {}
  local function walk(sc)
    if seen[sc] then return end
    seen[sc] = true
    local okc, snap = pcall(sc.snapshot, sc)
    if not okc or not snap then return end
    for _, c in ipairs(snap.commands or {}) do
      if c.state == 'running' then fn(c) end
    end
    for _, id in ipairs(snap.children or {}) do
      local ch = scope.by_id(id)
      if ch then walk(ch) end
    end
  end
  for _, sc in ipairs(scopes) do walk(sc) end
end

-- pid -> true for the process groups of the running Commands of scope s's
-- subtree.
function M.command_groups(s)
  local groups = {}
  M.each_running_command({ s }, function(c)
    if c.pid then groups[c.pid] = true end
  end)
  return groups
end

-- The processes of cg: array of { pid, stray } (stray: not in the process
-- group of a running Command of scope s).
function M.processes(cg, s)
  local groups = M.command_groups(s)
  local out = {}
  for _, pid in ipairs(CG.procs(cg.path) or {}) do
    local pg = pgid_of(pid)
    out[#out + 1] = { pid = pid, stray = not (groups[pid] or (pg and groups[pg])) }
  end
  return out
end

-- SIGTERM to every stray of cg (the Commands' groups get theirs from
-- fibers.exec).  Returns how many were signalled.
function M.term_strays(cg, s)
  local n = 0
  for _, p in ipairs(M.processes(cg, s)) do
    if p.stray and P.send_signal(p.pid, false, 15) then n = n + 1 end
  end
  return n
end

-- End a run's cgroup: wait for it to empty until deadline, then
-- cgroup.kill and wait again; then close and remove it.  logf(level, fmt,
-- ...) reports what was killed.
function M.drain(cg, deadline, logf)
  if not M.wait_empty(cg.path, deadline) then
    local pids = CG.procs(cg.path) or {}
    local list = {}
    for i = 1, math.min(#pids, 5) do list[i] = M.describe(pids[i]) end
    if #pids > 5 then list[#list + 1] = string.format('and %d more', #pids - 5) end
    logf('notice', 'cgroup.kill after the grace: %s', table.concat(list, ', '))
    CG.kill(cg.path)
    M.wait_empty(cg.path)
  end
  M.release(cg)
end

-- Close and remove an (empty) run cgroup.
function M.release(cg)
  if cg.fd then P.close(cg.fd); cg.fd = nil end
  remove_tree(cg.path)
end

-- Status fields of a run cgroup (nil fields where a file is missing).
function M.info(cg, s)
  local u, sy = CG.cpu_stat(cg.path)
  local mem = CG.read(cg.path, 'memory.current')
  return {
    path = cg.path, processes = M.processes(cg, s),
    cpu_user_usec = u, cpu_system_usec = sy,
    memory_current = mem and tonumber(mem:match('%d+')) or nil,
  }
end

return M
