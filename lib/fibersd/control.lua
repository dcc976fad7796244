-- fibersd.control - the control socket server (doc/daemon.md §7): accepting
-- connections, roles, limits and framing.  The methods themselves live in
-- control_methods.lua; JSON, peer credentials and the protocol constants
-- come from C (`_fibersd`.control, src/fibersd/lcontrol.c + protocol.h).
--
-- Each connection runs in its own child scope of the `control` scope: a
-- reader fiber (requests are handled one at a time, in order) and a writer
-- fiber draining an outgoing queue.  Nothing here ever blocks supervision:
-- state and log events are pushed into the queue by callbacks; a stream
-- (watch, logs -f) whose unsent output passes MAX_UNSENT is dropped, and a
-- client that does not read its replies is not read from either until they
-- drain.  Limits: request lines of MAX_REQUEST bytes (longer: error, then
-- close), MAX_CLIENTS connections with ADMIN_RESERVED kept for admin peers
-- (one more: `busy`, closed), `control_idle` seconds of silence (never for a
-- connection with an active stream).
--
-- main.lua calls control.start{ scope, fd, sv, cfg, reload, version, started }.

local fibers = require 'fibers'
local scope_mod = require 'fibers.scope'
local sleep = require 'fibers.sleep'
local cond = require 'fibers.cond'
local log = require 'fibersd.log'
local C = require('_fibersd').control
local methods = require 'fibersd.control_methods'

local M = {}
local E = C.errors

local Server = {}
Server.__index = Server
local Conn = {}
Conn.__index = Conn

-- Wrap the listening fd in a fibers.io.socket listener.
local function listener_of(fd)
  local socket = require 'fibers.io.socket'
  local f = socket.from_fd or socket.adopt
  return f(fd)
end

-- Resolve a group setting (name or number) to a gid; warn when it does not
-- exist (the role is then simply not granted).
local function group_gid(what, g)
  if g == nil or g == '' then return nil end
  local gid, err = C.gid(g)
  if not gid then log.daemon('warning', 'control: %s %s: %s (role not granted)', what, tostring(g), tostring(err)) end
  return gid
end

-- Watchers of scope state changes inside task subtrees (watch streams).
local scope_watchers = {}

-- Subscribe fn(event) to state changes of the scopes below task scopes (the
-- task scopes themselves are reported by the supervisor).  Returns the
-- unsubscribe function.
function M.watch_scopes(fn)
  scope_watchers[fn] = true
  return function() scope_watchers[fn] = nil end
end

-- The library's scope state hook: one event per change of a scope inside a
-- task subtree, with its address path ("web/worker", unnamed scopes by id).
-- Cheap when nobody watches; never blocks.
local function install_state_hook(sv)
  scope_mod.set_state_hook(function(s, from, to, err)
    if next(scope_watchers) == nil or not sv.tasks_scope then return end
    local segs, cur = {}, s
    while cur and cur:parent() ~= sv.tasks_scope do
      segs[#segs + 1] = cur:name() or tostring(cur:id())
      cur = cur:parent()
    end
    if not cur or cur == s or not cur:name() then return end
    local path = { cur:name() }
    for i = #segs, 1, -1 do path[#path + 1] = segs[i] end
    local reason = err
    if reason ~= nil and type(reason) ~= 'string' then reason = tostring(reason) end
    local ev = { event = 'state', scope = table.concat(path, '/'), id = s:id(), from = from, to = to,
      reason = reason, t = fibers.now(), time = C.rfc3339(log.realtime()) }
    for fn in pairs(scope_watchers) do pcall(fn, ev) end
  end)
end

-- Start the server in opts.scope.  Returns the server object.
function M.start(opts)
  local F = (opts.cfg and opts.cfg.fibersd) or {}
  local srv = setmetatable({
    scope = opts.scope, sv = opts.sv, reload = opts.reload,
    version = opts.version or C.VERSION, started = opts.started or fibers.now(),
    control_gid = group_gid('control_group', F.control_group),
    admin_gid = group_gid('admin_group', F.admin_group),
    idle = F.control_idle, clients = 0,
  }, Server)
  srv.listener = opts.listener or assert(listener_of(opts.fd))
  install_state_hook(opts.sv)
  opts.scope:spawn(function() srv:accept_loop() end)
  return srv
end

-- Accept connections forever; on errors (EMFILE...) log once per burst and
-- back off so accept never spins.
function Server:accept_loop()
  local last_err = -math.huge
  while true do
    local stream, err = fibers.perform(self.listener:accept_op())
    if stream then
      self:admit(stream)
    else
      if fibers.now() - last_err > 10 then
        log.daemon('warning', 'control: accept failed: %s', tostring(err))
      end
      last_err = fibers.now()
      sleep.sleep(0.1)
    end
  end
end

-- Say one error line to a connection we will not serve, then close it
-- (bounded: a peer that does not read costs us at most a second).
function Server:refuse(stream, code, message)
  self.scope:spawn(function()
    local line = C.json_encode({ error = { code = code, message = message } }) .. '\n'
    fibers.named_choice({
      sent = stream:write_string_op(line):wrap(function() return fibers.perform(stream:flush_output_op()) end),
      timeout = sleep.sleep_op(1),
    })
    stream:close()
  end)
end

-- Check the peer and the client limits, then serve it.
function Server:admit(stream)
  local role, pid, uid = C.peer_role(stream:fileno(), self.control_gid, self.admin_gid)
  if role == nil then
    stream:close()
    return
  end
  if not role then
    log.daemon('warning', 'control: refused peer pid %d uid %d: in neither control_group nor admin_group', pid, uid)
    return self:refuse(stream, E.permission_denied,
      string.format('permission denied: uid %d is in neither control_group nor admin_group', uid))
  end
  local limit = C.MAX_CLIENTS
  if role ~= 'admin' then limit = limit - C.ADMIN_RESERVED end
  if self.clients >= limit then
    return self:refuse(stream, E.busy, string.format('too many control clients (%d)', self.clients))
  end
  self.clients = self.clients + 1
  local ok = self.scope:spawn(function()
    scope_mod.run(function(cs)
      local conn = setmetatable({
        srv = self, stream = stream, role = role, pid = pid, uid = uid, scope = cs,
        queue = {}, qhead = 1, qtail = 0, qbytes = 0, streams = 0, unsubs = {},
        wake = cond.new(), drained = cond.new(), writer_done = cond.new(),
      }, Conn)
      cs:finally(function() conn:cleanup() end)
      conn:serve()
    end)
    self.clients = self.clients - 1
  end)
  if not ok then
    self.clients = self.clients - 1
    stream:close()
  end
end

-- Queue one message; returns false when the connection was dropped.
-- encode(msg), when given, returns the whole line (newline included) in
-- place of json_encode (the status method's encoder, lstatus.c).
function Conn:send(msg, encode)
  if self.closed then return false end
  local okc, line
  if encode then
    okc, line = pcall(encode, msg)
  else
    okc, line = pcall(C.json_encode, msg)
    if okc then line = line .. '\n' end
  end
  if not okc then
    line = C.json_encode({ id = msg.id, error = { code = E.failed, message = 'cannot encode reply: ' .. tostring(line) } })
      .. '\n'
  end
  if self.streams > 0 and self.qbytes + #line > C.MAX_UNSENT then
    self:drop('output overflow') -- first: the log line below may feed a follower
    log.daemon('warning', 'control: dropped stream of pid %d: more than %d bytes unsent', self.pid, C.MAX_UNSENT)
    return false
  end
  self.qtail = self.qtail + 1
  self.queue[self.qtail] = line
  self.qbytes = self.qbytes + #line
  local w = self.wake
  self.wake = cond.new()
  w:signal()
  return true
end

-- Reply to request id with a result (t and time added); encode as in send.
function Conn:result(id, result, continues, encode)
  result.t = result.t or fibers.now()
  result.time = result.time or C.rfc3339(log.realtime())
  local msg = { id = id, result = result }
  if continues then msg.continues = true end
  return self:send(msg, encode)
end

-- Reply to request id with an error.
function Conn:error(id, code, message, ids)
  return self:send({ id = id, error = { code = code, message = message, ids = ids } })
end

-- Register a stream's unsubscribe function (called when the connection ends).
function Conn:add_stream(unsub)
  self.streams = self.streams + 1
  self.unsubs[#self.unsubs + 1] = unsub
end

-- Stop every stream of this connection (idempotent, never blocks).
function Conn:unsubscribe()
  local unsubs = self.unsubs
  self.unsubs = {}
  for _, u in ipairs(unsubs) do pcall(u) end
end

-- Drop the connection at once (from any fiber or callback; never blocks):
-- its fibers are cancelled, the finaliser closes the socket.
function Conn:drop(why)
  if self.closed then return end
  self.closed = true
  self:unsubscribe()
  self.scope:cancel(why)
end

-- The connection scope's finaliser: unsubscribe and close the socket.
function Conn:cleanup()
  self.closed = true
  self:unsubscribe()
  pcall(self.stream.close, self.stream)
end

-- The writer fiber: drain the queue into the socket, flushing when empty.
function Conn:writer()
  local stream = self.stream
  while true do
    if self.qhead > self.qtail then
      local d = self.drained
      self.drained = cond.new()
      d:signal()
      if self.ending then break end
      fibers.perform(self.wake:wait_op())
    else
      local line = self.queue[self.qhead]
      self.queue[self.qhead] = nil
      self.qhead = self.qhead + 1
      local _, err = fibers.perform(stream:write_string_op(line))
      self.qbytes = self.qbytes - #line
      if not err and self.qhead > self.qtail then _, err = fibers.perform(stream:flush_output_op()) end
      if err then
        self:drop('write failed')
        break
      end
    end
  end
  self.writer_done:signal()
end

-- The reader: greet, then read and handle requests until EOF, idle or error.
function Conn:serve()
  local srv, stream = self.srv, self.stream
  self.scope:spawn(function() self:writer() end)
  self:send({ hello = { daemon = 'fibersd', version = srv.version, protocol = C.PROTOCOL, role = self.role } })
  while not self.closed do
    while self.qbytes > C.MAX_UNSENT and not self.closed do fibers.perform(self.drained:wait_op()) end
    local arms = { line = stream:read_line_op({ max = C.MAX_REQUEST }) }
    if self.streams == 0 then arms.idle = sleep.sleep_op(srv.idle) end
    local which, line, err = fibers.named_choice(arms)
    if which == 'idle' or self.closed then break end
    if line == nil then
      if err and tostring(err):find('too long', 1, true) then
        self:error(nil, E.bad_request, string.format('request line longer than %d bytes', C.MAX_REQUEST))
      end
      break
    end
    methods.handle(self, line)
  end
  -- Let the last replies go out (bounded), then end the connection.
  self.ending = true
  local w = self.wake
  self.wake = cond.new()
  w:signal()
  if not self.closed then
    fibers.named_choice({ done = self.writer_done:wait_op(), timeout = sleep.sleep_op(2) })
  end
  self.closed = true
  self:unsubscribe()
  self.scope:cancel('closed')
end

M.Server, M.Conn = Server, Conn

return M
