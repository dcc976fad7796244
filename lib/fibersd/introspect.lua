-- fibersd.introspect - scope addresses and status trees for the control
-- server (control.lua), built only from the library's introspection API
-- (scope:snapshot(), scope.by_id, scope:children(), scope:parent()) and the
-- supervisor's status API; it never reads private fields and changes nothing.
--
-- Addresses (doc/daemon.md §7): a task name (`web`), a path of scope names below
-- it (`web/worker`), a numeric scope id (`17`, also `web/17`).  An all-digit
-- segment is always an id.  Unnamed scopes are transparent in name paths
-- (a name segment matches the nearest named descendants) and appear by id in
-- the paths we print.  Only task subtrees are addressable: the root, the
-- `control` scope and the daemon's other scopes are not; the task names
-- `control` and `fibersd` are reserved.

local scope = require 'fibers.scope'
local array = require('_fibersd').control.array

local M = {}

local RESERVED = { control = true, fibersd = true }

local function digits(s) return s:match('^%d+$') ~= nil end

-- Map live task scope -> task name.
function M.task_scopes(sv)
  local map = {}
  for _, name in ipairs(sv:names()) do
    local st = sv:status(name)
    if st and st.scope then map[st.scope] = name end
  end
  return map
end

-- Path of scope s inside its task ("web/worker/23"), or nil when s is not
-- inside a task subtree.
function M.path_of(s, map)
  local segs = {}
  local cur = s
  while cur do
    local tname = map[cur]
    if tname then
      local out = { tname }
      for i = #segs, 1, -1 do out[#out + 1] = segs[i] end
      return table.concat(out, '/')
    end
    segs[#segs + 1] = cur:name() or tostring(cur:id())
    cur = cur:parent()
  end
  return nil
end

local function below(s, anc)
  local cur = s
  while cur do
    if cur == anc then return true end
    cur = cur:parent()
  end
  return false
end

-- Named descendants of s called `name`, searching through unnamed scopes.
local function find_named(s, name)
  local found, queue, qi = {}, s:children(), 1
  while qi <= #queue do
    local c = queue[qi]
    qi = qi + 1
    local n = c:name()
    if n == name then
      found[#found + 1] = c
    elseif n == nil then
      for _, k in ipairs(c:children()) do queue[#queue + 1] = k end
    end
  end
  return found
end

-- Resolve an address.  Returns { task = name|nil, scope = Scope|nil,
-- path = string, status = task status|nil } or nil, code, message, ids.
-- A bare task name resolves even when the task has no live scope.
function M.resolve(sv, addr)
  if type(addr) == 'number' and addr == math.floor(addr) then addr = string.format('%d', addr) end
  if type(addr) ~= 'string' or addr == '' then
    return nil, 'bad_request', 'scope must be a task name, a path or an id'
  end
  local segs = {}
  for seg in (addr .. '/'):gmatch('([^/]*)/') do
    if seg == '' then return nil, 'not_found', "no scope '" .. addr .. "'" end
    segs[#segs + 1] = seg
  end
  local map = M.task_scopes(sv)
  local nf = "no scope '" .. addr .. "'"
  local cur
  if digits(segs[1]) then
    cur = scope.by_id(tonumber(segs[1]))
    if not cur or not M.path_of(cur, map) then return nil, 'not_found', nf end
  else
    local name = segs[1]
    local st = not RESERVED[name] and sv:status(name) or nil
    if not st then return nil, 'not_found', "no task '" .. name .. "'" end
    if #segs == 1 then return { task = name, scope = st.scope, path = name, status = st } end
    if not st.scope then return nil, 'not_found', nf .. " (task '" .. name .. "' is not running)" end
    cur = st.scope
  end
  for i = 2, #segs do
    local seg = segs[i]
    if digits(seg) then
      local s = scope.by_id(tonumber(seg))
      if not s or not below(s, cur) then return nil, 'not_found', nf end
      cur = s
    else
      local found = find_named(cur, seg)
      if #found == 0 then return nil, 'not_found', nf end
      if #found > 1 then
        local ids = array()
        for j, s in ipairs(found) do ids[j] = s:id() end
        return nil, 'ambiguous', string.format("'%s' names %d scopes: use an id", addr, #found), ids
      end
      cur = found[1]
    end
  end
  local tname = map[cur]
  return { task = tname, scope = cur, path = M.path_of(cur, map), status = tname and sv:status(tname) or nil }
end

-- Status node of scope s (path given), nesting up to depth (nil = all).
-- counts.processes is increased by the running commands seen.  The node is
-- the snapshot table itself (a fresh table we own), completed in place:
-- a 1000-task status builds as few tables as it can.
function M.scope_node(s, path, depth, now, counts)
  local node = s:snapshot()
  node.path, node.uptime = path, now - node.since
  local cmds = node.commands or {}
  for i = 1, #cmds do
    local c = cmds[i]
    if c.since then c.uptime = now - c.since end
    if c.state == 'running' and counts then counts.processes = (counts.processes or 0) + 1 end
  end
  node.commands = array(cmds)
  local ids = node.children or {}
  if #ids == 0 then
    node.children = array(ids) -- the snapshot's empty list: no new table
  else
    local kids = array()
    if depth == nil or depth > 0 then
      for _, id in ipairs(ids) do
        local ch = scope.by_id(id)
        if ch then
          local seg = ch:name() or tostring(id)
          kids[#kids + 1] = M.scope_node(ch, path .. '/' .. seg, depth and depth - 1, now, counts)
        end
      end
    end
    node.children = kids
  end
  return node
end

-- Status node of a task: the supervisor's status table (fresh, ours)
-- completed in place with its live scope's tree.  Defaults are left out to
-- keep a 1000-task status small: `enabled` only when false, `forced` only
-- when true, `extra_errors` only when non-empty.
function M.task_node(st, depth, now, counts)
  local sc = st.scope
  st.scope, st.path, st.ready = nil, st.name, st.ready or false
  if st.enabled ~= false then st.enabled = nil end
  if not st.forced then st.forced = nil end
  if st.extra_errors and #st.extra_errors == 0 then st.extra_errors = nil end
  if sc then
    local sn = M.scope_node(sc, st.name, depth, now, counts)
    st.fibers, st.children, st.commands = sn.fibers, sn.children, sn.commands
  else
    st.fibers, st.children, st.commands = 0, array(), array()
  end
  return st
end

-- Containment fields of one task's node (fibersd.cgroup): `containment`
-- ("cgroup" | "process-group"); with a cgroup, the run's `processes`
-- ({ pid, cmdline, stray }: stray = outside its Commands' process groups),
-- `cpu_user_usec`/`cpu_system_usec` (cpu.stat) and `memory_current` where
-- the memory controller is enabled.
function M.containment(node, rec, sc)
  local cgroup = require 'fibersd.cgroup'
  node.containment = cgroup.mode
  local cg = rec and rec.cg
  if not cg then return node end
  local i = cgroup.info(cg, sc)
  local procs = array()
  for _, p in ipairs(i.processes) do
    local d = cgroup.describe(p.pid)
    procs[#procs + 1] = { pid = p.pid, stray = p.stray, cmdline = d:match('^pid %d+ %((.*)%)$') or d }
  end
  node.cgroup, node.processes = cg.path, procs
  node.cpu_user_usec, node.cpu_system_usec, node.memory_current = i.cpu_user_usec, i.cpu_system_usec, i.memory_current
  return node
end

-- Every Command of s's subtree: calls fn(command_info) for each.
function M.each_command(s, fn)
  local snap = s:snapshot()
  for _, c in ipairs(snap.commands or {}) do fn(c) end
  for _, id in ipairs(snap.children or {}) do
    local ch = scope.by_id(id)
    if ch then M.each_command(ch, fn) end
  end
end

M.RESERVED = RESERVED

return M
