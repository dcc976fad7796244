-- fibers.io.socket - sockets (doc/library.md §13): UNIX stream sockets, TCP
-- and UDP over IPv4 and IPv6, and name resolution that never blocks the
-- loop.  Accepting, connecting, resolving, sending and receiving are Ops.
--
-- Owns: the Socket (listener) and Datagram objects, the accept/connect/
-- resolve/sendto/recvfrom Ops, and the dispatch of resolver completions.
-- Syscalls are in C (`fibers.core`.socket, lsocket.c; getaddrinfo runs in
-- the helper threads of src/core/resolver.c, which wake the loop through
-- an eventfd); connected sockets are fibers.io.stream Streams (unbuffered
-- writes, `stream:peer_cred()`, `stream:setsockopt()`).
--
-- Notes: every socket is non-blocking and close-on-exec.  A socket path
-- must fit sun_path (107 bytes): longer paths fail with a message that says
-- so.  accept on EMFILE/ENFILE yields nil, err (the caller decides; the Op
-- does not spin).  A connect to a UNIX listener whose backlog is full
-- retries every 5 ms until it succeeds or the Op loses.  A TCP connect
-- has no timeout of its own (the kernel gives up after its SYN retries):
-- race it against `sleep_op`; the losing connect closes its socket.
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

local resolver_wait, resolver_unwait   -- defined with the resolver below

local function arm(w)
  if w.dir == "t" then
    w.h = sched:schedule_at_time(runtime.monotime() + CONNECT_RETRY, w)
  elseif w.dir == "q" then
    w.h = resolver_wait(w.o.req, w)
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
  if w.dir == "t" then sched:cancel_timer(h)
  elseif w.dir == "q" then resolver_unwait(h)
  else sched:cancel_fd(h) end
end

local function block(susp, token, o)
  local w = setmetatable({ s = susp, t = token, o = o, dir = o.dir, fd = o.fd }, Waiter)
  arm(w)
  susp:add_cleanup(unwait, w)
  if o.waiters then o.waiters[w] = true; susp:add_cleanup(function() o.waiters[w] = nil end) end
end

------------------------------------------------------------------------------
-- Listening sockets

local function tcp_stream(fd, name)
  local s, err = stream.from_fd(fd, true, true, { kind = "socket", name = name })
  if not s then csock.close_fd(fd); return nil, err end
  return s
end

-- "host:port", IPv6 addresses in brackets.
local function hostport(host, port)
  if host:find(":", 1, true) then return "[" .. host .. "]:" .. port end
  return host .. ":" .. port
end

local function accept_try(o)
  local self = o.sock
  if self._closed then return true, nil, "socket is closed" end
  local fd, err, errno = self._l:accept()
  if fd == false then return false end
  if fd == nil then return true, nil, err, errno end
  local sopts = self._sopts
  if sopts then   -- TCP: the listener's stream options, named by the peer
    for k, v in pairs(sopts) do csock.setsockopt(fd, k, v) end
    local h, p = csock.peername(fd)
    return true, tcp_stream(fd, h and hostport(h, p) or nil)
  end
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
-- addr() -> host, port of a TCP listener (the port chosen for port 0).
function Socket:addr() return self._l:addr() end
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

------------------------------------------------------------------------------
-- Name resolution: getaddrinfo in helper threads.  One pool per Lua state,
-- created on first use; its eventfd is waited on only while some perform
-- waits for an answer, and each answer wakes the waiter registered under
-- the request's id.

local pool                 -- core resolver userdata
local rwaits = {}          -- request id -> Waiter
local nrwait = 0
local nlive = 0            -- requests submitted and not yet released
local rhandle              -- the fd wait on the pool's eventfd

local drain_task = {}
function drain_task.run()
  rhandle = nil
  local ids = pool:drain()
  for i = 1, #ids do
    local w = rwaits[ids[i]]
    if w then
      rwaits[ids[i]] = nil
      nrwait = nrwait - 1
      w:run()
    end
  end
  if nrwait > 0 and not rhandle then rhandle = sched:wait_fd(pool:fd(), "r", drain_task) end
end

function resolver_wait(req, w)
  local id = req:id()
  rwaits[id] = w
  nrwait = nrwait + 1
  if not rhandle then rhandle = sched:wait_fd(pool:fd(), "r", drain_task) end
  return id
end

function resolver_unwait(id)
  if rwaits[id] == nil then return end
  rwaits[id] = nil
  nrwait = nrwait - 1
  if nrwait == 0 and rhandle then
    sched:cancel_fd(rhandle)
    rhandle = nil
  end
end

local function release_req(o)
  local req = o.req
  if req then
    o.req = nil
    nlive = nlive - 1
    req:release()
  end
end

-- One step of a lookup held in o (o.host, o.family): submits it on the
-- first call.  -> false (pending; o.dir = "q") | true, addrs | true, nil,
-- err, code.
local function lookup_step(o)
  local req = o.req
  if not req then
    local err, code
    if not pool then
      pool, err, code = csock.resolver()
      if not pool then return true, nil, "resolve " .. o.host .. ": " .. err, code end
    end
    req, err, code = pool:submit(o.host, o.family)
    if not req then return true, nil, "resolve " .. o.host .. ": " .. err, code end
    o.req = req
    nlive = nlive + 1
  end
  local addrs, err, code = req:result()
  if addrs == false then o.dir = "q"; return false end
  release_req(o)
  if addrs and addrs[1] == nil then
    return true, nil, "resolve " .. o.host .. ": no IPv4 or IPv6 address", -2
  end
  return true, addrs, err, code
end

local FAMILIES = { inet = true, inet6 = true }

local function check_family(opts, who)
  if opts == nil then return nil end
  if type(opts) ~= "table" then error(who .. ": opts must be a table", 3) end
  local f = opts.family
  if f ~= nil and not FAMILIES[f] then
    error(who .. ": family must be 'inet' or 'inet6', got " .. tostring(f), 3)
  end
  return f
end

local function resolve_try(o)
  if o.literal then return true, { o.host } end
  return lookup_step(o)
end

-- Op: resolve host -> { addr, ... } (numeric IPv4/IPv6 strings, in the
-- resolver's order, without duplicates) | nil, err, code (code: errno, or
-- the negative EAI_* code of getaddrinfo).  opts.family: "inet" | "inet6".
-- A numeric address resolves to itself at once.  If the Op loses, its
-- lookup is dropped (a queued one never runs; a running one's answer is
-- discarded).
function M.resolve_op(host, opts)
  if type(host) ~= "string" or host == "" then error("resolve_op: host must be a non-empty string", 2) end
  local family = check_family(opts, "resolve_op")
  return op.guard(function()
    local o = { host = host, family = family, literal = csock.inet_family(host) ~= nil }
    return op._prim(resolve_try, block, nil, o):on_abort(function() release_req(o) end)
  end)
end

-- resolve(host, opts?) -> { addr, ... } | nil, err, code.
function M.resolve(host, opts) return perform(M.resolve_op(host, opts)) end

-- Internal, for tests: performs waiting on the resolver, live requests,
-- helper threads.
function M._resolver_state()
  return { waiting = nrwait, live = nlive, threads = pool and pool:threads() or 0 }
end

------------------------------------------------------------------------------
-- TCP

local function check_port(port, who)
  if type(port) ~= "number" or port ~= math.floor(port) or port < 0 or port > 65535 then
    error(who .. ": port must be an integer 0..65535, got " .. tostring(port), 3)
  end
end

-- Stream options every TCP stream gets: TCP_NODELAY on unless opts.nodelay
-- is false (the streams write without buffering: Nagle would delay small
-- replies), SO_KEEPALIVE when opts.keepalive (true, or idle seconds).
local function stream_opts(opts)
  local t = { nodelay = true }
  if opts then
    if opts.nodelay ~= nil then t.nodelay = opts.nodelay and true or false end
    if opts.keepalive ~= nil then t.keepalive = opts.keepalive end
  end
  return t
end

local function check_stream_opts(opts, who)
  if opts == nil then return end
  if type(opts) ~= "table" then error(who .. ": opts must be a table", 3) end
  local ka = opts.keepalive
  if ka ~= nil and type(ka) ~= "boolean" and
     not (type(ka) == "number" and ka == math.floor(ka) and ka >= 1 and ka <= 32767) then
    error(who .. ": keepalive must be a boolean or idle seconds 1..32767", 3)
  end
end

local function close_connecting(o)
  local fd = o.fd
  if fd then
    o.fd = nil
    sched:forget_fd(fd)
    csock.close_fd(fd)
  end
end

-- connect state machine: resolve (unless a literal), then try each address
-- in turn until one connects.  -> false (o.dir/o.fd say what to wait for)
-- | true, Stream | true, nil, err, errno (the last address's error).
local function tcp_connect_try(o)
  if not o.addrs then
    if o.literal then
      o.addrs = { o.host }
    else
      local ready, addrs, err, code = lookup_step(o)
      if not ready then return false end
      if not addrs then return true, nil, err, code end
      o.addrs = addrs
    end
    o.i = 0
  end
  while true do
    local fd = o.fd
    if fd then
      local ok, err, errno = csock.connect_result(fd)
      if ok == false then o.dir = "w"; return false end
      if ok then
        o.fd = nil
        return true, tcp_stream(fd, hostport(o.addrs[o.i], o.port))
      end
      close_connecting(o)
      o.err, o.errno = "connect " .. hostport(o.addrs[o.i], o.port) .. ": " .. err, errno
    end
    o.i = o.i + 1
    local addr = o.addrs[o.i]
    if not addr then return true, nil, o.err, o.errno end
    local nfd, ok, errno = csock.tcp_connect(addr, o.port, o.sopts)
    if nfd then
      o.fd = nfd
      if ok then
        o.fd = nil
        return true, tcp_stream(nfd, hostport(addr, o.port))
      end
      o.dir = "w"
      -- loop: connect_result tells in-progress from failed at once
    else
      o.err, o.errno = "connect " .. hostport(addr, o.port) .. ": " .. ok, errno
    end
  end
end

-- Op: connect over TCP -> Stream | nil, err, errno.  host: a name
-- (resolved with resolve_op; each address tried in order) or a numeric
-- IPv4/IPv6 address.  opts: nodelay (default true), keepalive (true or
-- idle seconds), family ("inet" | "inet6", for names).
function M.tcp_connect_op(host, port, opts)
  if type(host) ~= "string" or host == "" then error("tcp_connect_op: host must be a non-empty string", 2) end
  check_port(port, "tcp_connect_op")
  local family = check_family(opts, "tcp_connect_op")
  check_stream_opts(opts, "tcp_connect_op")
  local sopts = stream_opts(opts)
  return op.guard(function()
    local o = { host = host, port = port, family = family, sopts = sopts,
                literal = csock.inet_family(host) ~= nil }
    return op._prim(tcp_connect_try, block, nil, o):on_abort(function()
      release_req(o)
      close_connecting(o)
    end)
  end)
end

-- tcp_connect(host, port, opts?) -> Stream | nil, err, errno.
function M.tcp_connect(host, port, opts) return perform(M.tcp_connect_op(host, port, opts)) end

-- The first address of host: itself if numeric, else resolved (blocks the
-- calling fiber, never the loop).  nil host = the wildcard: "::" taking
-- IPv4 too, or "0.0.0.0" where IPv6 is unavailable.
local function bind_addr(host, opts, who)
  if host == nil or host == "*" then return nil end
  if type(host) ~= "string" or host == "" then error(who .. ": host must be a non-empty string or nil", 3) end
  if csock.inet_family(host) then return host end
  local addrs, err, code = M.resolve(host, opts and { family = opts.family })
  if not addrs then return nil, err, code end
  return addrs[1]
end

local function bind_wild(fn, port, copts, ...)
  local r, err, errno = fn("::", port, ...)
  if r == nil and (errno == 97 or errno == 99) then    -- EAFNOSUPPORT, EADDRNOTAVAIL
    copts.v6only = nil
    r, err, errno = fn("0.0.0.0", port, ...)
  end
  return r, err, errno
end

local function sock_copts(opts, who)
  local c = {}
  if opts then
    for _, k in ipairs({ "reuseaddr", "reuseport", "v6only" }) do
      if opts[k] ~= nil then
        if type(opts[k]) ~= "boolean" then error(who .. ": " .. k .. " must be a boolean", 3) end
        c[k] = opts[k]
      end
    end
  end
  return c
end

-- tcp_listen(host, port, opts?) -> Socket | nil, err, errno.  host: a
-- numeric address, a name (its first address), or nil/"*" for every
-- address (IPv6 and IPv4).  port 0 picks a free port (see Socket:addr()).
-- opts: backlog (default SOMAXCONN), reuseaddr (default true), reuseport,
-- v6only, family (for names); accepted streams get nodelay/keepalive as
-- for tcp_connect_op.
function M.tcp_listen(host, port, opts)
  check_port(port, "tcp_listen")
  if opts ~= nil and type(opts) ~= "table" then error("tcp_listen: opts must be a table", 2) end
  check_family(opts, "tcp_listen")
  check_stream_opts(opts, "tcp_listen")
  local backlog = opts and opts.backlog
  if backlog ~= nil and (type(backlog) ~= "number" or backlog ~= math.floor(backlog) or backlog < 0) then
    error("tcp_listen: backlog must be a non-negative integer", 2)
  end
  local copts = sock_copts(opts, "tcp_listen")
  if copts.reuseaddr == nil then copts.reuseaddr = true end
  local addr, err, code = bind_addr(host, opts, "tcp_listen")
  local l, errno
  if addr then
    l, err, errno = csock.tcp_listen(addr, port, backlog, copts)
  elseif err then
    return nil, err, code
  else
    addr = "*"
    l, err, errno = bind_wild(csock.tcp_listen, port, copts, backlog, copts)
  end
  if not l then return nil, "listen " .. hostport(addr, port) .. ": " .. err, errno end
  local s = new_socket(l, nil)
  s._sopts = stream_opts(opts)
  return s
end

------------------------------------------------------------------------------
-- UDP

local Datagram = {}
Datagram.__index = Datagram
Datagram.__name = "fibers.datagram"

local function sendto_try(o)
  local self = o.sock
  if self._closed then return true, nil, "socket is closed" end
  local n, err, errno = csock.sendto(o.fd, o.data, o.host, o.port)
  if n == false then return false end
  if n == nil then return true, nil, "sendto " .. hostport(o.host, o.port) .. ": " .. err, errno end
  return true, n
end

-- Op: send one datagram -> bytes sent | nil, err, errno.  host: a numeric
-- address (resolve names first with resolve_op).
function Datagram:sendto_op(data, host, port)
  if self._closed then error("socket is closed", 2) end
  if type(data) ~= "string" then error("sendto_op: data must be a string", 2) end
  if type(host) ~= "string" or not csock.inet_family(host) then
    error("sendto_op: host must be a numeric IPv4 or IPv6 address (resolve names with resolve_op)", 2)
  end
  check_port(port, "sendto_op")
  local fd = self._l:fileno()
  return op._prim(sendto_try, block, nil,
    { sock = self, fd = fd, dir = "w", data = data, host = host, port = port, waiters = self._waiters })
end

local function recvfrom_try(o)
  local self = o.sock
  if self._closed then return true, nil, "socket is closed" end
  local data, host, port = csock.recvfrom(o.fd, o.max)
  if data == false then return false end
  if data == nil then return true, nil, host, port end
  return true, data, host, port
end

-- Op: receive one datagram -> data, host, port | nil, err, errno.  A
-- datagram longer than max (default and limit 65536) is truncated.
function Datagram:recvfrom_op(max)
  if self._closed then error("socket is closed", 2) end
  if max ~= nil and (type(max) ~= "number" or max < 1) then error("recvfrom_op: max must be a positive number", 2) end
  local fd = self._l:fileno()
  return op._prim(recvfrom_try, block, nil,
    { sock = self, fd = fd, dir = "r", max = max, waiters = self._waiters })
end

function Datagram:sendto(data, host, port) return perform(self:sendto_op(data, host, port)) end
function Datagram:recvfrom(max) return perform(self:recvfrom_op(max)) end
Datagram.close = Socket.close
Datagram.__close = Socket.close
Datagram.fileno = Socket.fileno
Datagram.addr = Socket.addr

-- setsockopt(name, value) -> true | nil, err, errno (see Stream:setsockopt).
function Datagram:setsockopt(name, value)
  if self._closed then return nil, "socket is closed" end
  return csock.setsockopt(self._l:fileno(), name, value)
end

function Datagram:__tostring()
  local h, p = self._l:addr()
  return "fibers.datagram (" .. (h and hostport(h, p) or "closed") .. ")"
end

-- udp_bind(host, port, opts?) -> Datagram | nil, err, errno.  host as for
-- tcp_listen (nil: every address; a socket to send from: port 0).  opts:
-- reuseaddr, reuseport, v6only, broadcast, family (for names).
function M.udp_bind(host, port, opts)
  check_port(port, "udp_bind")
  if opts ~= nil and type(opts) ~= "table" then error("udp_bind: opts must be a table", 2) end
  check_family(opts, "udp_bind")
  local copts = sock_copts(opts, "udp_bind")
  if opts and opts.broadcast ~= nil then copts.broadcast = opts.broadcast and true or false end
  local addr, err, code = bind_addr(host, opts, "udp_bind")
  local l, errno
  if addr then
    l, err, errno = csock.udp_bind(addr, port, copts)
  elseif err then
    return nil, err, code
  else
    addr = "*"
    l, err, errno = bind_wild(csock.udp_bind, port, copts, copts)
  end
  if not l then return nil, "bind " .. hostport(addr, port) .. ": " .. err, errno end
  return setmetatable({ _l = l, _closed = false, _waiters = {} }, Datagram)
end

M.Socket = Socket
M.Datagram = Datagram
return M

