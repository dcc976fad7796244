-- tests/lua/tcp.lua - fibers.io.socket over IP: TCP echo on 127.0.0.1 and
-- ::1, socket options, a connect that cannot complete raced against a
-- timeout (no fd leaked), 1000 concurrent loopback connections, name
-- resolution of localhost and its cancellation, UDP on loopback, errors.
-- Traffic goes to loopback addresses only.
local t = require 'tap'
local fx = require 'fixture'
local fibers = require 'fibers'
local op = require 'fibers.op'
local sleep = require 'fibers.sleep'
local socket = require 'fibers.io.socket'
local runtime = require 'fibers.runtime'

local mypid = tonumber(io.open("/proc/self/stat"):read("*l"):match("^(%d+)"))

-- Open fds of this process (the pipe of the popen itself counts once).
local function nfds()
  return tonumber(fx.sh("ls /proc/" .. mypid .. "/fd | wc -l"))
end

local function timeout_op(s)
  return sleep.sleep_op(s):wrap(function() return "timeout" end)
end

-- An IPv6 loopback is usable when we can listen on ::1.
local function have_ipv6()
  local l, err = socket.tcp_listen("::1", 0)
  if not l then return false, err end
  l:close()
  return true
end

local function skip(name, reason)
  t.ok(true, name .. " # SKIP " .. reason)
end

-- Echo server: one fiber per connection, echoes lines until EOF.
local function echo_server(l)
  fibers.spawn(function()
    while true do
      local c = l:accept()
      if not c then return end
      fibers.spawn(function()
        while true do
          local line = c:read_line()
          if not line then break end
          c:write(line .. "\n")
        end
        c:close()
      end)
    end
  end)
end

local function echo_test(addr, label)
  local l = assert(socket.tcp_listen(addr, 0))
  local h, port = l:addr()
  t.is(h, addr, label .. ": listener addr() host")
  t.ok(type(port) == "number" and port > 0, label .. ": port 0 picks a port")
  echo_server(l)
  local c, err = socket.tcp_connect(addr, port)
  t.ok(c, label .. ": connect " .. tostring(err))
  c:write("hello ", label, "\n")
  t.is(c:read_line(), "hello " .. label, label .. ": echoed line")
  local big = string.rep("0123456789abcdef", 65536)   -- 1 MiB
  fibers.spawn(function() c:write(big, "\n") end)
  t.is(c:read_line(), big, label .. ": 1 MiB line echoed intact")
  local ph, pp = c:peername()
  t.is_deeply({ ph, pp }, { addr, port }, label .. ": peername")
  local sh, sp = c:sockname()
  t.is(sh, addr, label .. ": sockname host")
  t.ok(sp > 0, label .. ": sockname port")
  t.is(c:getsockopt("nodelay"), true, label .. ": TCP_NODELAY on by default")
  t.is(c:getsockopt("keepalive"), false, label .. ": SO_KEEPALIVE off by default")
  c:close()
  l:close()
end

local function main()
  -- resolution
  do
    local addrs, err = socket.resolve("localhost")
    t.ok(type(addrs) == "table", "resolve localhost: " .. tostring(err))
    local seen = {}
    for _, a in ipairs(addrs or {}) do seen[a] = true end
    t.ok(seen["127.0.0.1"] or seen["::1"], "localhost resolves to a loopback address: " ..
         table.concat(addrs or {}, " "))
    local v4 = socket.resolve("localhost", { family = "inet" })
    t.is(v4 and v4[1], "127.0.0.1", "family inet: 127.0.0.1 first")
    local only4 = true
    for _, a in ipairs(v4 or {}) do if a:find(":") then only4 = false end end
    t.ok(only4, "family inet: IPv4 addresses only")
    t.is_deeply(socket.resolve("127.0.0.2"), { "127.0.0.2" }, "a numeric address resolves to itself")
    t.is_deeply(socket.resolve("::1"), { "::1" }, "IPv6 numeric too")
    local st = socket._resolver_state()
    t.is(st.waiting, 0, "resolver: nothing waiting afterwards")
    t.is(st.live, 0, "resolver: no live request afterwards")
    t.ok(st.threads >= 1 and st.threads <= 4, "resolver: 1..4 helper threads (" .. st.threads .. ")")
    -- many at once: the pool queues them, every perform gets its answer
    local n, got = 50, 0
    local sc = fibers.current_scope():child()
    for _ = 1, n do
      sc:spawn(function()
        local a = socket.resolve("localhost", { family = "inet" })
        if a and a[1] == "127.0.0.1" then got = got + 1 end
      end)
    end
    sc:close(); sc:join()
    t.is(got, n, "50 concurrent resolutions all answered")
    t.ok(socket._resolver_state().threads <= 4, "still at most 4 threads")
    t.raises(function() socket.resolve_op("") end, "host must be a non%-empty string", "empty host raises")
    t.raises(function() socket.resolve_op("x", { family = "ipx" }) end, "family must be", "bad family raises")
  end

  -- resolver cancellation: the losing lookup is dropped, nothing stays
  -- registered, and the loop does not wait for its answer
  do
    local lost = 0
    for _ = 1, 20 do
      local w = fibers.perform(op.choice(socket.resolve_op("localhost"), op.always("other")))
      if w == "other" then lost = lost + 1 end
    end
    t.ok(lost > 0, "resolve_op raced against a ready arm lost " .. lost .. " of 20")
    local st = socket._resolver_state()
    t.is(st.live, 0, "lost (before blocking): requests released")
    t.is(st.waiting, 0, "lost (before blocking): nothing waiting")
    local wins, losses = 0, 0
    local sc = fibers.current_scope():child()
    for i = 1, 40 do
      sc:spawn(function()
        local r = fibers.perform(op.choice(socket.resolve_op("localhost", { family = "inet" }),
                                           sleep.sleep_op(i % 2 == 0 and 0 or 5):wrap(function() return "slept" end)))
        if r == "slept" then losses = losses + 1 elseif type(r) == "table" then wins = wins + 1 end
      end)
    end
    sc:close(); sc:join()
    t.is(wins + losses, 40, "40 resolve/sleep races all finished (" .. wins .. " resolved, " .. losses .. " slept)")
    st = socket._resolver_state()
    t.is(st.waiting, 0, "after the races: nothing waiting on the resolver")
    t.is(st.live, 0, "after the races: every request released")
    -- a resolve in a scope that is cancelled while it waits
    local r, why = fibers.run_scope(function(s)
      s:spawn(function() s:cancel("stop") end)
      socket.resolve("localhost")
      socket.resolve("localhost")
    end)
    t.ok(r == "cancelled" or r == "ok", "scope around resolve ends: " .. tostring(r) .. " " .. tostring(why))
    st = socket._resolver_state()
    t.is(st.waiting, 0, "cancelled scope: nothing waiting")
    t.is(st.live, 0, "cancelled scope: request released")
  end

  -- echo over IPv4 and IPv6 loopback
  echo_test("127.0.0.1", "IPv4")
  local v6, v6err = have_ipv6()
  if v6 then
    echo_test("::1", "IPv6")
  else
    skip("IPv6 echo", "no IPv6 loopback: " .. tostring(v6err))
  end

  -- a name connects through the resolver; keepalive and nodelay options
  do
    local l = assert(socket.tcp_listen("localhost", 0, { family = "inet", nodelay = false, keepalive = 30 }))
    local _, port = l:addr()
    local srv
    fibers.spawn(function() srv = l:accept() end)
    local c = assert(socket.tcp_connect("localhost", port, { family = "inet", keepalive = true, nodelay = false }))
    t.is(c:getsockopt("keepalive"), true, "connect opts: keepalive on")
    t.is(c:getsockopt("nodelay"), false, "connect opts: nodelay off")
    sleep.sleep(0.01)
    t.ok(srv, "accepted")
    t.is(srv:getsockopt("keepalive"), true, "listener opts apply to accepted streams: keepalive")
    t.is(srv:getsockopt("nodelay"), false, "listener opts apply to accepted streams: nodelay off")
    t.is(c:setsockopt("nodelay", true), true, "setsockopt nodelay")
    t.is(c:getsockopt("nodelay"), true, "nodelay now on")
    t.like(srv:filename(), "^127%.0%.0%.1:%d+$", "accepted stream named by its peer")
    t.raises(function() c:setsockopt("frobnicate", true) end, "unknown socket option 'frobnicate'", "unknown option raises")
    c:close(); srv:close(); l:close()
  end

  -- errors
  do
    local probe = assert(socket.tcp_listen("127.0.0.1", 0))
    local _, port = probe:addr()
    local l2, err, errno = socket.tcp_listen("127.0.0.1", port, { reuseaddr = false })
    t.is(l2, nil, "listen on a used port fails")
    t.is(err, "listen 127.0.0.1:" .. port .. ": Address already in use", "message names address and port")
    t.is(errno, 98, "EADDRINUSE")
    probe:close()
    local c
    c, err, errno = socket.tcp_connect("127.0.0.1", port)
    t.is(c, nil, "connect to a closed port fails")
    t.is(err, "connect 127.0.0.1:" .. port .. ": Connection refused", "refused: message")
    t.is(errno, 111, "ECONNREFUSED")
    t.raises(function() socket.tcp_connect_op("127.0.0.1", 70000) end, "port must be an integer 0..65535", "bad port raises")
    t.raises(function() socket.tcp_listen("127.0.0.1", 0, { backlog = -1 }) end, "backlog must be", "bad backlog raises")
    t.raises(function() socket.tcp_connect_op("127.0.0.1", 1, { keepalive = "yes" }) end, "keepalive must be", "bad keepalive raises")
    local l = assert(socket.tcp_listen("127.0.0.1", 0))
    local got
    fibers.spawn(function() got = { l:accept() } end)
    sleep.sleep(0.005)
    l:close()
    sleep.sleep(0.005)
    t.is_deeply(got, { nil, "socket is closed" }, "close wakes a pending TCP accept")
  end

  -- a connect that cannot complete: the listener never accepts and its
  -- backlog is full, so the SYN is dropped; raced against a timeout it
  -- returns promptly and leaves no fd behind
  do
    local l = assert(socket.tcp_listen("127.0.0.1", 0, { backlog = 0 }))
    local _, port = l:addr()
    local fillers, stuck = {}, false
    for _ = 1, 16 do
      local r = fibers.perform(op.choice(socket.tcp_connect_op("127.0.0.1", port), timeout_op(0.3)))
      if r == "timeout" then stuck = true; break end
      fillers[#fillers + 1] = r
    end
    t.ok(stuck, "backlog filled after " .. #fillers .. " connections: a connect stays pending")
    local before = nfds()
    local t0 = runtime.monotime()
    for _ = 1, 20 do
      local r = fibers.perform(op.choice(socket.tcp_connect_op("127.0.0.1", port), timeout_op(0.05)))
      if r ~= "timeout" then t.diag("unexpected connect result: " .. tostring(r)) end
    end
    local dt = runtime.monotime() - t0
    t.ok(dt < 3, ("20 stuck connects raced against 50 ms each: %.2f s"):format(dt))
    t.is(nfds(), before, "no fd leaked by the losing connects")
    -- the same through a scope timeout (cancellation, not a choice)
    local st = fibers.run_scope(function(s)
      s:spawn(function() sleep.sleep(0.05); s:cancel("deadline") end)
      socket.tcp_connect("127.0.0.1", port)
    end)
    t.is(st, "cancelled", "a stuck connect in a cancelled scope ends")
    t.is(nfds(), before, "no fd leaked by the cancelled connect")
    for _, c in ipairs(fillers) do c:close() end
    l:close()
  end

  -- UDP on loopback
  do
    local a = assert(socket.udp_bind("127.0.0.1", 0))
    local ah, ap = a:addr()
    t.is(ah, "127.0.0.1", "udp addr host")
    local b = assert(socket.udp_bind("127.0.0.1", 0))
    local _, bp = b:addr()
    t.is(b:sendto("ping", ah, ap), 4, "sendto returns bytes sent")
    t.is_deeply({ a:recvfrom() }, { "ping", "127.0.0.1", bp }, "recvfrom: data, host, port")
    -- a recv that loses to a timeout takes no datagram
    local r = fibers.perform(op.choice(a:recvfrom_op(), timeout_op(0.01)))
    t.is(r, "timeout", "recvfrom_op loses to a timeout when nothing came")
    b:sendto("after", ah, ap)
    t.is(a:recvfrom(), "after", "the next datagram is received intact")
    b:sendto("truncated datagram", ah, ap)
    t.is(a:recvfrom(9), "truncated", "max truncates")
    -- a blocked receiver is woken by a later datagram
    local got
    fibers.spawn(function() got = { a:recvfrom() } end)
    sleep.sleep(0.005)
    b:sendto("late", ah, ap)
    sleep.sleep(0.01)
    t.is(got and got[1], "late", "a blocked recvfrom wakes on arrival")
    -- wildcard socket sending to IPv4 loopback
    local w = assert(socket.udp_bind(nil, 0))
    t.is(w:sendto("from any", ah, ap), 8, "wildcard socket sends to 127.0.0.1")
    local d, sh = a:recvfrom()
    t.is_deeply({ d, sh }, { "from any", "127.0.0.1" }, "sender shown as 127.0.0.1")
    if v6 then
      local c6 = assert(socket.udp_bind("::1", 0))
      local _, p6 = c6:addr()
      w:sendto("v6", "::1", p6)
      local d6, h6 = c6:recvfrom()
      t.is_deeply({ d6, h6 }, { "v6", "::1" }, "UDP over ::1")
      c6:close()
    else
      skip("UDP over ::1", "no IPv6 loopback")
    end
    t.raises(function() b:sendto_op("x", "localhost", ap) end, "host must be a numeric", "sendto to a name raises")
    local pend
    fibers.spawn(function() pend = { a:recvfrom() } end)
    sleep.sleep(0.005)
    a:close()
    sleep.sleep(0.005)
    t.is_deeply(pend, { nil, "socket is closed" }, "close wakes a pending recvfrom")
    t.raises(function() a:recvfrom_op() end, "socket is closed", "recvfrom_op after close raises")
    b:close(); w:close()
  end

  -- 1000 concurrent loopback connections (2000 fds in this process)
  do
    local limits = io.open("/proc/self/limits"):read("*a")
    local soft, hard = limits:match("Max open files%s+(%S+)%s+(%S+)")
    soft = tonumber(soft) or math.huge
    hard = tonumber(hard) or math.huge
    local need = 2200
    if soft < need and hard >= need then
      os.execute(("prlimit --pid %d --nofile=%d: >/dev/null 2>&1"):format(mypid, need))
      soft = tonumber(io.open("/proc/self/limits"):read("*a"):match("Max open files%s+(%S+)")) or soft
    end
    if soft < need then
      skip("1000 concurrent connections", "RLIMIT_NOFILE soft limit " .. soft .. " < " .. need .. " and cannot be raised")
    else
      local l = assert(socket.tcp_listen("127.0.0.1", 0, { backlog = 1024 }))
      local _, port = l:addr()
      echo_server(l)
      local N, connected, answered = 1000, 0, 0
      local all_in = require('fibers.cond').new()
      local sc = fibers.current_scope():child()
      for i = 1, N do
        sc:spawn(function()
          local c = assert(socket.tcp_connect("127.0.0.1", port))
          connected = connected + 1
          if connected == N then all_in:signal() end
          all_in:wait()
          c:write("n", i, "\n")
          if c:read_line() == "n" .. i then answered = answered + 1 end
          c:close()
        end)
      end
      sc:close()
      sc:join()
      t.is(connected, N, "1000 connections open at once")
      t.is(answered, N, "1000 echoes answered")
      l:close()
    end
  end
end

fibers.run(main)
t.diag("poller backend: " .. tostring(runtime.current_scheduler:backend()))
t.done()
