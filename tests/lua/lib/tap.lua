-- tap.lua - a tiny TAP producer for the Lua tests (runs on Lua 5.1-5.4 and
-- LuaJIT).  Usage:
--   local t = require 'tap'
--   t.is(got, expected, "name"); t.is_deeply(a, b, "name"); t.like(s, pat, "name")
--   t.raises(fn, pattern, "name"); t.ok(v, "name"); t.diag("note")
--   t.done()        -- prints the plan, exits 1 if anything failed
local M = {}
local n, failed = 0, 0

local function fmt(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

function M.ok(v, name)
  n = n + 1
  if v then
    io.stdout:write(("ok %d - %s\n"):format(n, name or ""))
  else
    failed = failed + 1
    io.stdout:write(("not ok %d - %s\n"):format(n, name or ""))
    local info = debug.getinfo(3, "Sl") or debug.getinfo(2, "Sl")
    if info then M.diag(("at %s:%s"):format(info.short_src, tostring(info.currentline))) end
  end
  io.stdout:flush()
  return v and true or false
end

function M.diag(msg)
  for line in (tostring(msg) .. "\n"):gmatch("([^\n]*)\n") do
    io.stdout:write("# ", line, "\n")
  end
end

function M.is(got, exp, name)
  local r = M.ok(got == exp, name)
  if not r then M.diag(("     got: %s\nexpected: %s"):format(fmt(got), fmt(exp))) end
  return r
end

function M.isnt(got, exp, name)
  local r = M.ok(got ~= exp, name)
  if not r then M.diag(("got: %s, expected anything else"):format(fmt(got))) end
  return r
end

local function deep_eq(a, b, path, seen)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then
    return false, ("%s: %s ~= %s"):format(path, fmt(a), fmt(b))
  end
  seen = seen or {}
  if seen[a] == b then return true end
  seen[a] = b
  for k, v in pairs(a) do
    local ok, why = deep_eq(v, b[k], path .. "." .. tostring(k), seen)
    if not ok then return false, why end
  end
  for k, v in pairs(b) do
    if a[k] == nil then
      return false, ("%s.%s: missing (expected %s)"):format(path, tostring(k), fmt(v))
    end
  end
  return true
end

function M.is_deeply(got, exp, name)
  local eq, why = deep_eq(got, exp, "$")
  local r = M.ok(eq, name)
  if not r then M.diag(why) end
  return r
end

function M.like(got, pat, name)
  local r = M.ok(type(got) == "string" and got:match(pat) ~= nil, name)
  if not r then M.diag(("%s does not match %q"):format(fmt(got), pat)) end
  return r
end

function M.raises(fn, pat, name)
  local ok, err = pcall(fn)
  if ok then
    M.ok(false, name)
    M.diag("expected an error, none was raised")
    return false
  end
  if pat then return M.like(tostring(err), pat, name) end
  return M.ok(true, name)
end

-- Pack results with their count (nils kept).
function M.pack(...) return { n = select("#", ...), ... } end

function M.skip_all(reason)
  io.stdout:write("1..0 # SKIP ", reason, "\n")
  os.exit(0)
end

function M.done()
  io.stdout:write(("1..%d\n"):format(n))
  io.stdout:flush()
  if failed > 0 or n == 0 then os.exit(1) end
  os.exit(0)
end

return M
