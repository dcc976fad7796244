-- fibers.io.stream - buffered byte streams whose reads and writes are Ops
-- (doc/library.md §11).
--
-- Owns: the Stream object, every read/write Op, readiness waiting, and the
-- Lua-level backend contract for in-memory streams.  The buffers and the
-- syscalls live in C (`fibers.core`.stream, src/core/stream.c); this file
-- never copies payload bytes in Lua.  Files, pipes and sockets are opened
-- by fibers.io.file / fibers.io.socket, which wrap fds with `M.from_fd`.
--
-- No lost bytes (doc/library.md §0.6): a read takes bytes out of the buffer only
-- in the same step that hands them to the winning perform (in try, or in the
-- readiness task after checking `suspension:waiting()`); a read that loses
-- or is cancelled leaves everything in the buffer.  Writes are never torn:
-- a write that has put any byte into the kernel has won (see below).
--
-- Write buffering (setvbuf): "no" (default for pipes, sockets, ttys) - a
-- write goes straight to the kernel; "full" (default for regular files) -
-- small writes gather in the buffer up to bufsize, written when full, by
-- flush() or close(); "line" - as "full", and a write containing "\n"
-- writes the buffer out.  A write completes once its bytes are committed:
-- if the kernel takes only part, the rest is queued and drained in the
-- background (never torn, never reordered); later writes wait for that
-- queue (back-pressure); flush() waits until everything is out.
--
-- Backend contract (`open(backend, ...)`), all non-blocking:
--   backend:read_string(max) -> str (1..max bytes) | false (nothing now)
--                               | nil (EOF) | nil, err
--   backend:write_string(s)  -> n accepted (0..#s) | nil, err
--   backend:on_readable(task), backend:on_writable(task) -> cancel handle
--       (task:run() once when ready; the handle is a function or has
--       :cancel(); may be nil)
--   backend:close() -> ok, err;  optional backend:seek(whence, off),
--   backend:fileno().
local op = require 'fibers.op'
local runtime = require 'fibers.runtime'
local core = require 'fibers.core'
local ypcall = require('fibers.compat').pcall   -- yield-safe on Lua 5.1

local cstream, cfile = core.stream, core.file
local sched = runtime.current_scheduler
local prim = op._prim
local setmetatable, getmetatable, type, error, select, pairs, tostring =
      setmetatable, getmetatable, type, error, select, pairs, tostring
local find = string.find

local M = {}

local Stream = {}
Stream.__index = Stream
Stream.__name = "fibers.stream"
M.Stream = Stream

local DEFAULT_BUFSIZE = 65536
local BACKEND_ERRNO = -1        -- rerr marker: message lives in self._berr

local perform_fn
local function perform(o)
  if not perform_fn then
    local ok, fibers = pcall(require, 'fibers')
    perform_fn = ok and fibers.perform or op.perform_raw
  end
  return perform_fn(o)
end
-- Internal: perform(o), scope-aware once `fibers` loads (also fibers.io.socket).
M._perform = perform

------------------------------------------------------------------------------
-- Readiness

-- Register task to run once the stream is ready in direction dir.
local function wait_for(self, dir, task)
  local be = self._backend
  if be then
    if dir == "r" then return be:on_readable(task) end
    return be:on_writable(task)
  end
  if self._always_ready then
    sched:schedule(task)
    return nil
  end
  local h, err = sched:wait_fd(self._fd, dir, task)
  if h == nil then error("stream: cannot wait for readiness: " .. tostring(err)) end
  return h
end

local function cancel_wait(self, h)
  if h == nil then return end
  if self._backend then
    if type(h) == "function" then h()
    elseif type(h) == "table" and h.cancel then h:cancel() end
  elseif not self._always_ready then
    sched:cancel_fd(h)
  end
end

-- A blocked perform: re-runs the op's try when the stream becomes ready.
local Waiter = {}
Waiter.__index = Waiter

local function finish(w, ready, ...)
  if ready then
    w.st._waiters[w] = nil
    return w.s:complete(w.t, ...)
  end
  w.h = wait_for(w.st, w.dir, w)
end

function Waiter:run()
  self.h = nil
  if self.s:waiting() then
    local o = self.o
    return finish(self, o.try(o))
  end
end

local function unwait(st, w)
  st._waiters[w] = nil
  local h = w.h
  w.h = nil
  cancel_wait(st, h)
end

local function block_on(dir)
  return function(susp, token, o)
    local st = o.st
    local w = setmetatable({ s = susp, t = token, o = o, st = st, dir = dir }, Waiter)
    st._waiters[w] = true
    w.h = wait_for(st, dir, w)
    susp:add_cleanup(unwait, st, w)
  end
end
local block_read, block_write = block_on("r"), block_on("w")

------------------------------------------------------------------------------
-- Reading

-- Pull one chunk from a backend into the C buffer; false when none yet.
local function pull(self, be)
  local s, err = be:read_string(self._cs:bufsize())
  if s == false or s == "" then return false end
  if s == nil then
    if err ~= nil then
      self._berr = tostring(err)
      self._cs:feed(nil, BACKEND_ERRNO)
    else
      self._cs:feed(nil)
    end
  else
    self._cs:feed(s)
  end
  return true
end

local function shape(self, o, r1, r2, r3)
  if r1 == nil and r3 == BACKEND_ERRNO then r2 = self._berr end
  local post = o.post
  if post then return true, post(self, r1, r2) end
  return true, r1, r2
end

-- try for every read op: the C method answers or says "wait" (false).
local function read_try(o)
  local self = o.st
  if self._closed then return true, o.post_closed() end
  local cs, m = self._cs, o.m
  while true do
    local r1, r2, r3 = m(cs, o.a, o.b, o.c)
    if r1 ~= false then return shape(self, o, r1, r2, r3) end
    local be = self._backend
    if not be or not pull(self, be) then return false end
  end
end

local function closed2() return nil, "stream is closed" end
local function closed3() return nil, 0, "stream is closed" end

local function read_op(self, m, a, b, c, post, post_closed)
  if not self._readable then error("stream is not readable", 3) end
  -- All fields in the constructor: one allocation, no rehash.
  return prim(read_try, block_read, nil,
    { k = 0, try = false, block = false, wf = false,
      st = self, m = m, a = a, b = b, c = c, post = post,
      post_closed = post_closed or closed2 })
end

local C = getmetatable(cstream.new(-1, 16, false)).__index

-- Bound of a line read without `max` (bytes; the C side's STREAM_LINE_MAX).
M.LINE_MAX = 1048576

-- A `max` option: nil -> dflt, math.huge -> -1 (no bound), else an integer >= 0.
local function max_opt(max, dflt, who)
  if max == nil then return dflt end
  if max == math.huge then return -1 end
  if type(max) ~= "number" or max < 0 or max ~= math.floor(max) then
    error(who .. ": max must be a non-negative integer or math.huge", 3)
  end
  return max
end

-- Op: the next line -> line | nil, nil at EOF | nil, err.  Without `max`
-- a line is bounded by M.LINE_MAX ("line too long"); math.huge: no bound.
function Stream:read_line_op(opts)
  local term, keep, max = "\n", false, M.LINE_MAX
  if opts ~= nil then
    if type(opts) ~= "table" then error("read_line_op: options must be a table", 2) end
    term = opts.terminator or "\n"
    keep = opts.keep_terminator and true or false
    max = max_opt(opts.max, M.LINE_MAX, "read_line_op")
    if type(term) ~= "string" or term == "" then
      error("read_line_op: terminator must be a non-empty string", 2)
    end
  end
  return read_op(self, C.read_line, term, keep, max)
end

-- Op: exactly n bytes -> str | nil, "short read" | nil, err.
function Stream:read_exactly_op(n)
  if type(n) ~= "number" or n < 0 then error("read_exactly_op: bad count", 2) end
  return read_op(self, C.read_exactly, n)
end

local function all_post(self, s, err)
  if s == nil then
    if err == "too long" then return nil, err end
    return self._cs:take(), err
  end
  return s, nil
end
local function all_closed() return "", "stream is closed" end

-- Op: everything up to EOF -> str, err|nil; with opts.max, more than max
-- bytes before EOF -> nil, "too long" (the bytes stay buffered).
function Stream:read_all_op(opts)
  local max
  if opts ~= nil then
    if type(opts) ~= "table" then error("read_all_op: options must be a table", 2) end
    max = max_opt(opts.max, nil, "read_all_op")
  end
  return read_op(self, C.read_all, max, nil, nil, all_post, all_closed)
end

local function some_post(self, s, err)
  if s == nil then return nil, 0, err end
  return s, #s, nil
end

-- Op: read_string_op{min=1, max=?, terminator=?} -> str|nil, count, err.
function Stream:read_string_op(opts)
  local min, max, term = 1, nil, nil
  if opts ~= nil then
    if type(opts) ~= "table" then error("read_string_op: options must be a table", 2) end
    min, max, term = opts.min or 1, opts.max, opts.terminator
  end
  return read_op(self, C.read_some, min, max, term, some_post, closed3)
end

local function some1_post(self, s, err) return s, err end
local function empty_try() return true, "" end

-- Op: Lua io-style read with one format ("l", "L", "a", "n", or a count).
function Stream:read_op(fmt)
  if fmt == nil then fmt = "l" end
  if type(fmt) == "number" then
    if fmt < 0 then error("read_op: bad count", 2) end
    if not self._readable then error("stream is not readable", 2) end
    if fmt == 0 then return op.new_primitive(nil, empty_try, function() end) end
    return read_op(self, C.read_some, 1, fmt, nil, some1_post)
  end
  if type(fmt) ~= "string" then error("read_op: invalid format", 2) end
  local f = fmt:gsub("^%*", ""):sub(1, 1)
  if f == "l" then return read_op(self, C.read_line, "\n", false)
  elseif f == "L" then return read_op(self, C.read_line, "\n", true)
  elseif f == "a" then
    return read_op(self, C.read_all, nil, nil, nil, all_post, all_closed)
  elseif f == "n" then return read_op(self, C.read_number) end
  error("read_op: invalid format '" .. fmt .. "'", 2)
end

------------------------------------------------------------------------------
-- Writing

-- Raw write of s from byte offset off: off', complete | nil, err, off'.
local function raw_write(self, s, off)
  local be = self._backend
  if not be then
    local a, b, _, d = self._cs:write(s, off)
    if a == nil then return nil, b, d end
    return a, b
  end
  local n, err = be:write_string(off == 0 and s or s:sub(off + 1))
  if n == nil then return nil, tostring(err), off end
  off = off + n
  return off, off == #s
end

-- Write out everything pending (the C write buffer, then a big tail kept
-- as a Lua string): true (all out) | false (would block) | nil, err.
local function raw_flush(self)
  local cs = self._cs
  local _, wl = cs:info()
  if wl > 0 then
    if not self._backend then
      local ok, err = cs:flush()
      if not ok then return ok, err end
    else
      local data = cs:wtake()
      local off, done, err = raw_write(self, data, 0)
      if off == nil then cs:buffer(data, err); return nil, done end
      if not done then cs:buffer(data, off); return false end
    end
  end
  local pend = self._pend
  if pend then
    local off, done, err = raw_write(self, pend, self._poff)
    if off == nil then self._poff = err; return nil, done end
    if not done then self._poff = off; return false end
    self._pend, self._poff = nil, nil
  end
  return true
end

-- Background drain of bytes a completed write left behind (so they never
-- sit in the buffer for want of another write); errors are kept for the
-- next write, flush or close.
local Drainer = {}
Drainer.__index = Drainer

function Drainer:run()
  local st = self.st
  self.h = nil
  if st._drain ~= self or st._closed then return end
  local ok, err = raw_flush(st)
  if ok == false then self.h = wait_for(st, "w", self); return end
  st._drain = nil
  if ok == nil then st._werr = err end
end

local function arm_drain(self)
  if self._drain then return end
  local d = setmetatable({ st = self }, Drainer)
  self._drain = d
  d.h = wait_for(self, "w", d)
end

local function stop_drain(self)
  local d = self._drain
  if d then
    self._drain = nil
    local h = d.h
    d.h = nil
    cancel_wait(self, h)
  end
end

-- try of write ops.  Stateless: a write completes once its bytes are
-- committed to the stream - in the kernel, or (after the kernel took part
-- of them) the rest queued to go out first, by the background drain or
-- the next write/flush/close.  With pending bytes (or a full buffer) a
-- write waits for them to drain first: that is the back-pressure.
local function write_try(o)
  local self, s = o.st, o.s
  if self._closed then return true, nil, "stream is closed" end
  local werr = self._werr
  if werr then self._werr = nil; return true, 0, werr end
  local cs = self._cs
  local mode = self._vbuf
  local _, wl = cs:info()
  local pend = self._pend
  if mode ~= "no" and not pend and wl + #s <= cs:bufsize() then
    cs:buffer(s)
    if mode == "line" and find(s, "\n", 1, true) then
      local ok, err = raw_flush(self)
      if ok == nil then return true, #s, err end
      if ok == false then arm_drain(self) end
    end
    return true, #s, nil
  end
  if wl > 0 or pend then
    local ok, err = raw_flush(self)
    if ok == false then return false end
    if ok == nil then return true, 0, err end
  end
  local off, done, err = raw_write(self, s, 0)
  if off == nil then return true, err, done end
  if done then return true, #s, nil end
  if off == 0 then return false end
  if #s - off <= cs:bufsize() then cs:buffer(s, off)
  else self._pend, self._poff = s, off end
  arm_drain(self)
  return true, #s, nil
end

local function flush_try(o)
  local self = o.st
  if self._closed then return true, nil, "stream is closed" end
  local werr = self._werr
  if werr then self._werr = nil; return true, nil, werr end
  local ok, err = raw_flush(self)
  if ok == false then return false end
  if ok == nil then return true, nil, err end
  return true, true, nil
end

local function write_op(self, s, try)
  if not self._writable then error("stream is not writable", 3) end
  -- All fields in the constructor: one allocation, no rehash.
  return prim(try, block_write, nil,
    { k = 0, try = false, block = false, wf = false, st = self, s = s })
end

-- Op: write s -> bytes_written, err|nil.
function Stream:write_string_op(s)
  if type(s) ~= "string" then
    if type(s) ~= "number" then error("write_string_op: expected a string", 2) end
    s = tostring(s)
  end
  return write_op(self, s, write_try)
end

-- The bytes of write(...)/write_op(...): strings as they are, any other
-- value as tostring(v) (numbers, booleans, values with __tostring); nil is
-- an error raised at the caller of `name`.
local function write_args(name, ...)
  local n = select("#", ...)
  if n == 1 then
    local s = ...
    if type(s) == "string" then return s end
    if s == nil then error(name .. ": argument 1 is nil", 3) end
    return tostring(s)
  end
  local parts = { ... }
  for i = 1, n do
    local v = parts[i]
    if type(v) ~= "string" then
      if v == nil then error(name .. ": argument " .. i .. " is nil", 3) end
      parts[i] = tostring(v)
    end
  end
  return table.concat(parts)
end

-- Op: write each argument (see write_args) -> bytes_written, err|nil.
function Stream:write_op(...)
  return write_op(self, write_args("write_op", ...), write_try)
end

-- Op: write out everything pending -> true | nil, err.
function Stream:flush_output_op()
  return write_op(self, "", flush_try)
end

------------------------------------------------------------------------------
-- Sync forms (perform in the current fiber, scope-aware)

function Stream:read_line(opts) return perform(self:read_line_op(opts)) end
function Stream:read_all() return perform(self:read_all_op()) end
function Stream:read_exactly(n) return perform(self:read_exactly_op(n)) end
function Stream:read_string(opts) return perform(self:read_string_op(opts)) end
function Stream:write_string(s) return perform(self:write_string_op(s)) end
function Stream:write(...)
  return perform(write_op(self, write_args("write", ...), write_try))
end
function Stream:flush() return perform(self:flush_output_op()) end

-- read(...) like Lua's file:read: one result per format, nil stops.
function Stream:read(...)
  local n = select("#", ...)
  if n <= 1 then return perform(self:read_op((...))) end
  local out = {}
  for i = 1, n do
    local v = perform(self:read_op((select(i, ...))))
    out[i] = v
    if v == nil then n = i; break end
  end
  return (table.unpack or unpack)(out, 1, n)
end

------------------------------------------------------------------------------
-- Housekeeping

-- Close: flush (waiting if in a fiber), wake blocked performs with
-- "stream is closed", release the fd -> true | nil, err.  Close is
-- cleanup: its flush is performed raw, without the scope check, so a
-- stream closed in a finaliser or after a cancellation was caught still
-- writes out its buffer (as the exit wait of a Command does).
-- Write out what is buffered without the scope check (cleanup): waits in
-- a fiber (raw perform), else makes one non-blocking attempt.
-- -> err|nil, raised|nil (a table holding what the perform raised),
--    left (true when bytes are still buffered).
local function flush_raw(self)
  if not self._writable then return nil end
  local _, wl = self._cs:info()
  if wl == 0 and not self._pend then return nil end
  if runtime.current_fiber() then
    -- pcall: a caller such as close must go on even if the flush raises.
    local ok, r, e = ypcall(op.perform_raw, self:flush_output_op())
    if not ok then return nil, { r } end
    if r == nil then return e end
    return nil
  end
  local ok, e = raw_flush(self)
  if ok == nil then return e end
  if ok == false then return nil, nil, true end
  return nil
end

-- Internal (fibers.exec): flush before the fd is handed to a child, so
-- what was written before the spawn comes first -> true | nil, err.
function Stream:_flush_raw()
  if self._closed then return true end
  local err, raise = flush_raw(self)
  if raise then error(raise[1], 0) end
  if err ~= nil then return nil, err end
  return true
end

function Stream:close()
  if self._closed then return true end
  local err, raise, left = flush_raw(self)
  if left then err = "unflushed data dropped" end
  stop_drain(self)
  if err == nil and self._werr then err = self._werr end
  self._closed, self._readable, self._writable = true, false, false
  self._pend = nil
  for w in pairs(self._waiters) do
    unwait(self, w)
    if w.s:waiting() then finish(w, w.o.try(w.o)) end
  end
  local ok, e
  if self._backend then
    if self._backend.close then ok, e = self._backend:close() else ok = true end
    self._cs:close()
  else
    if self._fd and not self._always_ready then sched:forget_fd(self._fd) end
    ok, e = self._cs:close()
  end
  if not ok and err == nil then err = e end
  local hooks = self._on_close
  if hooks then
    self._on_close = nil
    for i = 1, #hooks do
      local hok, herr = hooks[i](self)
      if hok == nil and herr and err == nil then err = herr end
    end
  end
  if raise then error(raise[1], 0) end
  if err ~= nil then return nil, err end
  return true
end
Stream.__close = Stream.close

-- Collected without close: write out what is buffered (best effort, never
-- blocks), like Lua's io library does; the C object then closes the fd.
function Stream:__gc()
  if not self._closed and self._writable then pcall(raw_flush, self) end
end

-- seek(whence="cur", off=0) -> position | nil, err (flushes writes first).
function Stream:seek(whence, off)
  if self._closed then error("stream is closed", 2) end
  whence, off = whence or "cur", off or 0
  if whence ~= "set" and whence ~= "cur" and whence ~= "end" then
    error("seek: invalid whence '" .. tostring(whence) .. "'", 2)
  end
  local be = self._backend
  if self._writable then
    local ok, err = raw_flush(self)
    if ok == nil then return nil, err end
    if ok == false then return nil, "seek: write buffer could not be flushed" end
  end
  if be then
    if not be.seek then return nil, "stream is not seekable" end
    local rl = self._cs:info()
    if whence == "cur" then off = off - rl end
    local pos, err = be:seek(whence, off)
    if pos ~= nil then self._cs:take() end
    return pos, err
  end
  local pos, err = self._cs:seek(whence, off)
  return pos, err
end

-- setvbuf("no"|"line"|"full", size?) -> true.
function Stream:setvbuf(mode, size)
  if mode ~= "no" and mode ~= "line" and mode ~= "full" then
    error("setvbuf: invalid mode '" .. tostring(mode) .. "'", 2)
  end
  self._vbuf = mode
  if size ~= nil then self._cs:bufsize(size) end
  return true
end

function Stream:filename() return self._name end

-- fileno() -> fd | nil (closed, or a backend without fileno).
function Stream:fileno()
  if self._closed then return nil end
  local be = self._backend
  if be then
    if be.fileno then return be:fileno() end
    return nil
  end
  return self._fd
end

function Stream:is_closed() return self._closed end

-- nonblock(), block() -> the stream.  No-ops, kept for code written for
-- the older fibers library: every fd stream here is already non-blocking
-- (regular files are always ready), and block() leaves it so, because a
-- blocking read or write would stall every fiber of the loop.
function Stream:nonblock() return self end
function Stream:block() return self end

-- peer_cred() -> pid, uid, gid | nil, err, errno (UNIX socket streams).
function Stream:peer_cred()
  local fd = self:fileno()
  if not fd then return nil, "stream has no file descriptor" end
  return core.socket.peer_cred(fd)
end

-- setsockopt(name, value) -> true | nil, err, errno (socket streams):
-- "nodelay", "keepalive" (true, false, or idle seconds), "reuseaddr",
-- "reuseport", "broadcast".  getsockopt(name) -> boolean | nil, err, errno.
function Stream:setsockopt(name, value)
  local fd = self:fileno()
  if not fd then return nil, "stream has no file descriptor" end
  return core.socket.setsockopt(fd, name, value)
end

function Stream:getsockopt(name)
  local fd = self:fileno()
  if not fd then return nil, "stream has no file descriptor" end
  return core.socket.getsockopt(fd, name)
end

-- sockname() / peername() -> host, port | nil, err, errno (TCP streams).
function Stream:sockname()
  local fd = self:fileno()
  if not fd then return nil, "stream has no file descriptor" end
  return core.socket.sockname(fd)
end

function Stream:peername()
  local fd = self:fileno()
  if not fd then return nil, "stream has no file descriptor" end
  return core.socket.peername(fd)
end

-- Buffered byte counts (read side, write side), for diagnostics and tests.
function Stream:buffered()
  local r, w = self._cs:info()
  return r, w
end

-- Register f(stream) to run after close (used by tmpfile).
function Stream:_add_close_hook(f)
  local h = self._on_close
  if not h then h = {}; self._on_close = h end
  h[#h + 1] = f
end

function Stream:__tostring()
  return "fibers.stream (" .. tostring(self._name or self._fd or "backend") ..
         (self._closed and ", closed)" or ")")
end

------------------------------------------------------------------------------
-- Constructors

local function new(cs, fd, backend, readable, writable, opts)
  opts = opts or {}
  local kind = opts.kind
  return setmetatable({
    _cs = cs, _fd = fd, _backend = backend,
    _readable = readable and true or false,
    _writable = writable and true or false,
    _closed = false, _waiters = {}, _name = opts.name,
    _always_ready = kind == "file" or kind == "dir",
    _vbuf = opts.vbuf or ((kind == "file") and "full" or "no"),
    _kind = kind,
  }, Stream)
end

-- Stream over a Lua backend (see the header).
function M.open(backend, readable, writable, bufsize)
  if type(backend) ~= "table" and type(backend) ~= "userdata" then
    error("stream.open: backend must be a table", 2)
  end
  if readable == nil then readable = true end
  if writable == nil then writable = true end
  if readable and not (backend.read_string and backend.on_readable) then
    error("stream.open: a readable backend needs read_string and on_readable", 2)
  end
  if writable and not (backend.write_string and backend.on_writable) then
    error("stream.open: a writable backend needs write_string and on_writable", 2)
  end
  local cs = cstream.new(-1, bufsize or DEFAULT_BUFSIZE, false)
  return new(cs, nil, backend, readable, writable, { vbuf = "no" })
end

local sigpipe_ignored = false

-- Stream over an open fd (used by fibers.io.file/socket and fibers.exec).
-- opts: name, kind (core.file.fdkind; probed if nil), bufsize, own (close
-- the fd with the stream, default true), vbuf, blocking (leave the fd in
-- blocking mode and poll before each syscall - for fds shared with other
-- processes, like stdio; ttys always are).
function M.from_fd(fd, readable, writable, opts)
  opts = opts or {}
  if type(fd) ~= "number" or fd < 0 then error("stream.from_fd: bad file descriptor", 2) end
  if not sigpipe_ignored then
    cfile.ignore_sigpipe(true)
    sigpipe_ignored = true
  end
  local kind = opts.kind
  if kind == nil then
    local k, err, errno = cfile.fdkind(fd)
    if not k then return nil, err, errno end
    kind = k
    opts.kind = k
  end
  local pollfirst = false
  if kind ~= "file" and kind ~= "dir" then
    if opts.blocking or kind == "tty" then
      pollfirst = true
    else
      local ok, err, errno = cfile.set_nonblock(fd, true)
      if ok == nil then return nil, err, errno end
    end
  end
  local own = opts.own
  if own == nil then own = true end
  local cs = cstream.new(fd, opts.bufsize or DEFAULT_BUFSIZE, own, pollfirst)
  return new(cs, fd, nil, readable, writable, opts)
end

-- True when x is a Stream.
function M.is_stream(x) return getmetatable(x) == Stream end

local function sorted_names(t)
  local names = {}
  for k in pairs(t) do names[#names + 1] = k end
  table.sort(names, function(a, b) return tostring(a) < tostring(b) end)
  return names
end

-- Op over several streams: the first line from any -> name, line, err
-- (line nil + err nil at that stream's EOF).  named_streams: {name = stream}.
function M.merge_lines_op(named_streams, opts)
  if type(named_streams) ~= "table" then error("merge_lines_op: expected a table", 2) end
  local arms = {}
  for _, name in ipairs(sorted_names(named_streams)) do
    local s = named_streams[name]
    if not M.is_stream(s) then error("merge_lines_op: '" .. tostring(name) .. "' is not a stream", 2) end
    arms[#arms + 1] = s:read_line_op(opts):wrap(function(line, err) return name, line, err end)
  end
  return op.choice((table.unpack or unpack)(arms))
end

return M
