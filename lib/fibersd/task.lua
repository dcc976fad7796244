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

-- Read a whole file: source or nil, msg.
function M.read(file)
  local f, err = io.open(file, 'rb')
  if not f then return nil, err end
  local s, rerr = f:read('a')
  f:close()
  if not s then return nil, file .. ': ' .. tostring(rerr) end
  return s
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

-- ---- the private environment -------------------------------------------

local function blocked(name)
  return function()
    error(name .. ' is not available in fibersd tasks: use fibers.exec / fibers.io', 2)
  end
end

local task_os = setmetatable({
  exit = blocked('os.exit'),
  execute = blocked('os.execute'),
}, { __index = os })

local task_io = setmetatable({
  popen = blocked('io.popen'),
  read = blocked('io.read'),
  lines = function(file, ...)
    if file == nil then blocked('io.lines on stdin')() end
    return io.lines(file, ...)
  end,
}, { __index = io })

-- A new global environment for one task: reads fall back to the shared
-- globals, writes stay private, blocked calls raise.
function M.new_env()
  local env = setmetatable({}, { __index = _G })
  env._G = env
  env.os = task_os
  env.io = task_io
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
