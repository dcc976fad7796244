-- fixture.lua - helpers shared by the Lua tests in tests/lua/ (beside
-- tap.lua, which stays free of the library): driving scheduler turns by
-- hand, sampling memory, running shell commands and child interpreters.
-- Runs on Lua 5.1-5.4 and LuaJIT.  Usage:
--   local fx = require 'fixture'
--   fx.turns(n)            -- n scheduler turns at the real time (default 1)
--   fx.sample_mem(list)    -- two full GCs, then append the KB in use
--   fx.sh(cmd)             -- stdout of a shell command, last newline cut
--   fx.runner              -- the Lua interpreter of this run ($LUA_RUNNER)
local M = {}

M.unpack = table.unpack or unpack
M.runner = os.getenv("LUA_RUNNER") or "lua5.4"

local sched  -- loaded on first use: tests of pure modules stay library-free

-- One scheduler turn at the real time (never blocks), n times (default 1).
function M.turns(n)
  sched = sched or require('fibers.runtime').current_scheduler
  for _ = 1, n or 1 do sched:run() end
end

-- Collect garbage fully (twice: finalisers), then append the KB in use.
function M.sample_mem(mem)
  collectgarbage(); collectgarbage()
  mem[#mem + 1] = collectgarbage("count")
end

-- Run cmd with the shell; its stdout without the final newline.
function M.sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("*a")
  p:close()
  return (out:gsub("\n$", ""))
end

return M
