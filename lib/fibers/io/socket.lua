-- fibers.io.socket - UNIX stream sockets (doc/library.md §13): listening
-- sockets whose accept is an Op, connecting as an Op, peer credentials.
--
-- Owns: the Socket (listener) object and the accept/connect Ops.  Syscalls
-- are in C (`fibers.core`.socket, lsocket.c); connected sockets are
-- fibers.io.stream Streams (unbuffered writes, `stream:peer_cred()`).
--
-- Notes: every socket is non-blocking and close-on-exec.  A socket path
-- must fit sun_path (107 bytes): longer paths fail with a message that says
-- so.  accept on EMFILE/ENFILE yields nil, err (the caller decides; the Op
-- does not spin).  A connect to a listener whose backlog is full retries
-- every 5 ms until it succeeds or the Op loses.
local op = require 'fibers.op'
local runtime = require 'fibers.runtime'
local stream = require 'fibers.io.stream'
local core = require 'fibers.core'

local csock = core.socket
local sched = runtime.current_scheduler
local setmetatable, type, error, tostring = setmetatable, type, error, tostring

local M = {}

local CONNECT_RETRY = 0.005

local perform = stream._perform   -- scope-aware when `fibers` loads

local Socket = {}
Socket.__index = Socket
Socket.__name = "fibers.socket"

-- A blocked perform waiting for an fd (or a retry timer).
local Waiter = {}
Waiter.__index = Waiter

local function arm(w)
  if w.dir == "t" then
    w.h = sched:schedule_at_time(runtime.monotime() + CONNECT_RETRY, w)
  else
    w.h = sched:wait_fd(w.fd, w.dir, w)
  end
end

function Waiter:run()
  self.h = nil
  if not self.s:waiting() then return end
  local o = self.o
  local ready, a, b = o.try(o)
  if ready then return self.s:complete(self.t, a, b) end
  self.dir, self.fd = o.dir, o.fd
  arm(self)
end

local function unwait(w)
  local h = w.h
  w.h = nil
  if h == nil then return end
  if w.dir == "t" then sched:cancel_timer(h) else sched:cancel_fd(h) end
end

local function block(susp, token, o)
  local w = setmetatable({ s = susp, t = token, o = o, dir = o.dir, fd = o.fd }, Waiter)
  arm(w)
  susp:add_cleanup(unwait, w)
  if o.waiters then o.waiters[w] = true; susp:add_cleanup(function() o.waiters[w] = nil end) end
end

------------------------------------------------------------------------------
-- Listening sockets

local function accept_try(o)
  local self = o.sock
  if self._closed then return true, nil, "socket is closed" end
  local fd, err, errno = self._l:accept()
  if fd == false then return false end
  if fd == nil then return true, nil, err, errno end
  local s, serr = stream.from_fd(fd, true, true, { kind = "socket", name = self._path })
  if not s then csock.close_fd(fd); return true, nil, serr end
  return true, s
end

-- Op: the next connection -> Stream | nil, err.
function Socket:accept_op()
  if self._closed then error("socket is closed", 2) end
  return op._prim(accept_try, block, nil,
    { sock = self, dir = "r", fd = self._l:fileno(), waiters = self._waiters })
end

-- accept() -> Stream | nil, err (performs accept_op).
function Socket:accept() return perform(self:accept_op()) end

-- close() -> true | nil, err (unlinks an ephemeral path; pending accepts
-- yield nil, "socket is closed").
function Socket:close()
  if self._closed then return true end
  self._closed = true
  local fd = self._l:fileno()
  for w in pairs(self._waiters) do
    unwait(w)
    if w.s:waiting() then w.s:complete(w.t, nil, "socket is closed") end
  end
  self._waiters = {}
  if fd then sched:forget_fd(fd) end
  return self._l:close()
end
Socket.__close = Socket.close

function Socket:fileno() return self._l:fileno() end
function Socket:path() return self._path end
function Socket:__tostring()
  return "fibers.socket (" .. tostring(self._path or self._l:fileno()) .. ")"
end

local function new_socket(l, path)
  return setmetatable({ _l = l, _path = path, _closed = false, _waiters = {} }, Socket)
end

-- listen_unix(path, opts?) -> Socket | nil, err, errno.  opts.ephemeral:
-- unlink the path on close; opts.mode: chmod of the socket file (number or
-- octal string); opts.backlog; opts.unlink_stale: remove an existing
-- socket file first.
function M.listen_unix(path, opts)
  if type(path) ~= "string" then error("listen_unix: path must be a string", 2) end
  opts = opts or {}
  local mode = opts.mode
  if type(mode) == "string" then mode = tonumber(mode, 8) end
  if opts.unlink_stale then core.file.unlink(path) end
  local l, err, errno = csock.listen_unix(path, opts.backlog, opts.ephemeral, mode)
  if not l then
    if errno == 98 then err = path .. ": " .. err end
    return nil, err, errno
  end
  return new_socket(l, path)
end

-- from_fd(fd) -> Socket | nil, err: adopt an inherited listening socket
-- (systemd socket activation); made non-blocking.
function M.from_fd(fd, path)
  if type(fd) ~= "number" or fd < 0 then error("from_fd: bad file descriptor", 2) end
  local l, err, errno = csock.adopt(fd)
  if not l then return nil, err, errno end
  return new_socket(l, path)
end

------------------------------------------------------------------------------
-- Connecting

local function connect_try(o)
  local fd, ok, errno = csock.connect_unix(o.path, o.fd)
  if fd == nil then o.fd = nil; return true, nil, ok, errno end
  o.fd = fd
  if not ok then return false end
  local s, err = stream.from_fd(fd, true, true, { kind = "socket", name = o.path })
  o.fd = nil
  if not s then csock.close_fd(fd); return true, nil, err end
  return true, s
end

-- Op: connect to a listening UNIX socket -> Stream | nil, err.
function M.connect_unix_op(path)
  if type(path) ~= "string" then error("connect_unix_op: path must be a string", 2) end
  return op.guard(function()
    local o = { path = path, dir = "t" }
    return op._prim(connect_try, block, nil, o):on_abort(function()
      if o.fd then csock.close_fd(o.fd); o.fd = nil end
    end)
  end)
end

-- connect_unix(path) -> Stream | nil, err.
function M.connect_unix(path) return perform(M.connect_unix_op(path)) end

M.Socket = Socket
return M
