-- bench/performs.lua - doc/quality.md §2 "10^7 performs in one long-lived
-- scope": every perform blocks (a put on an unbuffered channel, and on the
-- other side a get raced against a 10 s sleep, which arms and cancels a
-- timer each time), all in fibers.run's main scope.  value = VmRSS after
-- the loop, ref = VmRSS before it (KiB, after a full GC both times);
-- the target is growth <= 1 MB.
local fibers = require 'fibers'
local chan = require 'fibers.channel'
local sleep = require 'fibers.sleep'
local B = require 'common'

local N = B.n(10000000)
local half = math.floor(N / 2)

local before, after
fibers.run(function()
  local ch = chan.new()
  local get = ch:get_op()
  local choice, perform = fibers.choice, fibers.perform
  -- warm up so that lazily allocated structures exist before "before"
  fibers.spawn(function() for i = 1, 1000 do ch:put(i) end end)
  for _ = 1, 1000 do perform(choice(get, sleep.sleep_op(10))) end
  collectgarbage(); collectgarbage()
  before = B.rss_kb()
  local done = false
  fibers.spawn(function() for i = 1, half do ch:put(i) end; done = true end)
  for _ = 1, half do perform(choice(get, sleep.sleep_op(10))) end
  sleep.sleep(0.001)
  assert(done)
  collectgarbage(); collectgarbage()
  after = B.rss_kb()
end)
B.report("performs_rss", 2 * half, after or 0, "KiB", before or 0)
