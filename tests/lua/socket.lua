-- tests/lua/socket.lua - fibers.io.socket (doc/library.md §13): listen/accept/
-- connect on UNIX sockets, 1000 connections through one accept loop, peer
-- credentials, socket file mode, ephemeral unlink, long paths, errors,
-- close waking a pending accept, adopting a listening fd.
local t = require 'tap'
local fx = require 'fixture'
local fibers = require 'fibers'
local op = require 'fibers.op'
local sleep = require 'fibers.sleep'
local socket = require 'fibers.io.socket'
local core = require 'fibers.core'

local dir = ("%s/fsock-%d"):format(os.getenv("TMPDIR") or "/tmp", math.random(1, 1e9))
assert(os.execute("mkdir -p " .. dir))

local sh = fx.sh
local function exists(p)
  return sh("test -e " .. p .. " && echo yes") == "yes"
end
local mypid = tonumber(io.open("/proc/self/stat"):read("*l"):match("^(%d+)"))
local myuid, mygid = tonumber(sh("id -u")), tonumber(sh("id -g"))

local function main()
  local path = dir .. "/s.sock"
  local srv = assert(socket.listen_unix(path, { ephemeral = true, mode = "0660" }))
  t.is(sh("stat -c %a " .. path), "660", "socket file mode")
  t.is(srv:path(), path, "path()")

  -- 1000 connections through one accept loop, 100 at a time
  local served, creds_ok = 0, true
  fibers.spawn(function()
    while true do
      local c, err = srv:accept()
      if not c then
        t.is(err, "socket is closed", "accept loop ends on close")
        break
      end
      local pid, uid, gid = c:peer_cred()
      if pid ~= mypid or uid ~= myuid or gid ~= mygid then creds_ok = false end
      fibers.spawn(function()
        local l = c:read_line()
        c:write("echo " .. tostring(l) .. "\n")
        served = served + 1
        c:close()
      end)
    end
  end)
  local replies, eofs = 0, 0
  for batch = 0, 9 do
    local sc = fibers.current_scope():child()
    for i = 1, 100 do
      sc:spawn(function()
        local c = assert(socket.connect_unix(path))
        local n = batch * 100 + i
        c:write("ping " .. n .. "\n")
        if c:read_line() == "echo ping " .. n then replies = replies + 1 end
        if c:read_line() == nil then eofs = eofs + 1 end
        c:close()
      end)
    end
    sc:close()
    sc:join()
  end
  t.is(replies, 1000, "1000 connections answered")
  t.is(served, 1000, "1000 connections served")
  t.is(eofs, 1000, "each client saw EOF after the reply")
  t.ok(creds_ok, "peer_cred gives our pid, uid, gid")

  -- connected side credentials
  do
    local c = assert(socket.connect_unix(path))
    local pid, uid, gid = c:peer_cred()
    t.is_deeply({ pid, uid, gid }, { mypid, myuid, mygid }, "peer_cred on the connecting side")
    c:close()
  end

  -- accept losing to a timeout, then a real accept
  do
    local w = fibers.perform(op.choice(srv:accept_op(), sleep.sleep_op(0.01):wrap(function() return "timeout" end)))
    t.ok(w == "timeout" or (type(w) == "table"), "accept_op races a timeout")
  end

  -- errors
  local long = dir .. "/" .. string.rep("x", 120)
  local s, err, errno = socket.listen_unix(long)
  t.is(s, nil, "too long path: nil")
  t.like(err, "^socket path too long", "too long path: clear message")
  t.is(errno, 36, "ENAMETOOLONG")
  t.like(select(2, socket.connect_unix(long)), "^socket path too long", "connect: same check")
  s, err, errno = socket.listen_unix(path)
  t.is(s, nil, "listen on a used path fails")
  t.like(err, path:gsub("%p", "%%%0") .. ": Address already in use", "message names the path")
  t.is(errno, 98, "EADDRINUSE")
  s, err, errno = socket.connect_unix(dir .. "/nobody")
  t.is(s, nil, "connect to a missing socket fails")
  t.is(errno, 2, "ENOENT")
  t.raises(function() socket.listen_unix(42) end, "path must be a string", "bad path raises")

  -- adopting a listening fd (systemd socket activation)
  do
    local p2 = dir .. "/adopt.sock"
    local l = assert(core.socket.listen_unix(p2))
    local a = assert(socket.from_fd(l:fileno(), p2))
    local got
    fibers.spawn(function()
      local c = a:accept()
      got = c:read_line()
      c:close()
    end)
    local c = assert(socket.connect_unix(p2))
    c:write("adopted\n")
    c:close()
    sleep.sleep(0.01)
    t.is(got, "adopted", "from_fd: accept on an adopted listener")
    a:close()
    l:close()           -- fd already closed by a; harmless
    local rfd, wfd = core.file.pipe()
    local no, nerr = socket.from_fd(rfd)
    t.is(no, nil, "from_fd on a pipe fails")
    t.ok(type(nerr) == "string", "with a message: " .. tostring(nerr))
    core.file.close_fd(rfd); core.file.close_fd(wfd)
  end

  -- close wakes the accept loop; ephemeral path removed
  t.is(srv:close(), true, "close")
  sleep.sleep(0.01)
  t.ok(not exists(path), "ephemeral socket file unlinked on close")
  t.raises(function() srv:accept_op() end, "socket is closed", "accept after close raises")
end

fibers.run(main)
os.execute("rm -rf " .. dir)
t.diag("poller backend: " .. tostring(require('fibers.runtime').current_scheduler:backend()))
t.done()
