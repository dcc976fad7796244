-- fibersd - the host API that task scripts get from `require 'fibersd'`.
--
-- The module table is shared by all tasks, so every function resolves the
-- calling task from the current fiber's scope ancestry (task.current()).
-- Outside any task, logging is tagged `fibersd` and ready()/watchdog() do
-- nothing.
--
--   fibersd.log.debug/info/notice/warning/err(fmt, ...)
--   fibersd.ready()      mark the task ready (status shows it)
--   fibersd.watchdog()   tell the per-task watchdog (watchdog_sec) we live
--   fibersd.task         the calling task's { name, file, params }
--   fibersd.config_keys() the daemon's config key table (a fresh copy)

local task = require 'fibersd.task'
local log = require 'fibersd.log'
local host = require 'fibersd.host'

local M = { log = {} }

local function format(fmt, ...)
  if select('#', ...) == 0 then return tostring(fmt) end
  return string.format(fmt, ...)
end

for _, level in ipairs({ 'debug', 'info', 'notice', 'warning', 'err' }) do
  local prio = log.levels[level]
  M.log[level] = function(fmt, ...)
    if prio > log.level() then return end
    local rec, path = task.current()
    log.emit(prio, format(fmt, ...), rec and rec.name, path)
  end
end

-- Mark the calling task ready.
function M.ready()
  local rec = task.current()
  if rec and rec.on_ready then rec:on_ready() end
end

-- The daemon's config keys: { {name, section, type, default, choices, help,
-- reload}, ... } (tasks cannot reach the host binding itself).
function M.config_keys() return host.config_keys() end

-- Feed the calling task's watchdog.
function M.watchdog()
  local rec = task.current()
  if rec and rec.on_watchdog then rec:on_watchdog() end
end

return setmetatable(M, {
  __index = function(_, k)
    if k == 'task' then
      local rec = task.current()
      return rec and rec.public
    end
  end,
})
