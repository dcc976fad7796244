-- tests/lua/regress/002-channel-fast-path.lua - ch:put(v) / ch:get() try
-- the channel directly when the calling fiber's scope is ok (no op built);
-- they must behave exactly like fibers.perform(ch:put_op(v)) /
-- fibers.perform(ch:get_op()): ready values and nil, FIFO hand-off to a
-- waiting receiver, raising (and moving nothing) in a scope that is not ok
-- even when the channel is ready, the outside-a-fiber error, and blocking.
local t = require 'tap'
local fibers = require 'fibers'
local chan = require 'fibers.channel'
local runtime = require 'fibers.runtime'

-- outside any fiber: the same error as fibers.perform
t.raises(function() chan.new(1):put(1) end, "must be called from inside a fiber",
  "put outside a fiber raises")
t.raises(function() chan.new(1):get() end, "must be called from inside a fiber",
  "get outside a fiber raises")

fibers.run(function()
  -- ready put/get on a buffered channel, nil is a value, FIFO order
  local ch = chan.new(3)
  t.is(select('#', ch:put(1)), 0, "ready put yields nothing")
  ch:put(nil)
  ch:put(3)
  t.is(ch:buffered(), 3, "three buffered")
  t.is(select('#', ch:get()), 1, "ready get yields one value")
  local b = ch:get()
  t.is(b, nil, "nil value kept")
  t.is(ch:get(), 3, "FIFO")

  -- put to a waiting receiver hands the value over (receiver blocked first)
  local r = chan.new()
  local got = {}
  fibers.spawn(function() got[#got + 1] = r:get(); got[#got + 1] = r:get() end)
  runtime.yield()
  r:put("a")
  r:put("b")
  runtime.yield(); runtime.yield()
  t.is_deeply(got, { "a", "b" }, "rendezvous through waiting receivers")

  -- get from a waiting sender (sender blocked first)
  local sdone = false
  fibers.spawn(function() r:put("c"); sdone = true end)
  runtime.yield()
  t.is(r:get(), "c", "get takes from a waiting sender")
  runtime.yield()
  t.ok(sdone, "the sender was released")

  -- a cancelled scope: ready ops still raise, nothing moves
  local full = chan.new(2)
  full:put("keep")
  local st, err = fibers.run_scope(function(s)
    s:cancel("stop here")
    local ok1, e1 = pcall(function() full:put("lost") end)
    local ok2 = pcall(function() return full:get() end)
    t.ok(not ok1 and not ok2, "put and get raise in a cancelled scope")
    t.ok(e1 ~= nil, "an error object was raised")
    error(e1, 0)
  end)
  t.is(st, "cancelled", "scope cancelled")
  t.is(err, "stop here", "reason kept")
  t.is(full:buffered(), 1, "nothing was put or taken")
  t.is(full:get(), "keep", "the buffered value is intact")
end)

t.done()
