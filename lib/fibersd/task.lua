-- fibersd.task - task files and their Lua side: scanning the task directory
-- (name grammar, ignored leftovers), reading + hashing + compiling a script
-- into its private global environment, and the registry that maps a scope
-- to the task it belongs to (so `require 'fibersd'`, `print` and exec's log
-- lines find their task from the calling fiber's scope ancestry).
--
-- It does not start or supervise anything (supervisor.lua does).

local runtime = require 'fibers.runtime'
local scopes = require 'fibers.scope'
local host = require 'fibersd.host'
local log = require 'fibersd.log'

local M = {}

local RESERVED = { control = true, fibersd = true }

-- Check a task name: [A-Za-z0-9_.-]+, not all digits, not reserved.
-- Returns true or nil, reason.
function M.valid_name(name)
  if type(name) ~= 'string' or name == '' then return nil, 'empty task name' end
  if not name:match('^[A-Za-z0-9_.%-]+$') then
    return nil, 'task name must match [A-Za-z0-9_.-]+'
  end
  if name:match('^%d+$') then return nil, 'task name must not be all digits' end
  if RESERVED[name] then return nil, "task name '" .. name .. "' is reserved" end
  return true
end

-- Is this directory entry something to ignore silently (dotfiles, editor
-- backups, package-manager leftovers, anything not *.lua)?
function M.ignored(entry)
  if entry:sub(1, 1) == '.' or entry:sub(1, 1) == '#' then return true end
  if entry:match('~$') or entry:match('%.dpkg%-[%w]+$') or entry:match('%.rpm[%w]+$')
     or entry:match('%.ucf%-[%w]+$') or entry:match('%.swp$') or entry:match('%.bak$')
     or entry:match('%.orig$') then
    return true
  end
  return entry:sub(-4) ~= '.lua'
end

-- Scan a task directory.  Returns entries { {name, file}... } sorted by
-- name and refusals { {file, reason}... }; or nil, msg when unreadable.
function M.scan(dir)
  local names, err = host.readdir(dir)
  if not names then return nil, err end
  table.sort(names)
  local entries, refused = {}, {}
  for _, e in ipairs(names) do
    if not M.ignored(e) then
      local file = dir:gsub('/+$', '') .. '/' .. e
      local name = e:sub(1, -5)
      local okn, why = M.valid_name(name)
      if okn then
        entries[#entries + 1] = { name = name, file = file }
      else
        refused[#refused + 1] = { file = file, reason = why }
      end
    end
  end
  return entries, refused
end

-- Largest task file read (bytes).
M.FILE_MAX = 16 * 1048576

-- Read a whole task file: source or nil, msg.  Only regular files (a FIFO
-- or device named *.lua is refused without blocking), at most FILE_MAX.
function M.read(file)
  return host.read_file(file, M.FILE_MAX)
end

-- A content hash (two 32-bit polynomial hashes + length) as hex.
function M.hash(s)
  local h1, h2 = 5381, 52711
  local byte = string.byte
  for i = 1, #s, 256 do
    local b = { byte(s, i, i + 255) }
    for j = 1, #b do
      local c = b[j]
      h1 = (h1 * 33 + c) % 4294967291
      h2 = (h2 * 131 + c) % 4294967279
    end
  end
  return string.format('%08x%08x-%x', h1, h2, #s)
end

-- ---- the sandbox ----------------------------------------------------------
--
-- Tasks share the daemon's Lua state, so every path to a standard function
-- that would block or end the daemon must refuse inside a task: the global
-- tables are wrapped in place (require('os'), package.loaded.os and the
-- registry all hand out the same wrapped functions).  "Inside a task" is
-- host.in_task(): a task slice runs, or task code is on the stack (a task's
-- metamethod called by the daemon).  The daemon's own calls pass.

local in_task, task_caller, library_source = host.in_task, host.task_caller, host.library_source

local function deny(name, why)
  error(name .. ' is not available in fibersd tasks' .. (why and ': ' .. why or ''), 3)
end

-- Replace tbl[key] by a wrapper that refuses in tasks (refuse(...) decides).
local function guard(tbl, key, name, why, refuse)
  local f = tbl[key]
  if type(f) ~= 'function' then return end
  tbl[key] = function(...)
    if (refuse == nil or refuse(...)) and in_task() then deny(name, why) end
    return f(...)
  end
end

local function any() return true end
local function with_args(...) return select('#', ...) > 0 end

-- Modules only the daemon may load: the host binding, the daemon's own
-- modules (the `fibersd` task API excepted) and the real globals.
local function internal(name)
  return name == '_fibersd' or name == '_G' or
    (type(name) == 'string' and name:sub(1, 8) == 'fibersd.')
end

local sandboxed = false

-- Wrap the standard library and hide the daemon's modules from tasks (once,
-- before the first task loads).
function M.sandbox()
  if sandboxed then return end
  sandboxed = true
  -- the library's own code is known by its chunk names: add the directories
  -- it was found in when they are not the built-in ones (lua_path)
  for _, mod in ipairs({ 'fibers.scope', 'fibersd.task' }) do
    local file = package.searchpath(mod, package.path)
    if file and not library_source('@' .. file) then
      host.library_dir((file:gsub('/fibers[d]?/[^/]*$', '')))
    end
  end
  local exec_why = 'use fibers.exec'
  guard(os, 'exit', 'os.exit', 'the daemon would end')
  guard(os, 'execute', 'os.execute', exec_why)
  guard(io, 'popen', 'io.popen', exec_why)
  guard(io, 'read', 'io.read', 'stdin belongs to the daemon; use fibers.io')
  guard(io, 'lines', 'io.lines on stdin', 'use fibers.io', function(file) return file == nil end)
  guard(io, 'input', 'io.input', 'stdin belongs to the daemon', with_args)
  guard(io, 'output', 'io.output', 'stdout belongs to the daemon', with_args)
  -- the file handle methods, shared by every handle: stdin is never read,
  -- the standard handles are never closed
  local methods = (getmetatable(io.stdin) or {}).__index
  if type(methods) == 'table' then
    local stdin, stdout, stderr = io.stdin, io.stdout, io.stderr
    local function is_stdin(f) return rawequal(f, stdin) end
    guard(methods, 'read', 'reading stdin', 'stdin belongs to the daemon', is_stdin)
    guard(methods, 'lines', 'reading stdin', 'stdin belongs to the daemon', is_stdin)
    guard(methods, 'close', 'closing a standard stream', nil, function(f)
      return rawequal(f, stdin) or rawequal(f, stdout) or rawequal(f, stderr)
    end)
  end
  -- the runaway guard owns the hook; the registry and other functions'
  -- upvalues and locals are the daemon's
  for _, k in ipairs({ 'sethook', 'getregistry', 'getupvalue', 'setupvalue', 'upvaluejoin',
                       'setlocal', 'setmetatable', 'setuservalue', 'setcstacklimit' }) do
    guard(debug, k, 'debug.' .. k, k == 'sethook' and 'the runaway guard owns the hook' or nil, any)
  end
  -- the collector is the daemon's: a task may collect, step and count
  local gc_ok = { collect = true, count = true, step = true, isrunning = true }
  local gc = collectgarbage
  _G.collectgarbage = function(opt, ...)
    if opt ~= nil and not gc_ok[opt] and in_task() then
      deny("collectgarbage('" .. tostring(opt) .. "')", 'the collector is the daemon\'s')
    end
    return gc(opt, ...)
  end
  -- a finaliser runs outside any task slice, where nothing can interrupt it
  -- (Lua runs finalisers with hooks off); asked of task code only, the
  -- library's own objects (streams) keep theirs
  local setmt = setmetatable
  _G.setmetatable = function(t, mt)
    if type(mt) == 'table' and rawget(mt, '__gc') ~= nil and task_caller(2) then
      deny('__gc', 'use scope:finally')
    end
    return setmt(t, mt)
  end
  -- package.loaded: internal modules live in a hidden table, reached only
  -- when the one asking is not task code.  So that "not task code" stays
  -- true, a task cannot load a second copy of a daemon module (searchers
  -- refuse the names, loadfile/dofile the library's files) nor give a chunk
  -- a library file's name (load).
  -- Module files found on package.path/cpath run as the daemon's user:
  -- as root each must pass the trust check itself (its directory passing
  -- is not enough).
  local path_of = { [2] = 'path', [3] = 'cpath', [4] = 'cpath' }
  for i, searcher in ipairs(package.searchers) do
    package.searchers[i] = function(name, ...)
      if internal(name) and task_caller(2) then
        return "\n\tmodule '" .. tostring(name) .. "' is not available in fibersd tasks"
      end
      local which = path_of[i]
      if which and type(name) == 'string' then
        local lookup = i == 4 and name:match('^[^.]+') or name
        local file = package.searchpath(lookup, package[which])
        if file then
          local okt, why = host.check_trust(file)
          if not okt then return "\n\tmodule '" .. name .. "' refused: " .. tostring(why) end
        end
      end
      return searcher(name, ...)
    end
  end
  local function library_file(path)
    return type(path) == 'string' and library_source('@' .. path)
  end
  for _, k in ipairs({ 'loadfile', 'dofile' }) do
    local f = _G[k]
    _G[k] = function(path, ...)
      if library_file(path) and task_caller(2) then deny(k .. ' of a library file') end
      return f(path, ...)
    end
  end
  local load0 = load
  _G.load = function(chunk, name, ...)
    if type(name) == 'string' and library_source(name) and task_caller(2) then
      name = '=' .. name:sub(2)
    end
    return load0(chunk, name, ...)
  end
  local loaded, hidden = package.loaded, {}
  for k, v in pairs(loaded) do
    if internal(k) then hidden[k] = v; loaded[k] = nil end
  end
  package.preload._fibersd = nil
  setmt(loaded, {
    __index = function(_, k)
      if hidden[k] ~= nil and not task_caller(2) then return hidden[k] end
      return nil
    end,
    __newindex = function(t, k, v)
      if internal(k) and not task_caller(2) then hidden[k] = v else rawset(t, k, v) end
    end,
    __metatable = false,
  })
end

-- A new global environment for one task: reads fall back to the shared
-- globals, writes stay private; M.sandbox() makes blocked calls raise.
function M.new_env()
  M.sandbox()
  local env = setmetatable({}, { __index = _G })
  env._G = env
  return env
end

-- Compile a script's source in env: chunk or nil, "file:line: message".
function M.compile(source, file, env)
  local chunk, err = load(source, '@' .. file, 't', env)
  if not chunk then return nil, err end
  return chunk
end

-- ---- scope -> task registry ---------------------------------------------

local by_scope = setmetatable({}, { __mode = 'k' })

-- Remember that scope s is the scope of one run of task record rec.
function M.register(s, rec) by_scope[s] = rec end

-- Forget a task scope.
function M.unregister(s) by_scope[s] = nil end

-- Find the task that owns scope s: rec, path ("task/child/17") or nil.
function M.of_scope(s)
  local parts = {}
  while s do
    local rec = by_scope[s]
    if rec then
      local path = rec.name
      for i = #parts, 1, -1 do path = path .. '/' .. parts[i] end
      return rec, path
    end
    parts[#parts + 1] = s:name() or tostring(s:id())
    s = s:parent()
  end
  return nil
end

-- The task record that owns scope s (no path built: the spawn path).
function M.rec_of(s)
  while s do
    local rec = by_scope[s]
    if rec then return rec end
    s = s:parent()
  end
  return nil
end

-- The defaults of every Command a run starts (fibers.exec task_defaults):
-- its cgroup (cg from fibersd.cgroup, or nil) and the identity keys of its
-- policy (user, group, supplementary_groups, working_directory, umask,
-- environment.NAME, environment_file, already resolved by the config).
-- Returns the table (nil when there is nothing) or nil, message.
function M.exec_defaults(pol, cg)
  local d = { cgroup = cg and cg.fd or nil, cwd = pol.working_directory, umask = pol.umask,
    env = pol.environment }
  if pol.user or pol.group or pol.supplementary_groups then
    local function num(x) return x and (tonumber(x) or x) end
    local groups
    if pol.supplementary_groups then
      groups = {}
      for g in pol.supplementary_groups:gmatch('%S+') do groups[#groups + 1] = num(g) end
    end
    local okc, uid, gid, gl = pcall(require('fibers.exec_spec').resolve_creds,
      { user = num(pol.user), group = num(pol.group), groups = groups })
    if not okc then return nil, (tostring(uid):gsub('^exec: ', '')) end
    d.uid, d.gid, d.groups = uid, gid, gl
  end
  if next(d) == nil then return false end
  return d
end

-- The task of the calling fiber (from its scope ancestry): rec, path | nil.
function M.current()
  if not runtime.current_fiber() then return nil end
  return M.of_scope(scopes.current())
end

-- `print` for the daemon: each call becomes one info record tagged with the
-- calling task (or fibersd outside tasks).
function M.print(...)
  local n = select('#', ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  local rec, path = M.current()
  log.emit(6, table.concat(parts, '\t'), rec and rec.name, path)
end

return M
