-- fibers/exec_spec.lua - private to fibers.exec: validation and resolution
-- of Command fields (stdio values, env, flags, grace, rlimits, umask, user,
-- group and supplementary groups) and the child's environment list.
-- Misuse raises with level 3 (the user code that called exec.command or a
-- setter); nothing here starts processes or touches scopes.
local core = require 'fibers.core'

local P = core.proc
local type, error, pairs, ipairs, tostring, tonumber =
      type, error, pairs, ipairs, tostring, tonumber

local M = {}

local STDIO_MODES = { inherit = true, null = true, pipe = true }

local stream_mod
local function is_stream(x)
  if not stream_mod then stream_mod = require 'fibers.io.stream' end
  return stream_mod.is_stream(x)
end

-- Raise unless v is a valid stdio value for `name` (level 3: the caller's
-- caller, i.e. user code calling command() or a setter).
function M.check_stdio(name, v, host)
  if v == nil then return end
  if type(v) == "string" then
    if STDIO_MODES[v] then return end
    if v == "stdout" and name == "stderr" then return end
    if v == "log" and name ~= "stdin" and host.log_line then return end
  elseif is_stream(v) then
    return
  end
  error("exec: invalid " .. name .. " value '" .. tostring(v) .. "'", 3)
end

-- env: { NAME = string | number | false }.
function M.check_env(env)
  if env == nil then return end
  if type(env) ~= "table" then error("exec: env must be a table", 3) end
  for k, v in pairs(env) do
    if type(k) ~= "string" or k == "" or k:find("=", 1, true) then
      error("exec: bad environment variable name '" .. tostring(k) .. "'", 3)
    end
    if v ~= false and type(v) ~= "string" and type(v) ~= "number" then
      error("exec: environment value of " .. k .. " must be a string, number or false", 3)
    end
  end
end

-- flags: { setsid = bool, pgroup = bool }.
function M.check_flags(f)
  if f == nil then return end
  if type(f) ~= "table" then error("exec: flags must be a table", 3) end
  for k in pairs(f) do
    if k ~= "setsid" and k ~= "pgroup" then error("exec: unknown flag '" .. tostring(k) .. "'", 3) end
  end
end

-- shutdown_grace: a number >= 0.
function M.check_grace(g)
  if g ~= nil and (type(g) ~= "number" or g ~= g or g < 0) then
    error("exec: shutdown_grace must be a number >= 0", 3)
  end
end

local function resolve_group(g)
  if type(g) == "number" then return g end
  local gid = type(g) == "string" and P.group(g)
  if not gid then error("exec: unknown group '" .. tostring(g) .. "'", 4) end
  return gid
end

-- user/group/groups -> uid, gid, groups (numbers); raises on unknown names.
function M.resolve_creds(spec)
  local uid, gid, groups, uname, ugid
  if spec.user ~= nil then
    local u = spec.user
    if type(u) ~= "string" and type(u) ~= "number" then error("exec: bad user", 3) end
    local a, b, c = P.user(u)
    if not a then error("exec: unknown user '" .. tostring(u) .. "'", 3) end
    uid, ugid, uname = a, b or nil, c or nil
  end
  if spec.group ~= nil then gid = resolve_group(spec.group) end
  if uid and not gid then
    if not ugid then
      error("exec: user " .. tostring(spec.user) .. " has no passwd entry; set group", 3)
    end
    gid = ugid
  end
  if spec.groups ~= nil then
    if type(spec.groups) ~= "table" then error("exec: groups must be a list", 3) end
    groups = {}
    for i, g in ipairs(spec.groups) do groups[i] = resolve_group(g) end
  elseif (uid or gid) and P.geteuid() == 0 then
    if uid and uname then groups = P.grouplist(uname, gid)
    elseif gid then groups = { gid } end
  end
  return uid, gid, groups
end

-- umask: a number 0..0777 or an octal string ("027").
function M.resolve_umask(u)
  if u == nil then return nil end
  if type(u) == "string" then
    local n = tonumber(u, 8)
    if not n then error("exec: bad umask '" .. u .. "'", 3) end
    return n
  end
  if type(u) ~= "number" or u < 0 or u > 511 then error("exec: bad umask", 3) end
  return u
end

-- rlimits: keys must be known resource names.
function M.check_rlimits(r)
  if r == nil then return end
  if type(r) ~= "table" then error("exec: rlimits must be a table", 3) end
  for k in pairs(r) do
    if type(k) ~= "string" or not P.rlimit_valid(k) then
      error("exec: unknown rlimit '" .. tostring(k) .. "'", 3)
    end
  end
end

M.FIELDS = {
  stdin = true, stdout = true, stderr = true, cwd = true, env = true, env_mode = true,
  flags = true, shutdown_grace = true, user = true, group = true, groups = true,
  umask = true, rlimits = true, cgroup = true,
}

-- The child's environment as a list of "K=V", or nil to inherit ours:
-- env merged over ours (false unsets) after the host's scrub list and env,
-- or exactly env with mode "replace".
function M.build_env(env, mode, host)
  local hostenv, scrub = host.env, host.scrub_env
  if mode == "replace" then
    local list = {}
    for k, v in pairs(env or {}) do
      if v ~= false then list[#list + 1] = k .. "=" .. tostring(v) end
    end
    table.sort(list)
    return list
  end
  if env == nil and hostenv == nil and scrub == nil then return nil end
  local over, order = {}, {}
  local function set(k, v)
    if over[k] == nil then order[#order + 1] = k end
    over[k] = v
  end
  if scrub then for _, k in ipairs(scrub) do set(k, false) end end
  if hostenv then
    local ks = {}
    for k in pairs(hostenv) do ks[#ks + 1] = k end
    table.sort(ks)
    for _, k in ipairs(ks) do set(k, hostenv[k]) end
  end
  if env then
    local ks = {}
    for k in pairs(env) do ks[#ks + 1] = k end
    table.sort(ks)
    for _, k in ipairs(ks) do set(k, env[k]) end
  end
  local list, seen = {}, {}
  for _, kv in ipairs(P.environ()) do
    local k = kv:match("^([^=]*)=")
    if k and over[k] ~= nil then
      if not seen[k] then
        seen[k] = true
        if over[k] ~= false then list[#list + 1] = k .. "=" .. tostring(over[k]) end
      end
    else
      list[#list + 1] = kv
    end
  end
  for _, k in ipairs(order) do
    if not seen[k] and over[k] ~= false then list[#list + 1] = k .. "=" .. tostring(over[k]) end
  end
  return list
end

return M
