-- tests/lua/file.lua - fibers.io.file (doc/library.md §12): open modes and
-- perms, seek, fdopen, pipes (EPIPE as a value), FIFOs opened
-- non-blocking, tmpfile (+ rename), mktemp, stdin/stdout of a child.
local t = require 'tap'
local fx = require 'fixture'
local fibers = require 'fibers'
local sleep = require 'fibers.sleep'
local file = require 'fibers.io.file'
local cfile = require('fibers.core').file

local dir = os.getenv("TMPDIR") or "/tmp"
local base = ("%s/fibers-file-test-%d"):format(dir, math.random(1, 1e9))
assert(os.execute("mkdir -p " .. base))

local function exists(p)
  local f = io.open(p, "r")
  if f then f:close() return true end
  return false
end
local sh = fx.sh

local function main()
  local path = base .. "/a.txt"

  -- modes
  local w = assert(file.open(path, "w", "0640"))
  t.is(w:filename(), path, "filename")
  t.ok(type(w:fileno()) == "number", "fileno")
  t.is(w:write("hello ", "world\n"), 12, "write to a regular file")
  t.raises(function() w:read_line() end, "stream is not readable", "read on a 'w' stream raises")
  t.is(w:close(), true, "close flushes")
  t.is(sh("stat -c %a " .. path), "640", "perms applied (octal string)")
  t.is(sh("cat " .. path), "hello world", "content on disk")

  local r = assert(file.open(path))
  t.is(r:read_line(), "hello world", "default mode is r")
  t.is_deeply(t.pack(r:read_line()), { n = 2 }, "EOF")
  t.raises(function() r:write("x") end, "stream is not writable", "write on an 'r' stream raises")
  r:close()

  local a = assert(file.open(path, "a"))
  a:write("more\n")
  a:close()
  t.is(sh("cat " .. path), "hello world\nmore", "append mode")

  local rw = assert(file.open(path, "r+b"))
  t.is(rw:read(5), "hello", "r+ reads")
  t.is(rw:seek("cur"), 5, "seek cur accounts for buffered bytes")
  t.is(rw:seek("set", 6), 6, "seek set")
  rw:write("WORLD")
  t.is(rw:seek("set", 0), 0, "seek flushes pending writes")
  t.is(rw:read_line(), "hello WORLD", "r+ wrote in place")
  t.is(rw:seek("end"), 17, "seek end")
  rw:close()

  local wp = assert(file.open(path, "w+"))
  wp:write("truncated")
  wp:seek("set")
  t.is(wp:read_all(), "truncated", "w+ truncates, reads back")
  wp:close()
  local ap = assert(file.open(path, "a+"))
  ap:write("!")
  ap:seek("set")
  t.is(ap:read_all(), "truncated!", "a+ appends and reads")
  ap:close()

  t.raises(function() file.open(path, "rw") end, "invalid mode", "bad mode raises")
  t.raises(function() file.open(path, "w", "999") end, "invalid permissions", "bad perms raise")
  local s, err, errno = file.open(base .. "/missing/x")
  t.is(s, nil, "missing file: nil")
  t.like(err, "missing/x: No such file", "error names the path")
  t.is(errno, 2, "errno ENOENT")

  -- fdopen, pipe, EPIPE
  do
    local rfd, wfd = cfile.pipe()
    local pr = file.fdopen(rfd, "r", "my pipe")
    local pw = file.fdopen(wfd, "w")
    t.is(pr:filename(), "my pipe", "fdopen filename")
    t.is(pr:fileno(), rfd, "fdopen keeps the fd")
    pw:write("via fdopen\n")
    t.is(pr:read_line(), "via fdopen", "fdopen streams work")
    pr:close()
    local n, e = pw:write("x")
    t.is(n, 0, "write to a pipe without reader: 0 bytes written ...")
    t.like(e, "Broken pipe", "... and EPIPE as the error value (SIGPIPE ignored)")
    pw:close()
    t.raises(function() file.fdopen(-1) end, "bad file descriptor", "fdopen(-1) raises")
  end
  do
    local pr, pw = file.pipe()
    t.ok(file.pipe ~= nil and pr and pw, "pipe()")
    fibers.spawn(function() sleep.sleep(0.01); pw:write("late\n") end)
    t.is(pr:read_line(), "late", "read waits for a pipe writer")
    pw:close()
    t.is(pr:read_line(), nil, "EOF after the writer closes")
    pr:close()
    local kr, kw = file.pipe{ size = 0 }
    kw:write("default size\n")
    t.is(kr:read_line(), "default size", "pipe{size = 0}")
    kr:close(); kw:close()
    t.raises(function() file.pipe(5) end, "options must be a table", "pipe(5) raises")
    t.raises(function() file.pipe{ size = -1 } end, "bad size", "negative size raises")
  end

  -- Close is cleanup: it flushes in a cancelled or failed scope, without
  -- raising the scope's state (buffered data must not be lost).
  do
    local p1, p2, p3 = base .. "/fin1.txt", base .. "/fin2.txt", base .. "/fin3.txt"
    local closed
    local st, err, rep = fibers.run_scope(function(sc)
      local f = assert(file.open(p1, "w"))
      t.is(f:nonblock(), f, "nonblock() on a regular file: no-op, returns the stream")
      t.is(f:block(), f, "block() on a regular file: no-op, returns the stream")
      sc:finally(function() closed = t.pack(pcall(f.close, f)) end)
      f:write_string("important\n")
      sc:cancel("stop")
    end)
    t.is(st, "cancelled", "cancelled scope: status")
    t.is(err, "stop", "cancelled scope: reason")
    t.is_deeply(closed, { n = 2, true, true }, "close in a finaliser of a cancelled scope returns true")
    t.is_deeply(rep.extra_errors, {}, "no secondary error from the finaliser's close")
    t.is(sh("cat " .. p1), "important", "the buffered data reached the file")

    -- Unwrapped finaliser, closed after catching the cancellation, and a failed scope.
    local late
    st, err, rep = fibers.run_scope(function(sc)
      local f = assert(file.open(p2, "w"))
      sc:finally(function() f:close() end)
      f:write_string("unwrapped\n")
      local g = assert(file.open(p3, "w"))
      g:write("caught ", 1, "\n")
      sc:cancel("stop")
      local ok = pcall(sleep.sleep, 10)
      late = t.pack(ok, g:close())
    end)
    t.is(st, "cancelled", "unwrapped finaliser: status")
    t.is_deeply(rep.extra_errors, {}, "unwrapped finaliser: no 'finaliser raised cancellation'")
    t.is(sh("cat " .. p2), "unwrapped", "unwrapped finaliser: data kept")
    t.is_deeply(late, { n = 2, false, true }, "close after catching the cancellation returns true")
    t.is(sh("cat " .. p3), "caught 1", "close after catching the cancellation: data kept")

    st, err, rep = fibers.run_scope(function(sc)
      local f = assert(file.open(p1, "w"))
      sc:finally(function() closed = t.pack(f:close()) end)
      f:write_string("failed\n")
      error("boom", 0)
    end)
    t.is(st, "failed", "failed scope: status")
    t.is_deeply(closed, { n = 1, true }, "close in a finaliser of a failed scope returns true")
    t.is(sh("cat " .. p1), "failed", "failed scope: data kept")
  end

  -- FIFOs open non-blocking
  do
    local fifo = base .. "/fifo"
    assert(os.execute("mkfifo " .. fifo))
    local _, e2, en = file.open(fifo, "w")
    t.is(en, 6, "opening a FIFO for writing without a reader: ENXIO, no hang")
    t.ok(e2 ~= nil, "with a message")
    local fr = assert(file.open(fifo, "r"))
    local fw = assert(file.open(fifo, "w"))
    fibers.spawn(function() sleep.sleep(0.01); fw:write("through fifo\n"); fw:close() end)
    t.is(fr:read_line(), "through fifo", "FIFO read waits in the scheduler")
    t.is(fr:read_line(), nil, "FIFO EOF")
    fr:close()
  end

  -- tmpfile and rename
  do
    local tf = assert(file.tmpfile(nil, base))
    local tpath = tf:filename()
    t.like(tpath, "^" .. base:gsub("%-", "%%-") .. "/fibers%-", "tmpfile in the given dir")
    t.is(sh("stat -c %a " .. tpath), "600", "tmpfile perms 0600")
    tf:write("temp")
    tf:seek("set")
    t.is(tf:read_all(), "temp", "tmpfile is read-write")
    t.is(tf:close(), true, "tmpfile close")
    t.ok(not exists(tpath), "tmpfile unlinked on close")
    local kf = assert(file.tmpfile("0644", base))
    kf:write("kept")
    t.is(kf:rename(base .. "/kept.txt"), true, "rename")
    t.is(kf:filename(), base .. "/kept.txt", "filename follows rename")
    kf:close()
    t.is(sh("cat " .. base .. "/kept.txt"), "kept", "renamed tmpfile kept after close")
    t.is(sh("stat -c %a " .. base .. "/kept.txt"), "644", "tmpfile perms")
  end

  -- mktemp
  do
    local mf, mpath = file.mktemp(base .. "/pre")
    t.like(mpath, "/pre%.......$", "mktemp name")
    mf:write("x")
    mf:close()
    t.ok(exists(mpath), "mktemp file stays")
  end

  -- stdout / stdin through a child process
  do
    local runner = fx.runner
    local script = base .. "/child.lua"
    local f = assert(io.open(script, "w"))
    f:write([[
local fibers = require 'fibers'
local file = require 'fibers.io.file'
fibers.run(function()
  local inp, out = file.stdin(), file.stdout()
  while true do
    local l = inp:read_line()
    if not l then break end
    out:write("<", l, ">\n")
  end
  file.stderr():write("done\n")
  out:close()
end)
]])
    f:close()
    t.is(sh(("printf 'a\\nb' | %s %s 2>&1"):format(runner, script)), "<a>\n<b>\ndone",
      "stdin/stdout/stderr streams")
    local out = file.stdout()
    t.is(out, file.stdout(), "stdout() is one stream")
    t.is(out:write("# a TAP comment through file.stdout()\n"), 38, "write to stdout")
    out:flush()
  end
end

fibers.run(main)
os.execute("rm -rf " .. base)
t.diag("poller backend: " .. tostring(require('fibers.runtime').current_scheduler:backend()))
t.done()
