-- fibers.exec - subprocesses bound to scopes (doc/library.md §14, §0.4, §0.5,
-- §0.8, §0.9).  Also reachable as fibers.io.exec.
--
-- Owns: the Command object (fields, setters, lazy start, status), its Ops
-- (run_op, output_op, combined_output_op, shutdown_op), the one reaper that
-- dispatches exit statuses by pid, the per-scope shutdown finaliser, and the
-- host hook used by fibersd (`_set_host`: defaults, "log" mode, orphans).
-- Spawning, reaping and signalling are C (`fibers.core`.proc, src/core/proc*.c);
-- pipes are fibers.io.stream streams.  Must not: block outside Ops, or keep
-- anything per Command once it is reaped and its streams are closed.
--
-- Exit wake-ups.  pidfd backend (Linux >= 5.3): each running child's pidfd
-- is waited on with the scheduler's wait_fd; readiness runs the reaper.
-- SIGCHLD backend (FIBERS_PROC=sigchld, or no pidfd): a SIGCHLD handler
-- writes to a self-pipe (src/core/proc_sigchld.c) that is waited on while
-- any child is alive.  Either way the reaper is waitpid(-1, WNOHANG):
-- statuses of pids that are not Commands (orphans adopted by a subreaper
-- host, children of io.popen) are collected too and handed to the host's
-- on_orphan hook.  A host with on_orphan also listens for SIGCHLD.
--
-- Shutdown.  Each scope that owns running Commands has ONE finaliser (not
-- one per Command): it sends SIGTERM to every live Command's process group
-- at once, waits until each one's grace has passed, SIGKILLs the groups,
-- waits for the exits, gives grandchildren left in a group the rest of the
-- grace before SIGKILLing the group, and closes the owned streams.  A
-- Command leaves the scope's set once it is reaped and its owned streams
-- are closed (by the user, output_op or the log pump), so 10^5 short
-- Commands in one scope leave nothing behind: the scope keeps one finaliser
-- (registered with its first Command, O(1) per scope, reused by the next
-- ones) and an empty set.
--
-- Documented behaviour beyond doc/library.md §14:
-- * `exec.command` raises on unknown fields, bad stdio values ("log" is valid
--   only under a host that set log_line), unknown users/groups/rlimits.
--   A numeric user without a passwd entry needs an explicit group.
--   Supplementary groups default to the user's (getgrouplist) when root.
-- * cgroup = "/sys/fs/cgroup/.../dir" (a cgroup v2 directory): the child
--   starts in it (clone3 CLONE_INTO_CGROUP, else it joins before anything
--   else of its setup) and never runs its program outside; a directory
--   that cannot be opened fails the Command ("cgroup <path>: <strerror>"),
--   one that is no cgroup makes the child exit 127 ("cgroup: <strerror>").
-- * rlimits = { name = n | {soft, hard} | "unlimited" }: a bare n sets the
--   soft limit (the hard one is raised only when n exceeds it).
-- * output_op switches an unset/"inherit"/"pipe" stdout to a pipe and raises
--   if stdout was set to something else; the exit wait after EOF is still
--   interrupted by the scope's cancellation.
-- * A Command whose scope has already joined does not start: its run_op
--   yields "failed", nil, nil, "scope has joined".
-- * _info().exit is nil while running, else { status, code, signal, err }.
-- * Shutdown gives grandchildren still in the group the rest of the grace;
--   where nobody reaps orphans (no init reaping, no subreaper) their zombies
--   keep the group "alive", so such a shutdown takes the whole grace.
-- * SIGCHLD backend: SIGCHLD must not be watched through fibers.signal at
--   the same time (signalfd blocks it, and the self-pipe handler then never
--   runs).  The pidfd backend (Linux >= 5.3, the default) is not affected.
-- * The reaper collects every child of the process, so io.popen's children
--   may be reaped while the scheduler runs (their close then reports an
--   error); use exec instead.
local runtime = require 'fibers.runtime'
local op = require 'fibers.op'
local scope_mod = require 'fibers.scope'
local sleep = require 'fibers.sleep'
local core = require 'fibers.core'

local P = core.proc
local monotime = core.sys.monotime
local perform_raw = op.perform_raw
local prim, waitq, waitq_push, waitq_wake = op._prim, op._waitq, op._waitq_push, op._waitq_wake
-- pcall: yield-safe on Lua 5.1 (stream close and host hooks may block).
local type, error, pairs, ipairs, tostring, setmetatable, select, pcall =
      type, error, pairs, ipairs, tostring, setmetatable, select, require('fibers.compat').pcall

local M = {}

local spec_mod = require 'fibers.exec_spec'
local check_env, check_flags, check_grace, check_rlimits =
      spec_mod.check_env, spec_mod.check_flags, spec_mod.check_grace, spec_mod.check_rlimits
local resolve_creds, resolve_umask, FIELDS = spec_mod.resolve_creds, spec_mod.resolve_umask, spec_mod.FIELDS

local stream_mod -- fibers.io.stream, loaded on first pipe
local function streams()
  if not stream_mod then stream_mod = require 'fibers.io.stream' end
  return stream_mod
end

local host = { defaults = {}, env = nil, scrub_env = nil, log_line = nil, on_orphan = nil }
local SIGKILL, SIGTERM = P.signum("KILL"), P.signum("TERM")
local DEFAULT_GRACE = 1.0
local LOG_LINE_MAX = 4096

local function sched() return runtime.current_scheduler end

------------------------------------------------------------------------------
-- The reaper

local live = {}        -- pid -> Command (running, not yet reaped)
local nlive = 0
local sigchld = { fd = nil, h = nil } -- self-pipe wait (SIGCHLD backend / orphans)
local BACKEND = P.backend()
-- Overlapped spawns (src/core/proc.c, PROC_ASYNC): spawning returns once
-- the child exists, not once it has exec'd, so the parent's work overlaps
-- the child's setup; a failure before exec arrives with its exit status.
-- FIBERS_SPAWN=vfork selects the vfork mode (the tests run both).
local ASYNC = os.getenv("FIBERS_SPAWN") ~= "vfork"
local ESRCH = 3 -- (Linux)

local function status_string(kind, code)
  if kind == "exited" then return "exited " .. code end
  local name = P.signame(code)
  return "signalled " .. code .. (name and (" (SIG" .. name .. ")") or "")
end

local function dispatch(pid, kind, code, err)
  local cmd = live[pid]
  if cmd then
    cmd:_exited(kind, code, err)
  elseif host.on_orphan then
    local ok, err = pcall(host.on_orphan, pid, status_string(kind, code))
    if not ok then io.stderr:write("fibers.exec: on_orphan: ", tostring(err), "\n") end
  end
end

local function reap_all()
  while true do
    local pid, kind, code, err = P.wait_any()
    if not pid then break end
    dispatch(pid, kind, code, err)
  end
end

local sigchld_task = {}
local function sigchld_arm(fresh)
  if sigchld.h then
    if not fresh then return end
    -- the scheduler may have been cleared (fibers.run teardown): re-register
    sched():cancel_fd(sigchld.h)
    sigchld.h = nil
  end
  if not sigchld.fd then
    local fd, err = P.sigchld_open()
    if not fd then error("fibers.exec: cannot watch SIGCHLD: " .. tostring(err), 0) end
    sigchld.fd = fd
  end
  sigchld.h = sched():wait_fd(sigchld.fd, "r", sigchld_task)
end
function sigchld_task.run()
  sigchld.h = nil
  P.sigchld_drain()
  reap_all()
  if nlive > 0 and BACKEND == "sigchld" or host.on_orphan then sigchld_arm() end
end

-- A child's pidfd became readable: reap (waitpid(-1), so whatever else has
-- exited is dispatched too) until that child is collected.  Other children
-- have pidfd waits of their own, orphans the host's SIGCHLD wait, so there
-- is no need for the final "nothing left" call here.
local function pidfd_run(t)
  local c = t.c
  while not c._done do
    local pid, kind, code, err = P.wait_any()
    if not pid then break end
    dispatch(pid, kind, code, err)
  end
end

------------------------------------------------------------------------------
-- Per-scope sets and their one finaliser

local scopes = setmetatable({}, { __mode = "k" }) -- scope -> { set, n, detach }

local shutdown_many -- defined below
local maybe_release -- defined below

local function scope_add(cmd)
  local S = cmd._scope
  local st = scopes[S]
  if not st then
    local ok = pcall(S.finally, S, function()
      local e = scopes[S]
      scopes[S] = nil
      if not e or e.n == 0 then return end
      local list = {}
      for c in pairs(e.set) do list[#list + 1] = c end
      table.sort(list, function(a, b) return a._seq < b._seq end)
      shutdown_many(list)
    end)
    if not ok then return nil, "scope has joined" end
    st = { set = {}, n = 0 }
    scopes[S] = st
  end
  -- commands kept only for their group: release those whose group emptied
  for c in pairs(st.set) do
    if c._done and c._pgid then maybe_release(c) end
  end
  st.set[cmd] = true
  st.n = st.n + 1
  S:_add_command(cmd)
  cmd._in_scope = true
  return true
end

local function owned_open(cmd)
  for _, s in pairs(cmd._owned) do
    if not s:is_closed() then return true end
  end
  return false
end

-- Leave the scope once reaped, pumps finished, owned streams closed and its
-- process group empty: members left behind by an exited leader are still
-- the scope's to stop (TERM, grace, KILL when it exits).
function maybe_release(cmd)
  if not cmd._in_scope or not cmd._done or cmd._pumps > 0 or owned_open(cmd) then return end
  if cmd._pgid and P.group_alive(cmd._pgid) then return end
  cmd._in_scope = false
  local S = cmd._scope
  S:_remove_command(cmd)
  local st = scopes[S]
  if st and st.set[cmd] then
    st.set[cmd] = nil
    st.n = st.n - 1
  end
end

------------------------------------------------------------------------------
-- Command

local Command = {}
Command.__index = Command
Command.__name = "fibers.exec.command"
M.Command = Command

local seq = 0

local function check_stdio(name, v) return spec_mod.check_stdio(name, v, host) end

-- exec.command{argv..., field = ...} | exec.command(prog, arg...) -> Command
function M.command(...)
  local spec, named
  if select('#', ...) == 1 and type((...)) == "table" then
    spec = ...
  else
    spec = { ... }
  end
  local argv = {}
  local n = #spec
  for i = 1, n do
    local a = spec[i]
    if type(a) == "number" then a = tostring(a) end
    if type(a) ~= "string" then error("exec.command: argv[" .. i .. "] must be a string", 2) end
    argv[i] = a
  end
  if n == 0 then error("exec.command: empty argv", 2) end
  for k in pairs(spec) do
    if type(k) ~= "number" then
      if not FIELDS[k] then error("exec.command: unknown field '" .. tostring(k) .. "'", 2) end
      named = true
    end
  end
  seq = seq + 1
  if not named then -- the common short form: nothing else to check
    return setmetatable({ _argv = argv, _seq = seq, _scope = scope_mod.current(),
      _state = "pending", _since = monotime(), _owned = {}, _pumps = 0 }, Command)
  end
  check_stdio("stdin", spec.stdin); check_stdio("stdout", spec.stdout)
  check_stdio("stderr", spec.stderr)
  if spec.cwd ~= nil and type(spec.cwd) ~= "string" then error("exec: cwd must be a string", 2) end
  check_env(spec.env)
  if spec.env_mode ~= nil and spec.env_mode ~= "merge" and spec.env_mode ~= "replace" then
    error("exec: env_mode must be 'merge' or 'replace'", 2)
  end
  check_flags(spec.flags); check_grace(spec.shutdown_grace); check_rlimits(spec.rlimits)
  if spec.cgroup ~= nil and type(spec.cgroup) ~= "string" then error("exec: cgroup must be a string", 2) end
  local uid, gid, groups = resolve_creds(spec)
  return setmetatable({
    _argv = argv, _seq = seq, _scope = scope_mod.current(),
    _stdin = spec.stdin, _stdout = spec.stdout, _stderr = spec.stderr,
    _cwd = spec.cwd, _env = spec.env, _env_mode = spec.env_mode, _flags = spec.flags,
    _grace = spec.shutdown_grace, _uid = uid, _gid = gid, _groups = groups,
    _umask = resolve_umask(spec.umask), _rlimits = spec.rlimits, _cgroup = spec.cgroup,
    _state = "pending", _since = monotime(), _owned = {}, _pumps = 0,
  }, Command)
end

local function setter(field, check)
  return function(self, v)
    if self._state ~= "pending" then error("command already started", 2) end
    if check then check(v) end
    self[field] = v
    return self
  end
end

Command.set_stdin = setter("_stdin", function(v) check_stdio("stdin", v) end)
Command.set_stdout = setter("_stdout", function(v) check_stdio("stdout", v) end)
Command.set_stderr = setter("_stderr", function(v) check_stdio("stderr", v) end)
Command.set_cwd = setter("_cwd", function(v)
  if v ~= nil and type(v) ~= "string" then error("exec: cwd must be a string", 3) end
end)
Command.set_env = setter("_env", check_env)
Command.set_flags = setter("_flags", check_flags)
Command.set_shutdown_grace = setter("_grace", check_grace)

-- status() -> st, code_or_signal|nil, err|nil
function Command:status()
  local st = self._st
  if st == nil then return self._state == "pending" and "pending" or "running" end
  if st == "exited" then return st, self._code, self._err end
  if st == "signalled" then return st, self._sig end
  return st, nil, self._err
end

function Command:pid() return self._pid end

function Command:argv()
  local t = {}
  for i, a in ipairs(self._argv) do t[i] = a end
  return t
end

-- Snapshot entry for scope:snapshot(): { pid, argv, state, since, exit }.
function Command:_info()
  local st = self:status()
  local exit
  if self._done then
    exit = { status = self._st, code = self._code, signal = self._sig, err = self._err }
  end
  return { pid = self._pid, argv = self:argv(), state = st, since = self._since, exit = exit }
end

local FIELD = { stdin = "_stdin", stdout = "_stdout", stderr = "_stderr" }
local STDIO = { "stdin", "stdout", "stderr" }

-- isatty, remembered for fd 0 (the process's own stdin does not change
-- under a running program; this saves a syscall per default spawn)
local tty0
local function isatty(fd)
  if fd ~= 0 then return P.isatty(fd) end
  if tty0 == nil then tty0 = P.isatty(0) end
  return tty0
end

local function mode_of(cmd, name)
  local v = cmd[FIELD[name]]
  if v == nil then v = host.defaults[name] end
  if v == nil then v = "inherit" end
  if v == "log" and not host.log_line then v = "inherit" end
  return v
end

-- The Command's env over the host's per-scope defaults (not with "replace").
local function build_env(cmd, tenv)
  local env = cmd._env
  if tenv and cmd._env_mode ~= "replace" then
    local m = {}
    for k, v in pairs(tenv) do m[k] = v end
    for k, v in pairs(env or {}) do m[k] = v end
    env = m
  end
  return spec_mod.build_env(env, cmd._env_mode, host)
end

local NODEF = {}

local function shutdown_grace(cmd)
  if cmd._grace then return cmd._grace end
  local g = cmd._scope:default('shutdown_grace')
  if type(g) == "number" then return g end
  if type(host.defaults.shutdown_grace) == "number" then return host.defaults.shutdown_grace end
  return DEFAULT_GRACE
end

-- Mark the command finished and wake exit waiters.
function Command:_finish(st, code, sig, err)
  self._st, self._code, self._sig, self._err = st, code, sig, err
  self._done = true
  self._state = "done"
  self._since = monotime()
  local q = self._wq
  if q then self._wq = nil; waitq_wake(q, self) end
  maybe_release(self)
end

-- Called by the reaper with the decoded wait status (and, for a child
-- that failed before exec in an overlapped spawn, "<step>: <strerror>").
function Command:_exited(kind, code, err)
  local pid = self._pid
  if live[pid] == self then
    live[pid] = nil
    nlive = nlive - 1
  end
  local fd = self._pidfd
  if fd then
    self._pidfd = nil
    self._fdh = nil
    sched():forget_fd(fd) -- drops the wait if it has not fired
    P.close(fd)
  end
  if kind == "exited" then self:_finish("exited", code, nil, err)
  else self:_finish("signalled", nil, code, nil) end
end

local pump -- log pump, below

local function close_fds(list)
  for _, fd in ipairs(list) do P.close(fd) end
end

-- Create the pipe for one stdio slot: returns the child's fd.
local function make_pipe(cmd, name, parent_fds, child_fds)
  local r, w, errno = P.pipe()
  if not r then return nil, w, errno end
  local mine, theirs = r, w
  if name == "stdin" then mine, theirs = w, r end
  child_fds[#child_fds + 1] = theirs
  parent_fds[#parent_fds + 1] = mine
  return theirs, mine
end

-- Start the process (lazily, at most once).
function Command:_start()
  if self._state ~= "pending" then return end
  self._state = "starting"
  -- the host's defaults for this scope (fibersd: the task's cgroup and
  -- identity); the Command's own settings win
  local td = host.task_defaults
  td = td and td(self._scope) or NODEF
  local uid, gid, groups = self._uid, self._gid, self._groups
  if uid == nil and gid == nil and groups == nil then uid, gid, groups = td.uid, td.gid, td.groups end
  local umask = self._umask
  if umask == nil then umask = td.umask end
  local spec = {
    argv = self._argv, cwd = self._cwd or td.cwd, env = build_env(self, td.env),
    uid = uid, gid = gid, groups = groups, umask = umask,
    rlimits = self._rlimits or host.defaults.rlimits, pidfd = BACKEND == "pidfd",
    async = ASYNC, cgroup = td.cgroup,
  }
  local parent_fds, child_fds, mine = {}, {}, {}
  local fail
  if self._cgroup then -- a cgroup v2 directory of the Command's own
    local fd, e = core.cgroup.open(self._cgroup)
    if fd then
      spec.cgroup = fd
      child_fds[1] = fd -- closed with the child's ends after the spawn
    else
      fail = "cgroup " .. self._cgroup .. ": " .. tostring(e)
    end
  end
  for i = 1, 3 do
    if fail then break end
    local name = STDIO[i]
    local m = mode_of(self, name)
    if m == "pipe" or m == "log" then
      local theirs, p, e = make_pipe(self, name, parent_fds, child_fds)
      if not theirs then fail = p; break end
      spec[name] = theirs
      mine[name] = p
    elseif m == "null" or m == "inherit" then
      spec[name] = m
    elseif m == "stdout" then
      spec[name] = "stdout"
    else -- a Stream, handed over as it is
      local fd = m:fileno()
      if not fd then fail = name .. " stream is closed"; break end
      spec[name] = fd
    end
  end
  local flags = self._flags or {}
  spec.setsid = flags.setsid and true or false
  local pgroup = flags.pgroup
  if pgroup == nil then
    -- a background group reading the terminal would stop on SIGTTIN
    local sfd = spec.stdin
    if sfd == "inherit" then sfd = 0 end
    pgroup = not (type(sfd) == "number" and isatty(sfd))
  end
  spec.pgroup = pgroup
  if not fail then
    -- join the scope's set first: a scope that has joined cannot stop it
    local ok, serr = scope_add(self)
    if not ok then fail = serr end
  end
  if fail then
    close_fds(parent_fds); close_fds(child_fds)
    self._state = "running"
    self:_finish("failed", nil, nil, fail)
    return
  end
  -- A Stream handed over for output is flushed first, so what the parent
  -- wrote before the spawn comes before the child's output (as C
  -- programs fflush before fork).
  for i = 2, 3 do
    local m = mode_of(self, STDIO[i])
    if type(m) == "table" then m:_flush_raw() end
  end
  if BACKEND == "sigchld" then sigchld_arm(nlive == 0) end
  local pid, pidfd, errno, where, kind, code = P.spawn(spec)
  close_fds(child_fds)
  self._state = "running"
  if not pid and where ~= "child" then
    close_fds(parent_fds)
    self:_finish("failed", nil, nil, pidfd)
    return
  end
  -- parent ends become owned streams
  local S = streams()
  for name, fd in pairs(mine) do
    local s, err = S.from_fd(fd, name == "stdin" and false or true, name == "stdin",
                             { kind = "fifo", name = self._argv[1] .. ":" .. name })
    if s then
      self._owned[name] = s
      s:_add_close_hook(function() maybe_release(self) end)
    else
      P.close(fd)
    end
  end
  self._since = monotime()
  if not pid then -- the child failed before exec: already reaped, 127
    self._pid = nil
    self:_finish(kind, code, nil, pidfd)
    return
  end
  self._pid = pid
  self._pgid = (spec.setsid or pgroup) and pid or nil
  live[pid] = self
  nlive = nlive + 1
  if pidfd then
    self._pidfd = pidfd
    self._fdh = sched():wait_fd(pidfd, "r", { run = pidfd_run, c = self })
  end
  if next(mine) then
    for i = 2, 3 do
      local name = STDIO[i]
      if mode_of(self, name) == "log" and self._owned[name] then pump(self, name, self._owned[name]) end
    end
  end
end

-- kill(sig?) -> true | false, "command not started" | nil, err
function Command:kill(sig)
  local n
  if sig == nil then n = SIGKILL
  else
    n = P.signum(sig)
    if not n then error("kill: unknown signal '" .. tostring(sig) .. "'", 2) end
  end
  if self._state == "pending" or (not self._pid and not self._done) then
    return false, "command not started"
  end
  if self._done then return true end
  local ok, err, errno
  if self._pgid then
    ok, err, errno = P.killpg(self._pgid, n)
    -- an overlapped spawn's setsid child may not have made its group yet:
    -- then the child is the whole group
    if not ok and errno == ESRCH and not self._done then
      ok, err = P.send_signal(self._pid, self._pidfd or false, n)
    end
  else ok, err = P.send_signal(self._pid, self._pidfd or false, n) end
  if not ok then return nil, err end
  return true
end

------------------------------------------------------------------------------
-- Ops

local function exit_try(o)
  local c = o.c
  if c._done then return true, c end
  return false
end
local function exit_block(s, tok, o)
  local c = o.c
  local q = c._wq
  if not q then q = waitq(); c._wq = q end
  waitq_push(q, s, tok)
end
local function exit_wrap(c)
  return c._st, c._code, c._sig, c._err
end

-- The exit of a started command (internal).
function Command:_exit_op()
  return prim(exit_try, exit_block, exit_wrap, { c = self })
end

-- run_op() -> status, code, signal, err (starts the command if pending).
function Command:run_op()
  return op.guard(function()
    self:_start()
    return self:_exit_op()
  end)
end

-- Wait for exit from inside a wrap: scope-aware while the scope is ok, so a
-- cancellation still interrupts; raw otherwise (finalisers).
local function wait_exit(cmd)
  local f = runtime.current_fiber()
  local S = f and f.scope
  if S and S:status() == "running" then return S:perform(cmd:_exit_op()) end
  return perform_raw(cmd:_exit_op())
end

-- Bound of what output_op collects without opts.max (bytes).
M.OUTPUT_MAX = 16 * 1048576

local function output(self, merge, opts)
  local max = M.OUTPUT_MAX
  if opts ~= nil then
    if type(opts) ~= "table" then error("output_op: options must be a table", 3) end
    max = opts.max
    if max == nil then max = M.OUTPUT_MAX
    elseif max ~= math.huge and (type(max) ~= "number" or max < 0 or max ~= math.floor(max)) then
      error("output_op: max must be a non-negative integer or math.huge", 3)
    end
  end
  return op.guard(function()
    if self._state == "pending" then
      local m = self._stdout
      if m == nil or m == "inherit" or m == "pipe" then self._stdout = "pipe"
      else error("output_op: stdout is already set to " .. tostring(m), 0) end
      if merge then self._stderr = "stdout" end
    elseif not self._owned.stdout or self._owned.stdout:is_closed() or mode_of(self, "stdout") ~= "pipe" then
      error("output_op: command already started", 0)
    end
    self:_start()
    local s = self._owned.stdout
    if not s then -- failed before any stream existed
      return self:_exit_op():wrap(function(...) return "", ... end)
    end
    return s:read_all_op({ max = max }):wrap(function(out, err)
      s:close()
      local st, code, sig, e = wait_exit(self)
      if out == nil and err == "too long" then
        return nil, st, code, sig, "output_op: output longer than " .. tostring(max) .. " bytes"
      end
      return out or "", st, code, sig, e
    end)
  end)
end

-- output_op(opts?) -> out, status, code, signal, err.  opts.max bounds the
-- output (default M.OUTPUT_MAX; math.huge: no bound); past it the pipe is
-- closed, the command waited for, and out is nil with err saying so.
function Command:output_op(opts) return output(self, false, opts) end
-- combined_output_op(opts?): as output_op, with stderr merged into stdout.
function Command:combined_output_op(opts) return output(self, true, opts) end

-- Wait until the process group pgid is empty or deadline passes (blocking,
-- raw: used after the leader exited, to give grandchildren their grace).
local function wait_group(pgid, deadline)
  local step = 0.005
  while P.group_alive(pgid) and monotime() < deadline do
    perform_raw(sleep.sleep_op(step))
    if step < 0.05 then step = step * 2 end
  end
end

-- Stop a set of commands in parallel: TERM, grace, KILL (groups), reap,
-- grandchildren, streams.  Blocking (raw performs); used by the scope
-- finaliser and shutdown_op.
function shutdown_many(list)
  local now, running = monotime(), {}
  for _, c in ipairs(list) do
    if not c._done and c._pid then
      running[#running + 1] = c
      c._deadline = now + shutdown_grace(c)
      c:kill(SIGTERM)
    elseif c._done and c._pgid and P.group_alive(c._pgid) then
      -- the leader has exited, members of its group have not
      running[#running + 1] = c
      c._deadline = now + shutdown_grace(c)
      P.killpg(c._pgid, SIGTERM)
    end
  end
  for _, c in ipairs(running) do
    if not c._done then
      perform_raw(op.choice(c:_exit_op(), sleep.sleep_until_op(c._deadline)))
      if not c._done then
        c:kill(SIGKILL)
        perform_raw(c:_exit_op())
      end
    end
    -- grandchildren left in the group get the rest of the grace
    if c._pgid then
      wait_group(c._pgid, c._deadline)
      if P.group_alive(c._pgid) then P.killpg(c._pgid, SIGKILL) end
    end
  end
  for _, c in ipairs(list) do
    if c._pumps > 0 then
      -- the group is gone, so the log pipes reach EOF; bound the wait anyway
      perform_raw(op.choice(c:_pumps_done_op(), sleep.sleep_op(1.0)))
    end
    for _, s in pairs(c._owned) do
      if not s:is_closed() then pcall(s.close, s) end
    end
    maybe_release(c)
  end
end

-- shutdown_op(grace?) -> status, code, signal, err
function Command:shutdown_op(grace)
  check_grace(grace)
  return op.guard(function()
    self:_start()
    if self._done then return self:_exit_op() end
    local deadline = monotime() + (grace or shutdown_grace(self))
    self:kill(SIGTERM)
    return op.choice(self:_exit_op(), sleep.sleep_until_op(deadline):wrap(function()
      if not self._done then self:kill(SIGKILL) end
      return wait_exit(self)
    end)):wrap(function(...)
      if self._pgid and P.group_alive(self._pgid) then
        wait_group(self._pgid, deadline)
        if P.group_alive(self._pgid) then P.killpg(self._pgid, SIGKILL) end
      end
      return ...
    end)
  end)
end

------------------------------------------------------------------------------
-- Streams

-- The parent's stream for a stdio slot: the pipe's end (starting the
-- command), the Stream given for the slot, or for stderr = "stdout" the
-- stdout's; nil for inherit, null and log.
local function stream_of(self, name)
  local m = mode_of(self, name)
  if m == "stdout" and name == "stderr" then return stream_of(self, "stdout") end
  if type(m) == "table" then return m end
  if m ~= "pipe" then return nil end
  self:_start()
  return self._owned[name]
end

function Command:stdin_stream() return stream_of(self, "stdin") end
function Command:stdout_stream() return stream_of(self, "stdout") end
function Command:stderr_stream() return stream_of(self, "stderr") end

------------------------------------------------------------------------------
-- "log" mode (hosts only): a fiber per stream, attributed to the command's
-- scope, hands each line (split at 4096 bytes, never dropped) to
-- host.log_line(cmd, stream_name, line, scope).

local function emit(cmd, name, line)
  local ok, err = pcall(host.log_line, cmd, name, line, cmd._scope)
  if not ok then io.stderr:write("fibers.exec: log_line: ", tostring(err), "\n") end
end

function pump(cmd, name, s)
  cmd._pumps = cmd._pumps + 1
  local f = runtime.spawn_raw(function()
    local pending = ""
    while true do
      local chunk = perform_raw(s:read_op(65536))
      if not chunk then break end
      pending = pending .. chunk
      local start = 1
      while true do
        local nl = pending:find("\n", start, true)
        if nl and nl - start <= LOG_LINE_MAX then
          emit(cmd, name, pending:sub(start, nl - 1))
          start = nl + 1
        elseif #pending - start + 1 >= LOG_LINE_MAX then
          emit(cmd, name, pending:sub(start, start + LOG_LINE_MAX - 1))
          start = start + LOG_LINE_MAX
        else
          break
        end
      end
      pending = pending:sub(start)
    end
    if pending ~= "" then emit(cmd, name, pending) end
    s:close()
    cmd._pumps = cmd._pumps - 1
    if cmd._pumps == 0 then
      local q = cmd._pq
      if q then cmd._pq = nil; waitq_wake(q) end
    end
    maybe_release(cmd)
  end)
  f.scope = cmd._scope
end

local function pumps_try(o) return o.c._pumps == 0 end
local function pumps_block(s, tok, o)
  local c = o.c
  local q = c._pq
  if not q then q = waitq(); c._pq = q end
  waitq_push(q, s, tok)
end

-- Ready once every log pump of the command has finished (internal).
function Command:_pumps_done_op()
  return prim(pumps_try, pumps_block, nil, { c = self })
end

------------------------------------------------------------------------------
-- Host hook (fibersd)

-- _set_host{ defaults = { stdin, stdout, stderr, shutdown_grace, rlimits },
--   env = { NAME = value|false }, scrub_env = { NAME... },
--   task_defaults = function(scope) -> nil | { cgroup = dir fd, cwd, uid,
--     gid, groups, umask, env = { NAME = value } } (per-scope defaults of
--     every Command started in scope; its own fields win),
--   log_line = function(cmd, stream_name, line, scope) end,
--   on_orphan = function(pid, status_string) end }  (nil resets)
function M._set_host(h)
  h = h or {}
  host = {
    defaults = h.defaults or {}, env = h.env, scrub_env = h.scrub_env,
    log_line = h.log_line, on_orphan = h.on_orphan, task_defaults = h.task_defaults,
  }
  if host.on_orphan then
    sigchld_arm()
  elseif BACKEND == "pidfd" and sigchld.fd then
    -- nobody needs SIGCHLD any more: restore it and close the self-pipe
    if sigchld.h then sched():cancel_fd(sigchld.h); sigchld.h = nil end
    sched():forget_fd(sigchld.fd)
    P.sigchld_close()
    sigchld.fd = nil
  end
end

-- Reap now (hosts call this after adopting orphans; harmless otherwise).
M._reap = reap_all
-- "pidfd" | "sigchld"
M.backend = BACKEND

-- Signal number for a name or number (nil if unknown).
function M.signum(x) return P.signum(x) end

return M
