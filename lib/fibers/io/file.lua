-- fibers.io.file - files, pipes, temporary files and the standard streams
-- as fibers.io.stream Streams (doc/library.md §12).
--
-- Owns: turning paths and fds into Streams with the right buffering and
-- blocking mode.  The syscalls are in C (`fibers.core`.file, lfile.c).
--
-- Notes (documented behaviour):
-- * Every fd is opened O_CLOEXEC and, unless it is a regular file or a tty,
--   O_NONBLOCK.  FIFOs are opened non-blocking too: opening a FIFO for
--   writing with no reader fails with ENXIO instead of hanging.
-- * Regular files cannot be polled: their streams are always ready and do
--   blocking disk I/O (a slow disk stalls the whole scheduler for that
--   read or write).  They are fully buffered ("full"); pipes, sockets and
--   ttys are unbuffered ("no"): a write completes once the kernel has it.
-- * SIGPIPE is ignored once the first fd stream exists; writing to a pipe
--   whose reader has gone returns nil, "Broken pipe" (EPIPE) instead.
-- * stdin()/stdout()/stderr() do not switch the shared fds to non-blocking
--   (the parent shell and C stdio use the same open file description);
--   they poll before each syscall instead, so a read never blocks the
--   process, but a large write to a slow reader may.  stdout is line
--   buffered, stderr unbuffered.  Closing them flushes and detaches
--   without closing fd 0/1/2.
local stream = require 'fibers.io.stream'
local core = require 'fibers.core'

local cfile = core.file
local type, tostring, tonumber, error = type, tostring, tonumber, error

local M = {}

-- Pipes get a larger kernel buffer: with one thread doing both ends, each
-- refill of a 64 KiB pipe costs a scheduler turn, so a 1 MiB pipe roughly
-- doubles throughput (bench/pipe.lua).  The kernel caps it at
-- /proc/sys/fs/pipe-max-size; for unprivileged users it also counts
-- against fs.pipe-user-pages-soft (past it, the resize fails and is
-- ignored).  pipe{size = 0} keeps the kernel default.
M.PIPE_SIZE = 1048576

local function perms_of(perms, default, who)
  if perms == nil then return default end
  if type(perms) == "string" then
    local n = tonumber(perms, 8)
    if not n or not perms:match("^[0-7]+$") then
      error(who .. ": invalid permissions '" .. perms .. "'", 3)
    end
    return n
  end
  if type(perms) ~= "number" or perms < 0 or perms > 4095 then
    error(who .. ": invalid permissions " .. tostring(perms), 3)
  end
  return perms
end

local function check_mode(mode, who)
  if type(mode) ~= "string" or not mode:match("^[rwa]%+?b?$") then
    error(who .. ": invalid mode '" .. tostring(mode) .. "'", 3)
  end
  return cfile.mode(mode)
end

-- open(path, mode="r", perms?) -> Stream | nil, err, errno.
-- perms (number or octal string, default 0666 before umask) apply to a
-- created file.
function M.open(path, mode, perms)
  if type(path) ~= "string" then error("open: path must be a string", 2) end
  mode = mode or "r"
  local readable, writable = check_mode(mode, "open")
  local fd, err, errno = cfile.open(path, mode, perms_of(perms, 438, "open"))
  if not fd then return nil, path .. ": " .. err, errno end
  local s, serr, serrno = stream.from_fd(fd, readable, writable, { name = path })
  if not s then cfile.close_fd(fd); return nil, serr, serrno end
  return s
end

-- fdopen(fd, mode="r", filename?) -> Stream | nil, err, errno.  The stream
-- owns fd (closing the stream closes it).
function M.fdopen(fd, mode, filename)
  if type(fd) ~= "number" or fd < 0 then error("fdopen: bad file descriptor", 2) end
  mode = mode or "r"
  local readable, writable = check_mode(mode, "fdopen")
  return stream.from_fd(fd, readable, writable, { name = filename })
end

-- pipe(opts?) -> r, w Streams (both ends non-blocking, close-on-exec) |
-- nil, err.  opts.size: kernel pipe buffer in bytes (default M.PIPE_SIZE).
function M.pipe(opts)
  local size = M.PIPE_SIZE
  if opts ~= nil then
    if type(opts) ~= "table" then error("pipe: options must be a table", 2) end
    if opts.size ~= nil then
      if type(opts.size) ~= "number" or opts.size < 0 then error("pipe: bad size", 2) end
      size = opts.size
    end
  end
  local r, w, errno = cfile.pipe(size)
  if not r then return nil, w, errno end
  local rs = stream.from_fd(r, true, false, { kind = "fifo" })
  local ws = stream.from_fd(w, false, true, { kind = "fifo" })
  return rs, ws
end

local function tmpdir()
  return os.getenv("TMPDIR") or "/tmp"
end

-- tmpfile(perms=0600, dir=$TMPDIR or /tmp) -> Stream (read+write) | nil,
-- err.  The file is unlinked when the stream is closed unless it was kept
-- with f:rename(newpath).
function M.tmpfile(perms, dir)
  perms = perms_of(perms, 384, "tmpfile")
  local fd, path, errno = cfile.mkstemp((dir or tmpdir()) .. "/fibers-XXXXXX")
  if not fd then return nil, path, errno end
  cfile.fchmod(fd, perms)
  local s = stream.from_fd(fd, true, true, { name = path, kind = "file" })
  local keep = false
  s:_add_close_hook(function()
    if keep then return true end
    return cfile.unlink(path)
  end)
  -- f:rename(newpath) -> true | nil, err: move the file and keep it.
  function s.rename(self, newpath)
    if type(newpath) ~= "string" then error("rename: path must be a string", 2) end
    local ok, err, e = cfile.rename(path, newpath)
    if not ok then return nil, err, e end
    keep = true
    path = newpath
    self._name = newpath
    return true
  end
  return s
end

-- mktemp(prefix, perms=0600) -> Stream (read+write), path | nil, err.
-- The file is created as prefix .. ".XXXXXX" and is NOT removed on close.
function M.mktemp(prefix, perms)
  if type(prefix) ~= "string" then error("mktemp: prefix must be a string", 2) end
  perms = perms_of(perms, 384, "mktemp")
  local fd, path, errno = cfile.mkstemp(prefix .. ".XXXXXX")
  if not fd then return nil, path, errno end
  cfile.fchmod(fd, perms)
  return stream.from_fd(fd, true, true, { name = path, kind = "file" }), path
end

local std = {}
local function stdio(fd, readable, name)
  local s = std[fd]
  if s and not s:is_closed() then return s end
  local err
  s, err = stream.from_fd(fd, readable, not readable,
                          { name = name, own = false, blocking = true })
  if not s then error(name .. ": " .. tostring(err), 3) end
  if fd == 1 then s:setvbuf("line") elseif fd == 2 then s:setvbuf("no") end
  std[fd] = s
  return s
end

-- The standard streams (one Stream each, recreated after a close).
function M.stdin() return stdio(0, true, "stdin") end
function M.stdout() return stdio(1, false, "stdout") end
function M.stderr() return stdio(2, false, "stderr") end

return M
