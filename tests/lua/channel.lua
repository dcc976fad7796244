-- tests/lua/channel.lua - fibers.channel (doc/library.md §6): exact values, FIFO
-- orderings, nil values, bounded and unbounded buffers, losing put/get in
-- a choice, cancellation by a scope and by a timeout, bounded memory.
local t = require 'tap'
local fx = require 'fixture'
local fibers = require 'fibers'
local op = require 'fibers.op'
local runtime = require 'fibers.runtime'
local chan = require 'fibers.channel'
local sleep = require 'fibers.sleep'

local unpack, turns = fx.unpack, fx.turns
local perform = op.perform_raw
local function spawn(f, ...) return runtime.spawn_raw(f, ...) end

---------------------------------------------------------------------------
-- constructor
t.raises(function() chan.new(-1) end, "buffer size", "new(-1) raises")
t.raises(function() chan.new(1.5) end, "buffer size", "new(1.5) raises")
t.raises(function() chan.new("2") end, "buffer size", "new('2') raises")
t.is(chan.new():capacity(), 0, "default is rendezvous")
t.is(chan.new(math.huge):capacity(), math.huge, "unbounded capacity")

---------------------------------------------------------------------------
-- unbuffered rendezvous: values in order, both sides block until matched
do
  local ch = chan.new()
  local got, log = {}, {}
  spawn(function()
    for i = 1, 3 do perform(ch:put_op(i)); log[#log + 1] = "put" .. i end
  end)
  turns(1)
  t.is_deeply(log, {}, "unbuffered put blocks without a receiver")
  spawn(function()
    for _ = 1, 3 do got[#got + 1] = perform(ch:get_op()) end
  end)
  turns(10)
  t.is_deeply(got, { 1, 2, 3 }, "rendezvous delivers 1,2,3 in order")
  t.is_deeply(log, { "put1", "put2", "put3" }, "every put completed")
end

-- FIFO of waiting receivers
do
  local ch = chan.new()
  local got = {}
  for i = 1, 3 do
    spawn(function() got[i] = perform(ch:get_op()) end)
  end
  turns(1)
  spawn(function()
    for _, v in ipairs({ "a", "b", "c" }) do perform(ch:put_op(v)) end
  end)
  turns(5)
  t.is_deeply(got, { "a", "b", "c" }, "oldest waiting receiver is served first")
end

-- FIFO of waiting senders
do
  local ch = chan.new()
  local got = {}
  for _, v in ipairs({ "x", "y", "z" }) do
    spawn(function() perform(ch:put_op(v)) end)
  end
  turns(1)
  spawn(function()
    for i = 1, 3 do got[i] = perform(ch:get_op()) end
  end)
  turns(5)
  t.is_deeply(got, { "x", "y", "z" }, "oldest waiting sender is taken first")
end

-- nil is a valid value (rendezvous and buffered)
do
  local ch = chan.new()
  local r
  spawn(function() r = t.pack(perform(ch:get_op())) end)
  spawn(function() perform(ch:put_op(nil)) end)
  turns(3)
  t.is_deeply(r, { n = 1 }, "get yields exactly one nil value")
  local b = chan.new(3)
  local vals
  spawn(function()
    perform(b:put_op(nil)); perform(b:put_op(2)); perform(b:put_op(nil))
    vals = t.pack(perform(b:get_op()), perform(b:get_op()), perform(b:get_op()))
  end)
  turns(2)
  t.is_deeply(vals, { n = 3, [2] = 2 }, "buffered nil, 2, nil round-trip in order")
  t.is(b:buffered(), 0, "buffer empty again")
end

---------------------------------------------------------------------------
-- bounded buffer: put blocks when full; get refills from the oldest sender
do
  local ch = chan.new(2)
  local done = {}
  spawn(function()
    for i = 1, 5 do perform(ch:put_op(i)); done[#done + 1] = i end
  end)
  turns(1)
  t.is_deeply(done, { 1, 2 }, "two puts fit, the third blocks")
  t.is(ch:buffered(), 2, "buffer is full")
  local got = {}
  spawn(function() got[1] = perform(ch:get_op()) end)
  turns(1)
  t.is(got[1], 1, "get takes the buffer head")
  t.is(ch:buffered(), 2, "the blocked sender's value moved into the buffer")
  turns(1)
  t.is_deeply(done, { 1, 2, 3 }, "that sender was released")
  spawn(function() for i = 2, 5 do got[i] = perform(ch:get_op()) end end)
  turns(10)
  t.is_deeply(got, { 1, 2, 3, 4, 5 }, "bounded channel keeps FIFO order")
  t.is_deeply(done, { 1, 2, 3, 4, 5 }, "all puts completed")
end

-- unbounded buffer never blocks a put
do
  local ch = chan.new(math.huge)
  local n, ok = 20000, true
  spawn(function()
    for i = 1, n do perform(ch:put_op(i)) end
    for i = 1, n do if perform(ch:get_op()) ~= i then ok = false end end
    ok = ok and ch:buffered() == 0
  end)
  turns(1)
  t.ok(ok, "20000 puts into an unbounded channel in one turn, read back in order")
end

---------------------------------------------------------------------------
-- choices: a losing get consumes nothing, a losing put delivers nothing
do
  local ch, other = chan.new(), chan.new()
  local which
  spawn(function()
    which = { perform(op.choice(ch:get_op():wrap(function(v) return "ch", v end),
                                other:get_op():wrap(function(v) return "other", v end))) }
  end)
  turns(1)
  spawn(function() perform(other:put_op(42)) end)
  turns(2)
  t.is_deeply(which, { "other", 42 }, "the choice took the ready arm")
  local put_done = false
  spawn(function() perform(ch:put_op("x")); put_done = true end)
  turns(2)
  t.is(put_done, false, "a put is not delivered to the stale losing get")
  local got
  spawn(function() got = perform(ch:get_op()) end)
  turns(2)
  t.is(got, "x", "a later get receives it")
  t.ok(put_done, "and the put completes")
end

do
  local ch, other = chan.new(), chan.new()
  local which
  spawn(function()
    which = { perform(op.choice(ch:put_op("lost"):wrap(function() return "put" end),
                                other:get_op():wrap(function(v) return "other", v end))) }
  end)
  turns(1)
  spawn(function() perform(other:put_op(7)) end)
  turns(2)
  t.is_deeply(which, { "other", 7 }, "the get arm won")
  local got
  spawn(function() got = t.pack(perform(ch:get_op())) end)
  turns(2)
  t.is(got, nil, "the losing put delivered nothing (get still blocked)")
  spawn(function() perform(ch:put_op("real")) end)
  turns(2)
  t.is_deeply(got, { n = 1, "real" }, "the next get receives the real value")
end

-- a losing put into a full bounded channel does not land in the buffer
do
  local ch, other = chan.new(1), chan.new()
  local which
  spawn(function()
    perform(ch:put_op("first"))
    which = perform(op.choice(ch:put_op("lost"):wrap(function() return "put" end),
                              other:get_op():wrap(function() return "other" end)))
  end)
  turns(1)
  spawn(function() perform(other:put_op()) end)
  turns(2)
  t.is(which, "other", "the get arm won")
  local a, b = {}, nil
  spawn(function()
    a[1] = perform(ch:get_op())
    b = t.pack(perform(op.choice(ch:get_op(), other:get_op():wrap(function() return "empty" end))))
  end)
  spawn(function() perform(other:put_op()) end)
  turns(3)
  t.is(a[1], "first", "buffer held only the first value")
  t.is_deeply(b, { n = 1, "empty" }, "the losing put left nothing in the buffer")
end

-- swap: two fibers each racing put and get on the same channel pair up
-- (one puts, the other gets); a fiber never matches its own registration
do
  local ch = chan.new()
  local res = {}
  for _, name in ipairs({ "a", "b" }) do
    runtime.spawn_raw(function()
      res[name] = t.pack(perform(op.choice(
        ch:put_op(name):wrap(function() return "put" end),
        ch:get_op():wrap(function(v) return "got", v end))))
    end)
  end
  turns(3)
  local ok = (res.a and res.b) and (
    (res.a[1] == "put" and res.b[1] == "got" and res.b[2] == "a") or
    (res.b[1] == "put" and res.a[1] == "got" and res.a[2] == "b"))
  t.ok(ok, "one fiber's put matched the other's get (either pairing)")
  local lone
  runtime.spawn_raw(function()
    lone = perform(op.choice(ch:put_op(1):wrap(function() return "put" end),
                             ch:get_op():wrap(function() return "got" end)))
  end)
  turns(2)
  t.is(lone, nil, "alone, put and get on one channel do not match each other")
  runtime.spawn_raw(function() perform(ch:put_op(2)) end)
  turns(2)
  t.is(lone, "got", "a second fiber completes it")
end

-- ready arms in the try phase: exactly one wins, the other is untouched
do
  local a, b = chan.new(1), chan.new(1)
  local res
  spawn(function()
    perform(a:put_op("A")); perform(b:put_op("B"))
    res = perform(op.choice(a:get_op(), b:get_op()))
  end)
  turns(1)
  t.ok(res == "A" or res == "B", "one ready get won")
  t.is(a:buffered() + b:buffered(), 1, "the other buffered value is still there")
end

---------------------------------------------------------------------------
-- bounded memory: 10^5 losing choices keep Lua memory flat
do
  local ch, tick = chan.new(), chan.new()
  local n1, n2 = 10000, 100000
  local mem = {}
  spawn(function()
    for i = 1, n2 do
      perform(op.choice(ch:get_op(), tick:get_op()))
      if i == n1 or i == n2 then
        fx.sample_mem(mem)
      end
    end
  end)
  spawn(function()
    for _ = 1, n2 do perform(tick:put_op(true)) end
  end)
  local guard = 0
  while #mem < 2 and guard < 10 * n2 do turns(1); guard = guard + 1 end
  t.is(#mem, 2, "10^5 choices completed")
  t.ok(mem[2] - mem[1] < 64, ("memory flat across 9*10^4 losing gets (%.1f KB -> %.1f KB)")
    :format(mem[1] or -1, mem[2] or -1))
  local p1, p2 = chan.new(), chan.new()
  mem = {}
  spawn(function()
    for i = 1, n2 do
      perform(op.choice(p1:put_op(i), p2:get_op()))
      if i == n1 or i == n2 then
        fx.sample_mem(mem)
      end
    end
  end)
  spawn(function()
    for _ = 1, n2 do perform(p2:put_op(true)) end
  end)
  guard = 0
  while #mem < 2 and guard < 10 * n2 do turns(1); guard = guard + 1 end
  t.ok(#mem == 2 and mem[2] - mem[1] < 64, ("memory flat across 9*10^4 losing puts (%.1f KB -> %.1f KB)")
    :format(mem[1] or -1, mem[2] or -1))
end

---------------------------------------------------------------------------
-- scope-aware forms under fibers.run: cancellation by a timeout and a scope
local res = t.pack(fibers.run(function()
  local out = {}
  local ch = chan.new()
  -- timeout: the get loses to sleep_op; a later put finds no receiver
  local which = fibers.named_choice{ data = ch:get_op(), timeout = sleep.sleep_op(0.02) }
  out[#out + 1] = which
  out[#out + 1] = fibers.perform(op.choice(
    ch:put_op("p"):wrap(function() return "delivered" end),
    sleep.sleep_op(0.02):wrap(function() return "no receiver" end)))
  -- scope cancellation of a blocked get and a blocked put
  local after = {}
  local st, err = fibers.run_scope(function(s)
    s:spawn(function() local v = ch:get(); after[#after + 1] = "get returned " .. tostring(v) end)
    s:spawn(function() chan.new():put(1); after[#after + 1] = "put returned" end)
    sleep.sleep(0.02)
    s:cancel("stop")
  end)
  out[#out + 1] = st
  out[#out + 1] = err
  out[#out + 1] = #after
  out[#out + 1] = fibers.perform(op.choice(
    ch:put_op("q"):wrap(function() return "delivered" end),
    sleep.sleep_op(0.02):wrap(function() return "no receiver" end)))
  -- plain ch:put / ch:get inside fibers
  local b = chan.new()
  fibers.spawn(function() b:put("hello") end)
  out[#out + 1] = b:get()
  return unpack(out)
end))
t.is_deeply(res, { n = 7, "timeout", "no receiver", "cancelled", "stop", 0, "no receiver", "hello" },
  "timeout and scope cancellation leave no stale receivers; put/get perform")

t.done()
