-- tests/lua/stream.lua - fibers.io.stream (doc/library.md §11, §0.6): reads
-- across random chunk boundaries, lines longer than the buffer, EOF with
-- and without a final newline, every read format, short reads, read_all
-- of 64 MiB, no lost bytes under cancellation (scope, timeout in a choice),
-- writes never torn, use after close, merge_lines_op, Lua backends.
-- Runs with either poller backend (FIBERS_POLLER; see tests/lua/io-poll.sh).
local t = require 'tap'
local fx = require 'fixture'
local fibers = require 'fibers'
local op = require 'fibers.op'
local runtime = require 'fibers.runtime'
local sleep = require 'fibers.sleep'
local stream = require 'fibers.io.stream'
local cfile = require('fibers.core').file

local unpack = fx.unpack

-- A pipe as two streams; bufsize applies to the read side.
local function pipe(bufsize)
  local r, w = assert(cfile.pipe())
  return stream.from_fd(r, true, false, { bufsize = bufsize, kind = "fifo" }),
         stream.from_fd(w, false, true, { kind = "fifo" })
end

local function random_text(n, final_nl)
  local parts, len = {}, 0
  while len < n do
    local l = math.random(1, 8) == 1 and math.random(100, 700) or math.random(0, 30)
    local s = string.rep(string.char(math.random(97, 122)), l) .. "\n"
    parts[#parts + 1] = s
    len = len + #s
  end
  local text = table.concat(parts):sub(1, n)
  if final_nl then text = text:sub(1, -2) .. "\n"
  elseif text:sub(-1) == "\n" then text = text:sub(1, -2) .. "z" end
  return text
end

local function lines_of(text)
  local out = {}
  for l in (text:sub(-1) == "\n" and text or text .. "\n"):gmatch("([^\n]*)\n") do
    out[#out + 1] = l
  end
  return out
end

-- A writer fiber dribbling text in random sizes, yielding in between.
local function dribble(ws, text, maxchunk)
  fibers.spawn(function()
    local i = 1
    while i <= #text do
      local n = math.random(1, maxchunk)
      ws:write(text:sub(i, i + n - 1))
      i = i + n
      if math.random(1, 3) == 1 then runtime.yield() end
    end
    ws:close()
  end)
end

local function main()
  math.randomseed(7)

  -- random chunkings, lines longer than the 64-byte buffer, EOF +/- newline
  for _, final_nl in ipairs({ true, false }) do
    for round = 1, 3 do
      local rs, ws = pipe(64)
      local text = random_text(20000, final_nl)
      dribble(ws, text, round * 50)
      local got = {}
      while true do
        local l, err = rs:read_line()
        if l == nil then
          t.is(err, nil, "EOF is nil, nil")
          break
        end
        got[#got + 1] = l
      end
      t.is_deeply(got, lines_of(text),
        ("random chunks, %s final newline, round %d"):format(final_nl and "with" or "without", round))
      t.is(select("#", rs:read_line()), 2, "read_line at EOF returns two values")
      rs:close()
    end
  end

  -- keep_terminator, custom terminators, max
  do
    local rs, ws = pipe(16)
    ws:write("a\r\nbb\r\n" .. string.rep("x", 40) .. "\r\ntail")
    ws:close()
    t.is(rs:read_line{ terminator = "\r\n" }, "a", "CRLF terminator")
    t.is(rs:read_line{ terminator = "\r\n", keep_terminator = true }, "bb\r\n", "keep_terminator")
    t.is_deeply(t.pack(rs:read_line{ terminator = "\r\n", max = 39 }),
      { n = 2, nil, "line too long" }, "line past max: line too long")
    t.is(rs:read_line{ terminator = "\r\n", max = 40 }, string.rep("x", 40),
      "a line of exactly max bytes passes; the failed read lost nothing")
    t.is(rs:read_line{ terminator = "\r\n" }, "tail", "unterminated last line")
    t.is_deeply(t.pack(rs:read_line()), { n = 2 }, "then EOF")
    t.raises(function() rs:read_line_op{ terminator = "" } end, "terminator", "empty terminator raises")
    t.raises(function() rs:read_line_op("x") end, "table", "non-table options raise")
  end

  -- max bounds memory on an endless line
  do
    local rs, ws = pipe(1024)
    fibers.spawn(function()
      local junk = string.rep("j", 4096)
      for _ = 1, 64 do if not ws:write(junk) then break end end
    end)
    t.is_deeply(t.pack(rs:read_line{ max = 10000 }), { n = 2, nil, "line too long" },
      "endless line stops at max")
    local buffered = rs:buffered()
    t.ok(buffered > 10000 and buffered < 10000 + 70000, "buffered bytes bounded by max + a chunk")
    rs:close(); ws:close()
  end

  -- without max a line is bounded by stream.LINE_MAX (1 MiB); math.huge lifts it
  do
    t.is(stream.LINE_MAX, 1048576, "LINE_MAX is 1 MiB")
    local rs, ws = pipe()
    fibers.spawn(function()
      ws:write(string.rep("j", 1048576 + 10) .. "\n" .. string.rep("k", 1048576 + 10) .. "\n")
      ws:close()
    end)
    t.is_deeply(t.pack(rs:read_line()), { n = 2, nil, "line too long" },
      "a line longer than 1 MiB without max: line too long")
    t.ok(rs:buffered() < 1048576 + 70000, "buffered bytes bounded by LINE_MAX + a chunk")
    t.is_deeply(t.pack(rs:read("l")), { n = 2, nil, "line too long" }, "read('l') has the same bound")
    t.is(#rs:read_line{ max = math.huge }, 1048576 + 10, "max = math.huge: no bound")
    t.is(#rs:read_line{ max = 2000000 }, 1048576 + 10, "an explicit max above LINE_MAX")
    t.raises(function() rs:read_line_op{ max = -1 } end, "max", "negative max raises")
    t.raises(function() rs:read_all_op{ max = 1.5 } end, "max", "fractional max raises")
    rs:close()
  end

  -- read_all_op{max}: past max nil, "too long", the bytes stay buffered
  do
    local rs, ws = pipe()
    fibers.spawn(function() ws:write(string.rep("a", 5000)); ws:close() end)
    t.is_deeply(t.pack(fibers.perform(rs:read_all_op{ max = 4000 })), { n = 2, nil, "too long" },
      "read_all past max: nil, 'too long'")
    t.is(#rs:read_all(), 5000, "the bytes stayed in the buffer")
    rs:close()
  end

  -- read_exactly, short reads, read_string_op, read_op formats
  do
    local rs, ws = pipe()
    ws:write("hello world\n12 0x10 -2.5e1 zz\nrest")
    t.is(rs:read_exactly(5), "hello", "read_exactly")
    t.is(rs:read_exactly(0), "", "read_exactly(0)")
    t.is_deeply(t.pack(rs:read_string{ max = 3 }), { n = 3, " wo", 3, nil }, "read_string max")
    t.is_deeply(t.pack(rs:read_string{ terminator = "\n" }), { n = 3, "rld\n", 4, nil },
      "read_string through the terminator")
    t.is(rs:read("n"), 12, "read('n') integer")
    t.is(rs:read("*n"), 16, "read('*n') hex")
    t.is(rs:read("n"), -25.0, "read('n') float")
    t.is(rs:read("n"), nil, "read('n') on a non-numeral fails")
    t.is(rs:read("L"), "zz\n", "read('L') keeps the newline")
    t.is(rs:read(0), "", "read(0)")
    t.is(rs:read(2), "re", "read(2)")
    ws:close()
    t.is_deeply(t.pack(rs:read_exactly(9)), { n = 2, nil, "short read" }, "short read at EOF")
    t.is(rs:read("a"), "st", "short read kept the bytes; read('a') gets them")
    t.is(rs:read("a"), "", "read('a') at EOF is empty")
    t.is(rs:read(4), nil, "read(n) at EOF is nil")
    t.is(rs:read("l"), nil, "read('l') at EOF is nil")
    t.is_deeply(t.pack(rs:read_string()), { n = 3, nil, 0, nil }, "read_string at EOF")
    t.raises(function() rs:read_op("x") end, "invalid format", "bad format raises")
    rs:close()
  end

  -- read("l", "n", ...) several formats at once
  do
    local rs, ws = pipe()
    ws:write("one\n42\n")
    ws:close()
    t.is_deeply(t.pack(rs:read("l", "n", "l")), { n = 3, "one", 42, "" }, "multiple formats")
    rs:close()
  end

  -- read_all of 64 MiB
  do
    local rs, ws = pipe()
    local chunk = string.rep("0123456789abcdef", 65536)   -- 1 MiB
    fibers.spawn(function()
      for _ = 1, 64 do ws:write(chunk) end
      ws:close()
    end)
    local all, err = rs:read_all()
    t.ok(all and #all == 64 * 1048576 and err == nil, "read_all of 64 MiB")
    t.is(all and all:sub(-16), "0123456789abcdef", "read_all tail intact")
    all = nil
    collectgarbage()
    rs:close()
  end

  -- no lost bytes: a read cancelled by its scope
  do
    local rs, ws = pipe()
    ws:write("hel")
    local sc = fibers.current_scope():child()
    local got = "unset"
    sc:spawn(function() got = rs:read_line() end)
    sleep.sleep(0.01)
    sc:cancel("stop")
    sc:join()
    t.is(got, "unset", "cancelled read returned nothing")
    ws:write("lo\n")
    t.is(rs:read_line(), "hello", "bytes of the cancelled read are still there")
    rs:close(); ws:close()
  end

  -- no lost bytes: a read losing to a timeout in a choice
  do
    local rs, ws = pipe(8)
    ws:write("partial data that spans buffers")
    local name = fibers.named_choice{
      line = rs:read_line_op(),
      timeout = sleep.sleep_op(0.02),
    }
    t.is(name, "timeout", "timeout wins over an unterminated line")
    ws:write("!\n")
    t.is(rs:read_line(), "partial data that spans buffers!", "the losing read lost nothing")
    rs:close(); ws:close()
  end

  -- a read losing a choice while its data arrives in the same turn
  do
    local rs, ws = pipe()
    ws:write("x\n")
    local w = fibers.perform(op.choice(
      rs:read_exactly_op(3):wrap(function() return "read" end),
      op.always("other")))
    t.is(w, "other", "ready arm wins over a read that needs more")
    t.is(rs:read_line(), "x", "nothing consumed by the loser")
    rs:close(); ws:close()
  end

  -- writes are never torn: a big write commits once the kernel took part
  -- of it; the rest drains in the background; later writes wait for it
  do
    local rs, ws = pipe()
    local big = string.rep("B", 3 * 1048576)
    local timeout = sleep.sleep_op(0.02):wrap(function() return "timeout" end)
    t.is(fibers.perform(op.choice(ws:write_string_op(big), timeout)), #big,
      "a big write into an undrained pipe commits (the kernel took part)")
    t.is(fibers.perform(op.choice(ws:write_string_op("next"), timeout)), "timeout",
      "the next write waits for the queued tail (back-pressure) and loses")
    t.is(fibers.perform(op.choice(ws:flush_output_op(), timeout)), "timeout",
      "flush waits for the queue too")
    fibers.spawn(function() ws:write("after"); ws:close() end)
    local all = rs:read_all()
    t.is(#all, #big + 5, "the whole string arrived, then the next write")
    t.is(all:sub(-6), "Bafter", "in order; the losing write wrote nothing")
    rs:close()
  end

  -- the background drain delivers a tail without further writes
  do
    local rs, ws = pipe()
    local big = string.rep("C", 2 * 1048576 + 7)
    t.is(ws:write(big), #big, "big write committed")
    local got = rs:read_exactly(#big)
    t.is(got and #got, #big, "the tail drained in the background while we read")
    t.is(ws:flush(), true, "nothing left to flush")
    rs:close(); ws:close()
  end

  -- a blocked reader is woken by close(); use after close raises
  do
    local rs, ws = pipe()
    local res
    fibers.spawn(function() res = t.pack(rs:read_line()) end)
    sleep.sleep(0.01)
    t.is_deeply({ rs:close() }, { true }, "close -> true")
    sleep.sleep(0.01)
    t.is_deeply(res, { n = 2, nil, "stream is closed" }, "blocked read wakes with an error")
    t.is(rs:close(), true, "close is idempotent")
    t.raises(function() rs:read_line_op() end, "stream is not readable", "read after close raises")
    t.raises(function() rs:read_all() end, "stream is not readable", "read_all after close raises")
    t.raises(function() rs:write("x") end, "stream is not writable", "write on a read end raises")
    t.is(rs:fileno(), nil, "fileno after close is nil")
    ws:close()
    t.raises(function() ws:write_string_op("x") end, "stream is not writable", "write after close raises")
    t.raises(function() ws:flush() end, "stream is not writable", "flush after close raises")
  end

  -- buffering modes
  do
    local rs, ws = pipe()
    ws:setvbuf("full")
    t.is(ws:write("abc"), 3, "buffered write returns the count")
    t.is(select(2, ws:buffered()), 3, "bytes wait in the buffer")
    t.is(ws:flush(), true, "flush")
    t.is(rs:read(10), "abc", "flushed bytes arrive")
    ws:setvbuf("line")
    ws:write("no newline")
    t.is(select(2, ws:buffered()), 10, "line mode holds a partial line")
    ws:write(" yes\n", 7)
    t.is(rs:read(100), "no newline yes\n7", "write(...) with a number; newline flushes")
    t.raises(function() ws:setvbuf("odd") end, "invalid mode", "bad setvbuf mode raises")
    ws:write("pending")
    t.is(ws:close(), true, "close flushes")
    t.is(rs:read_all(), "pending", "flushed on close")
    rs:close()
  end

  -- write(...) / write_op(...) write tostring of any non-nil value
  do
    local rs, ws = pipe()
    local obj = setmetatable({}, { __tostring = function() return "<obj>" end })
    t.is(ws:write("n=", 123, true, " ", false, " ", obj, "\n"), 22, "write: numbers, booleans, __tostring")
    t.is(ws:write(true), 4, "write: one boolean")
    t.is(fibers.perform(ws:write_op(1.5, false)), 8, "write_op: number and boolean")
    t.is(rs:read(100), "n=123true false <obj>\ntrue1.5false", "written as tostring(v)")
    local ok, err = pcall(function() ws:write("a", nil, "b") end)
    t.ok(not ok and err:find("write: argument 2 is nil", 1, true) ~= nil, "write: nil argument raises")
    t.like(tostring(err), "stream%.lua:%d+: write: argument 2 is nil$", "write: the error names the caller's line")
    ok, err = pcall(ws.write_op, ws, nil)
    t.ok(not ok and err:find("write_op: argument 1 is nil", 1, true) ~= nil, "write_op: nil argument raises")
    t.is(ws:nonblock(), ws, "nonblock() is a no-op returning the stream")
    t.is(ws:block(), ws, "block() is a no-op returning the stream")
    t.is(ws:write("still\n"), 6, "the stream still works after block()")
    t.is(rs:read_line(), "still", "read after block()")
    ws:close(); rs:close()
  end

  -- merge_lines_op
  do
    local a_r, a_w = pipe()
    local b_r, b_w = pipe()
    a_w:write("a1\na2\n"); a_w:close()
    b_w:write("b1\n"); b_w:close()
    local streams = { a = a_r, b = b_r }
    local got = {}
    while next(streams) do
      local name, line, err = fibers.perform(stream.merge_lines_op(streams))
      t.is(err, nil, "no error from " .. name)
      if line == nil then streams[name] = nil else got[#got + 1] = name .. ":" .. line end
    end
    table.sort(got)
    t.is_deeply(got, { "a:a1", "a:a2", "b:b1" }, "merge_lines_op yields every line with its name")
    t.raises(function() stream.merge_lines_op({ x = 1 }) end, "not a stream", "non-stream raises")
  end

  -- Lua backend (in-memory, with readiness callbacks)
  do
    local q, waiting, closed = {}, nil, false
    local be = {}
    function be:read_string(max)
      if #q == 0 then if closed then return nil end return false end
      local s = table.remove(q, 1)
      if #s > max then table.insert(q, 1, s:sub(max + 1)); s = s:sub(1, max) end
      return s
    end
    function be:write_string(s) q[#q + 1] = s; local w = waiting; waiting = nil; if w then runtime.current_scheduler:schedule(w) end; return #s end
    function be:on_readable(task) waiting = task; return function() if waiting == task then waiting = nil end end end
    function be:on_writable(task) runtime.current_scheduler:schedule(task) end
    function be:close() closed = true; local w = waiting; waiting = nil; if w then runtime.current_scheduler:schedule(w) end; return true end
    local s = stream.open(be, true, true, 4)
    t.ok(stream.is_stream(s) and not stream.is_stream({}), "is_stream")
    local got
    fibers.spawn(function() got = { s:read_line(), s:read_line() } end)
    sleep.sleep(0.005)
    s:write("first line\nsec")
    sleep.sleep(0.005)
    s:write("ond\n")
    sleep.sleep(0.005)
    t.is_deeply(got, { "first line", "second" }, "backend stream: lines across tiny chunks")
    t.is(s:fileno(), nil, "backend without fileno")
    t.is(s:close(), true, "backend close")
    t.ok(closed, "backend close called")
    t.raises(function() stream.open({}) end, "read_string", "incomplete backend raises")
  end

  -- a backend error surfaces with its own message
  do
    local be = {
      read_string = function() return nil, "backend broke" end,
      on_readable = function() end,
    }
    local s = stream.open(be, true, false)
    t.is_deeply(t.pack(s:read_line()), { n = 2, nil, "backend broke" }, "backend error message")
  end
end

fibers.run(main)
t.diag("poller backend: " .. tostring(runtime.current_scheduler:backend()))
t.done()
