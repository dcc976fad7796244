-- fibersd.log - the daemon's log records: level filtering, the per-task ring
-- of recent lines (fed to `fibersctl logs`), followers (`logs -f`), and the
-- hand-off to the host's writer (journal or stderr, see src/fibersd).
--
-- A record is a table
--   { t = monotonic s, time = epoch s, priority = 0..7, level = name,
--     task = name|nil, scope = path|nil, pid = n|nil, stream = s|nil,
--     message = string }
-- It must never block: followers are plain callbacks that queue on their
-- side (the control server bounds its own buffers).

local host = require 'fibersd.host'

local M = {}

-- Syslog priorities by level name, and back.
M.levels = { emerg = 0, alert = 1, crit = 2, err = 3, warning = 4, notice = 5, info = 6, debug = 7 }
M.names = {}
for k, v in pairs(M.levels) do M.names[v] = k end

local max_priority = 6   -- info
local ring_size = 0      -- lines per task ring: log_lines, set by configure()
local rings = {}         -- task name -> ring (allocated lazily)
local followers = {}     -- task name -> { [fn] = true }
local any_followers = {} -- fn -> true, receive every record

local sys = require('fibers.core').sys
local clock_mono, clock_real = sys.monotime, sys.realtime
M.monotime, M.realtime = clock_mono, clock_real

-- Set the level (name or priority) and ring size; returns true or nil, msg.
function M.configure(level, lines)
  if level ~= nil then
    local p = type(level) == 'number' and level or M.levels[level]
    if not p then return nil, 'unknown log level ' .. tostring(level) end
    max_priority = p
  end
  if lines ~= nil then ring_size = math.max(0, math.floor(lines)) end
  return true
end

-- The current maximum priority that is logged.
function M.level() return max_priority end

local function ring_push(name, rec)
  if ring_size <= 0 then return end
  local r = rings[name]
  if not r then
    r = { n = 0, head = 0 }
    rings[name] = r
  end
  r.head = r.head % ring_size + 1
  r[r.head] = rec
  if r.n < ring_size then r.n = r.n + 1 end
end

local function notify(set, rec)
  if not set then return end
  for fn in pairs(set) do
    local okc, err = pcall(fn, rec)
    if not okc then
      set[fn] = nil
      io.stderr:write('fibersd: log follower failed: ', tostring(err), '\n')
    end
  end
end

-- Emit a record: priority, message, and optional task, scope, pid, stream.
-- Returns the record, or nil when filtered by the level.
function M.emit(priority, message, task, scope, pid, stream)
  if priority > max_priority then return nil end
  local rec = {
    t = clock_mono(), time = clock_real(), priority = priority,
    level = M.names[priority], task = task, scope = scope, pid = pid,
    stream = stream, message = message,
  }
  host.log(priority, message, { task = task, scope = scope, pid = pid, stream = stream })
  local key = task or 'fibersd'
  ring_push(key, rec)
  notify(followers[key], rec)
  if next(any_followers) then notify(any_followers, rec) end
  return rec
end

-- Log a daemon message (no task): log.daemon('notice', fmt, ...).
function M.daemon(level, fmt, ...)
  local msg = select('#', ...) > 0 and string.format(fmt, ...) or fmt
  return M.emit(M.levels[level] or 6, msg)
end

-- Log on behalf of a task: log.task(name, scope_path, level, fmt, ...).
function M.task(name, scope, level, fmt, ...)
  local msg = select('#', ...) > 0 and string.format(fmt, ...) or fmt
  return M.emit(M.levels[level] or 6, msg, name, scope)
end

-- The last n (default: all) records of a task's ring, oldest first.
function M.lines(name, n)
  local r = rings[name]
  local out = {}
  if not r then return out end
  n = math.min(n or r.n, r.n)
  for i = n - 1, 0, -1 do
    local idx = (r.head - 1 - i) % ring_size + 1
    out[#out + 1] = r[idx]
  end
  return out
end

-- Forget a task's ring (the task was removed).
function M.drop(name) rings[name] = nil end

-- Call fn(record) for every new record of a task (nil name: of all tasks
-- and the daemon).  Returns a function that unsubscribes.
function M.follow(name, fn)
  local set
  if name == nil then
    set = any_followers
  else
    set = followers[name]
    if not set then set = {}; followers[name] = set end
  end
  set[fn] = true
  return function()
    set[fn] = nil
    if name ~= nil and next(set) == nil and followers[name] == set then followers[name] = nil end
  end
end

-- Format a record for people: "time level task: message".
function M.format(rec)
  return string.format('%s %s %s: %s', os.date('%Y-%m-%dT%H:%M:%S', math.floor(rec.time)),
    rec.level or tostring(rec.priority), rec.task or 'fibersd', rec.message)
end

return M
