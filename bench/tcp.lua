-- bench/tcp.lua - loopback TCP throughput through fibers.io.socket streams:
-- 256 MiB from a writer fiber on a tcp_connect stream to a reader fiber on
-- the accepted stream, both in this process (one thread), against socat
-- piping the same bytes over 127.0.0.1 (`dd | socat -u - TCP:...` into
-- `socat -u TCP-LISTEN:... /dev/null`: two processes), timed in the same
-- run (best of 3 each, interleaved).
-- Prints: bench=tcp n=<bytes> value=<MiB/s> unit=MiB/s ref=<MiB/s> ratio=<x>
-- Uses only the public API.  Traffic stays on 127.0.0.1.
-- Environment: BENCH_SCALE shrinks the size; TCP_CHUNK sets the write and
-- read size (default 1 MiB, as bench/pipe.lua).
local common = require 'common'
local fibers = require 'fibers'
local socket = require 'fibers.io.socket'

local mib = common.n(256)
local total = mib * 1048576
local chunk_size = tonumber(os.getenv("TCP_CHUNK") or "") or 1048576
local chunk = string.rep("x", chunk_size)

local function run_fibers()
  local secs, got
  fibers.run(function()
    local l = assert(socket.tcp_listen("127.0.0.1", 0))
    local _, port = l:addr()
    local t0 = common.clock()
    fibers.spawn(function()
      local w = assert(socket.tcp_connect("127.0.0.1", port))
      local left = total
      while left > 0 do
        local n, err = w:write(left >= chunk_size and chunk or chunk:sub(1, left))
        if err then error(err) end
        left = left - n
      end
      assert(w:close())
    end)
    local r = assert(l:accept())
    got = 0
    while true do
      local s = r:read(chunk_size)
      if not s then break end
      got = got + #s
    end
    secs = common.clock() - t0
    r:close()
    l:close()
  end)
  assert(got == total, "short transfer: " .. tostring(got))
  return secs
end

-- A free loopback port: bind port 0, read it, close (socat binds it next).
local function free_port()
  local port
  fibers.run(function()
    local l = assert(socket.tcp_listen("127.0.0.1", 0))
    port = select(2, l:addr())
    l:close()
  end)
  return port
end

-- socat receiver started first; the clock runs from the sender's start to
-- the receiver's exit (the whole stream read), like the fibers case.
local function run_socat()
  local port = free_port()
  local cmd = ([[
socat -u TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr OPEN:/dev/null & l=$!
sleep 0.2
t0=$(date +%%s%%N)
dd if=/dev/zero bs=64k count=%d 2>/dev/null | socat -u -b 65536 STDIN TCP:127.0.0.1:%d
wait $l
t1=$(date +%%s%%N)
echo $((t1 - t0))]]):format(port, total / 65536, port)
  local p = io.popen("sh -c '" .. cmd:gsub("'", "'\\''") .. "'")
  local ns = tonumber(p:read("*a"))
  p:close()
  assert(ns and ns > 0, "socat run failed")
  return ns / 1e9
end

local best, ref = math.huge, math.huge
for _ = 1, 3 do
  best = math.min(best, run_fibers())
  ref = math.min(ref, run_socat())
end
common.report("tcp", total, mib / best, "MiB/s", mib / ref)
