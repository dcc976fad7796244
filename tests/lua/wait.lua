-- tests/lua/wait.lua - fibers.wait (doc/library.md §9): the waitset (FIFO per
-- key, O(1) unlink, notify_one/all, sizes, clearing) and waitable (a custom
-- primitive built from register + step; tokens unlinked on abort).
local t = require 'tap'
local fx = require 'fixture'
local fibers = require 'fibers'
local op = require 'fibers.op'
local runtime = require 'fibers.runtime'
local wait = require 'fibers.wait'
local sleep = require 'fibers.sleep'

local unpack, turns = fx.unpack, fx.turns
local perform = op.perform_raw

-- waitset basics
do
  local ws = wait.new_waitset()
  t.ok(ws:is_empty(), "new waitset is empty")
  t.raises(function() ws:add(nil, function() end) end, "key must not be nil", "nil key raises")
  local a = ws:add("k", "A")
  ws:add("k", "B")
  local c = ws:add("k", "C")
  ws:add("j", "J")
  t.is(ws:size(), 4, "size() counts every key")
  t.is(ws:size("k"), 3, "size(key)")
  t.is(ws:is_empty("k"), false, "key k not empty")
  t.is(ws:is_empty("zz"), true, "unknown key is empty")
  t.is(a:unlink(), true, "unlink a linked token")
  t.is(a:unlink(), false, "unlink is idempotent")
  t.is(ws:size("k"), 2, "unlinked task gone")
  t.is(ws:take_one("k"), "B", "take_one is FIFO")
  t.is(c:unlink(), true, "unlink the last one")
  t.is(ws:is_empty("k"), true, "key emptied")
  t.is(ws:take_one("k"), nil, "take_one on an empty key")
  ws:add("k", 1); ws:add("k", 2); ws:add("k", 3)
  t.is_deeply(ws:take_all("k"), { 1, 2, 3 }, "take_all in order")
  t.is_deeply(ws:take_all("k"), {}, "take_all again is empty")
  t.is(ws:clear_key("j"), 1, "clear_key returns the count")
  ws:add(1, "x"); ws:add(2, "y"); local y2 = ws:add(2, "z")
  t.is(ws:clear_all(), 3, "clear_all returns the count")
  t.ok(ws:is_empty() and ws:size() == 0, "empty after clear_all")
  t.is(y2:unlink(), false, "tokens of cleared tasks are no longer linked")
end

-- notify_one / notify_all schedule tasks for the next turn
do
  local ws = wait.new_waitset()
  local log = {}
  for i = 1, 3 do ws:add("k", function() log[#log + 1] = i end) end
  ws:add("k", { run = function() log[#log + 1] = "task" end })
  t.is(ws:notify_one("k"), true, "notify_one found a task")
  t.is_deeply(log, {}, "nothing runs synchronously")
  turns(1)
  t.is_deeply(log, { 1 }, "the oldest task ran next turn")
  t.is(ws:notify_all("k"), 3, "notify_all returns how many")
  turns(1)
  t.is_deeply(log, { 1, 2, 3, "task" }, "the rest ran in order (functions and run-tables)")
  t.is(ws:notify_one("k"), false, "notify_one on an empty key")
end

-- waitable: a counter semaphore built from a waitset
local function semaphore(n)
  local ws = wait.new_waitset()
  local s = { n = n }
  function s.acquire_op()
    return wait.waitable(
      function(task) return ws:add("sem", task) end,
      function()
        if s.n > 0 then s.n = s.n - 1; return true, "acquired" end
        return false
      end)
  end
  function s.release()
    s.n = s.n + 1
    ws:notify_one("sem")
  end
  s.ws = ws
  return s
end

do
  local s = semaphore(1)
  local log = {}
  for i = 1, 3 do
    runtime.spawn_raw(function()
      local v = perform(s.acquire_op())
      log[#log + 1] = i .. v
    end)
  end
  turns(1)
  t.is_deeply(log, { "1acquired" }, "first acquire is ready in the try phase")
  t.is(s.ws:size("sem"), 2, "two waiters registered")
  s.release()
  turns(2)
  t.is_deeply(log, { "1acquired", "2acquired" }, "release wakes the oldest waiter, step yields its values")
  s.release()
  turns(2)
  t.is_deeply(log, { "1acquired", "2acquired", "3acquired" }, "then the next")
  t.is(s.ws:size(), 0, "no registrations left")
end

-- a woken waitable whose step is not ready re-registers
do
  local s = semaphore(0)
  local got
  runtime.spawn_raw(function() got = perform(s.acquire_op()) end)
  turns(1)
  s.ws:notify_all("sem")      -- spurious wake-up
  turns(2)
  t.is(got, nil, "spurious wake-up does not complete")
  t.is(s.ws:size("sem"), 1, "the waiter re-registered")
  s.release()
  turns(2)
  t.is(got, "acquired", "a real release completes it")
end

-- waitable wrap_fn, and the token is unlinked when the op loses
do
  local s = semaphore(0)
  local ws = s.ws
  local o = wait.waitable(function(task) return ws:add("sem", task) end,
    function() if s.n > 0 then s.n = s.n - 1; return true, 5 end return false end,
    function(v) return v * 2 end)
  local r
  local other = semaphore(0)
  runtime.spawn_raw(function()
    r = t.pack(perform(op.choice(o, other.acquire_op():wrap(function() return "other" end))))
  end)
  turns(1)
  t.is(ws:size("sem"), 1, "registered while blocked")
  other.release()
  turns(2)
  t.is_deeply(r, { n = 1, "other" }, "the other arm won")
  t.is(ws:size("sem"), 0, "losing waitable unlinked its token")
  s.release()
  runtime.spawn_raw(function() r = t.pack(perform(o)) end)
  turns(1)
  t.is_deeply(r, { n = 1, 10 }, "wrap_fn applied to step's values")
end

-- scope-aware perform of a waitable: timeout and scope cancellation unlink
local s = semaphore(0)
local res = t.pack(fibers.run(function()
  local out = {}
  out[#out + 1] = fibers.named_choice{ sem = s.acquire_op(), timeout = sleep.sleep_op(0.02) }
  out[#out + 1] = s.ws:size()
  local st, err = fibers.run_scope(function(sc)
    sc:spawn(function() fibers.perform(s.acquire_op()); out[#out + 1] = "should not run" end)
    sleep.sleep(0.01)
    sc:cancel("halt")
  end)
  out[#out + 1] = st
  out[#out + 1] = err
  out[#out + 1] = s.ws:size()
  return unpack(out)
end))
t.is_deeply(res, { n = 5, "timeout", 0, "cancelled", "halt", 0 },
  "timeout and cancellation leave no registrations")

t.done()
