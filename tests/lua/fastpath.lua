-- tests/lua/fastpath.lua - the C hot paths behind the public API
-- (src/lua/lfiber.c, src/lua/lchan.c): ch:put/ch:get and
-- sleep.sleep for fibers of ok scopes, fibers resumed by the C scheduler,
-- scope fibers whose coroutine is made when they first run and recycled
-- once they return (Lua 5.4), and the C exit of a returning scope fiber.
-- Each fast path must behave exactly as the general perform does.
local t = require 'tap'
local fibers = require 'fibers'
local op = require 'fibers.op'
local chan = require 'fibers.channel'
local sleep = require 'fibers.sleep'
local scope = require 'fibers.scope'
local runtime = require 'fibers.runtime'

local sched = runtime.current_scheduler
local pcall = scope._pcall  -- yield-safe on Lua 5.1
local unpack = table.unpack or unpack

local function timers() local _, n = sched:counts(); return n end
local is54 = _VERSION == "Lua 5.4"

---------------------------------------------------------------------------
-- channels: FIFO across fast-path and choice waiters, nil values, buffer
-- refill from a blocked putter, capacity/buffered
local res = t.pack(fibers.run(function()
  local out = {}
  local ch = chan.new()
  -- three receivers: fast get, choice get, fast get; FIFO delivery
  local got = {}
  fibers.spawn(function() local v = ch:get(); got[#got + 1] = "a:" .. tostring(v) end)
  fibers.spawn(function()
    local v = fibers.perform(op.choice(ch:get_op(), op.never()))
    got[#got + 1] = "b:" .. tostring(v)
  end)
  fibers.spawn(function() local v = ch:get(); got[#got + 1] = "c:" .. tostring(v) end)
  sleep.sleep(0.001)
  ch:put(1); ch:put(nil); ch:put(3)
  sleep.sleep(0.001)
  out[1] = table.concat(got, " ")
  -- blocked putters (fast and op) refill a buffered channel in order
  local b = chan.new(1)
  b:put("x")
  fibers.spawn(function() b:put("y") end)
  fibers.spawn(function() fibers.perform(b:put_op("z")) end)
  sleep.sleep(0.001)
  out[2] = b:buffered()
  out[3] = b:get() .. b:get() .. b:get()
  out[4] = b:capacity()
  out[5] = chan.new(math.huge):capacity() == math.huge
  return unpack(out, 1, 5)
end))
t.is_deeply(res, { n = 5, "a:1 b:nil c:3", 1, "xyz", 1, true },
  "fast and op waiters share one FIFO; nil passes; putters refill the buffer")

-- a fast-path get in a scope that is not ok raises like perform; a raw
-- fiber (no scope) takes the general path
res = t.pack(fibers.run(function()
  local ch = chan.new(1)
  ch:put(7)
  local st, err = fibers.run_scope(function(s)
    s:cancel("halt")
    ch:get()                      -- scope not ok: raises even though ready
  end)
  local left = ch:buffered()
  local raw
  runtime.spawn_raw(function() raw = ch:get() end)
  sleep.sleep(0.001)
  return st, err, left, raw
end))
t.is_deeply(res, { n = 4, "cancelled", "halt", 1, 7 },
  "get in a cancelled scope raises without consuming; raw fibers still get")

t.raises(function() chan.new():get() end, "must be called from inside a fiber",
  "ch:get outside a fiber raises as perform does")

-- a blocked fast-path put/get cancelled by its scope leaves no waiter
-- behind: a later put finds no receiver
res = t.pack(fibers.run(function()
  local ch = chan.new()
  local st = fibers.run_scope(function(s)
    s:spawn(function() ch:get() end)
    s:spawn(function() ch:put("lost") end)
    sleep.sleep(0.001)
    s:cancel("stop")
  end)
  local r = fibers.perform(op.choice(ch:put_op("q"):wrap(function() return "delivered" end),
                                      op.always("no receiver")))
  local g = fibers.perform(op.choice(ch:get_op(), op.always("empty")))
  return st, r, g
end))
t.is_deeply(res, { n = 3, "cancelled", "no receiver", "empty" },
  "cancelled fast-path waiters are gone from both queues")

---------------------------------------------------------------------------
-- sleep: fast path timers are cancelled when the scope wins; sleep(0),
-- negative and math.huge; raw fibers take the general path
res = t.pack(fibers.run(function()
  local out = {}
  local before = timers()
  local st, err = fibers.run_scope(function(s)
    s:spawn(function() sleep.sleep(3600) end)
    s:spawn(function() sleep.sleep(math.huge) end)
    sleep.sleep(0.001)
    out.armed = timers() - before
    s:cancel("bye")
  end)
  out.st, out.err = st, err
  out.left = timers() - before
  local t0 = runtime.monotime()
  sleep.sleep(0); sleep.sleep(-1)
  out.zero = runtime.monotime() - t0 < 0.5
  local woke = false
  runtime.spawn_raw(function() sleep.sleep(0.001); woke = true end)
  sleep.sleep(0.01)
  out.raw = woke
  local ok, e = pcall(sleep.sleep, "1")
  out.bad = not ok and tostring(e):match("sleep: expected number, got string") ~= nil
  return out
end))
t.is_deeply(res[1], { armed = 1, st = "cancelled", err = "bye", left = 0, zero = true,
                      raw = true, bad = true },
  "cancelled sleeps leave no timer (math.huge arms none); sleep(0/-1) returns; raw fibers sleep")

-- virtual time: a fast-path sleeper due at t has run when run(t) returns
do
  local woke = {}
  local s = scope.root():child()
  local t0 = runtime.monotime()
  s:spawn(function() sleep.sleep(5); woke[#woke + 1] = "a" end)
  s:spawn(function() sleep.sleep(2); woke[#woke + 1] = "b" end)
  sched:run(t0)
  t.is(timers(), 2, "two fast-path timers armed")
  sched:run(t0 + 2.5)
  t.is_deeply(woke, { "b" }, "sleep(2) has run when run(t0 + 2.5) returns")
  sched:run(t0 + 6)
  t.is_deeply(woke, { "b", "a" }, "sleep(5) next, in deadline order")
  t.is(timers(), 0, "no timer left")
  s:cancel("done")
  sched:run(t0 + 7)
end

---------------------------------------------------------------------------
-- fibers: lazy coroutines, tags, recycling, the C exit
res = t.pack(fibers.run(function()
  local out = {}
  local me = runtime.current_fiber()
  me.tag = "T"
  local f
  local st = fibers.run_scope(function(s)
    s:spawn(function(sc) out.scope_arg = (sc == s); out.tag = runtime.current_fiber().tag end)
    -- a fiber's co exists while it runs and is a fresh, hook-free coroutine
    s:spawn(function()
      f = runtime.current_fiber()
      out.co_running = coroutine.running() == f.co
      -- (per-coroutine hooks: 5.4; LuaJIT's are global)
      if is54 then debug.sethook(f.co, function() end, "", 1000) end
    end)
  end)
  out.st = st
  out.dead = f.dead
  -- a later fiber may reuse the coroutine: it must not inherit the hook
  fibers.run_scope(function(s)
    s:spawn(function()
      out.hook = not is54 or debug.gethook(coroutine.running()) == nil
    end)
  end)
  me.tag = nil
  return out
end))
local r = res[1]
t.ok(r.scope_arg and r.tag == "T" and r.co_running and r.dead and r.hook and r.st == "ok",
  "spawned fibers get their scope and tag, run on their own coroutine, and a reused "
  .. "coroutine carries no hook")
if is54 then
  -- the dead fiber no longer reaches the coroutine it gave back
  local f2
  fibers.run(function()
    fibers.run_scope(function(s) s:spawn(function() f2 = runtime.current_fiber() end) end)
  end)
  t.is(f2.co, nil, "a returned fiber's coroutine is recycled (fiber.co cleared)")
else
  t.ok(true, "coroutine recycling is 5.4 only")
end

-- many fibers returning while others remain: the scope joins only once
-- all have run (the C exit decrements, the last one wakes the joiner)
res = t.pack(fibers.run(function()
  local n = 0
  local st = fibers.run_scope(function(s)
    for _ = 1, 1000 do s:spawn(function() n = n + 1 end) end
    for _ = 1, 10 do s:spawn(function() sleep.sleep(0.001); n = n + 1 end) end
  end)
  return st, n
end))
t.is_deeply(res, { n = 2, "ok", 1010 }, "a scope joins after all 1010 fibers returned")

-- errors still reach the scope from fibers started lazily
res = t.pack(fibers.run(function()
  local st, err = fibers.run_scope(function(s)
    s:spawn(function() error("boom", 0) end)
    s:spawn(function() sleep.sleep(1) end)
  end)
  return st, err
end))
t.is_deeply(res, { n = 2, "failed", "boom" }, "a failing lazily-started fiber fails its scope")

---------------------------------------------------------------------------
-- lazy scope fibers (lfiber.c fl_lazy_run): a fiber spawned with nothing
-- to inherit has no table until something asks for it; then it is one
-- table for its whole life, with its scope and coroutine
res = t.pack(fibers.run(function()
  local out = {}
  fibers.run_scope(function(s)
    s:spawn(function(s2)
      local f = runtime.current_fiber()
      out[1] = type(f) == "table" and f == runtime.current_fiber()
      out[2] = f.scope == s and s2 == s and f._exit == s
      out[3] = f.co == coroutine.running()
      -- asked from a coroutine nested in the fiber: the same fiber
      local g = coroutine.wrap(function() return runtime.current_fiber() end)()
      out[4] = g == f
      sleep.sleep(0.001)
      out[5] = runtime.current_fiber() == f and not f.dead
    end)
    -- made from a nested coroutine first: co is still the fiber's own
    s:spawn(function()
      local co = coroutine.running()
      local g = coroutine.wrap(function() return runtime.current_fiber() end)()
      out[6] = g.co == co and runtime.current_fiber() == g
    end)
  end)
  return unpack(out, 1, 6)
end))
t.is_deeply(res, { n = 6, true, true, true, true, true, true },
  "a lazy fiber's table is made once, on demand, with its scope and coroutine")

-- the run queue counts a lazy record as one runnable task
res = t.pack(fibers.run(function()
  local before = sched:counts()
  fibers.run_scope(function(s)
    for _ = 1, 3 do s:spawn(function() end) end
    res = sched:counts()
  end)
  return res - before, (sched:counts())
end))
t.is_deeply(res, { n = 2, 3, 0 }, "sched:counts() counts each queued lazy fiber once")

-- a tag is inherited (the eager path), and a lazy fiber spawning is fine
res = t.pack(fibers.run(function()
  local tags = {}
  fibers.run_scope(function(s)
    runtime.current_fiber().tag = "T"
    s:spawn(function() tags[1] = runtime.current_fiber().tag end)
    runtime.current_fiber().tag = nil
    s:spawn(function()
      s:spawn(function() tags[2] = runtime.current_fiber().tag or "none" end)
    end)
    sleep.sleep(0.001)   -- (a joining scope admits no new fiber)
  end)
  return tags[1], tags[2]
end))
t.is_deeply(res, { n = 2, "T", "none" }, "spawned fibers inherit the spawner's tag, lazy ones have none")

-- resume hooks see fiber tables for every fiber
do
  local seen, bad = 0, 0
  runtime.set_resume_hook(function(f)
    if type(f) == "table" and f.co then seen = seen + 1 else bad = bad + 1 end
  end, nil)
  fibers.run(function()
    fibers.run_scope(function(s)
      for _ = 1, 5 do s:spawn(function() end) end
    end)
  end)
  runtime.set_resume_hook(nil, nil)
  t.ok(seen >= 6 and bad == 0, "resume hooks get a fiber table for each resume (" .. seen .. ", " .. bad .. ")")
end

-- a lazy fiber that raises a non-string value fails its scope with it
res = t.pack(fibers.run(function()
  local st, err = fibers.run_scope(function(s)
    s:spawn(function() error({ code = 7 }) end)
  end)
  return st, (tostring(err):match("^table: "))
end))
t.is_deeply(res, { n = 2, "failed", "table: " }, "a lazy fiber raising a table fails its scope with it (as text)")

-- Scope:spawn (C): its argument check points at the caller, extra
-- arguments and closed scopes take the general form
res = t.pack(fibers.run(function()
  local out = {}
  fibers.run_scope(function(s)
    local ok, err = pcall(s.spawn, s, 42)
    out[1] = not ok and err:match("spawn: expected function, got number$")
    ok, err = pcall(function() s:spawn() end)
    out[2] = not ok and err:match("^[^:]+:%d+: (.*)$")
    local got
    out[3] = s:spawn(function(s2, a, b) got = (s2 == s) and a + b end, 2, 3)
    sleep.sleep(0.001)
    out[4] = got
    s:cancel("stop")
    out[5] = table.concat({ tostring((s:spawn(function() end))), select(2, s:spawn(function() end)) }, " ")
  end)
  return unpack(out, 1, 5)
end))
t.is_deeply(res, { n = 5, "spawn: expected function, got number",
  "spawn: expected function, got nil", true, 5, "false scope is cancelled" },
  "Scope:spawn checks fn at the caller; extra arguments and refusals work")

---------------------------------------------------------------------------
-- fibers.perform (C on Lua 5.3+) and op.choice (C): the same checks and
-- messages, wraps, blocking, fairness and the general forms
do
  local where = "^[^:]+:%d+: "
  local ok, err = pcall(fibers.perform, op.always(1))
  t.ok(not ok and err:match("fibers.perform: must be called from inside a fiber$"),
    "perform outside a fiber raises: " .. tostring(err))
  ok, err = pcall(function() local c = op.choice(op.never(), 42); return c end)
  t.ok(not ok and err:match(where .. "choice: expected op, got number$"),
    "choice names a bad arm at the caller: " .. tostring(err))
  ok, err = pcall(function() local c = op.choice("x"); return c end)
  t.ok(not ok and err:match(where .. "choice: expected op, got string$"),
    "choice of one bad arm raises at the caller: " .. tostring(err))
  local c2 = op.choice(op.always(1), op.never())
  local nested = op.choice(c2, op.always(3))
  t.is_deeply({ c2.k == nested.k, #c2, #nested, c2.flat, nested.flat }, { true, 2, 3, true, true },
    "two primitive arms make a flat choice; nested choices are flattened")
end

res = t.pack(fibers.run(function()
  local out = {}
  local ok, err = pcall(function() local v = fibers.perform(42); return v end)
  out[1] = not ok and err:match("^[^:]+:%d+: (perform: expected op, got number)$") or err
  -- a wrap of the winning leaf, also one that blocks
  out[2] = fibers.perform(op.choice(op.always(20):wrap(function(v) return v + 1 end), op.never()))
  local ch = chan.new(1)
  ch:put(5)
  out[3] = fibers.perform(ch:get_op():wrap(function(v) sleep.sleep(0.001); return v * 2 end))
  -- nothing ready: the choice blocks; the sleep wins
  out[4] = fibers.perform(op.choice(ch:get_op(), sleep.sleep_op(0.001):wrap(function() return "timeout" end)))
  -- sleep_op(0) is ready in the try phase (C try), sleep_op(-1) too
  out[5] = select('#', fibers.perform(op.choice(sleep.sleep_op(0), op.never())))
  out[6] = select('#', fibers.perform(sleep.sleep_op(-1)))
  -- fairness: both arms always ready, each wins about half the time
  local a, b = 0, 0
  local both = op.choice(op.always("a"), op.always("b"))
  for _ = 1, 2000 do
    if fibers.perform(both) == "a" then a = a + 1 else b = b + 1 end
  end
  out[7] = a > 600 and b > 600
  -- a compiled op (guard) and a raw fiber (no scope) take the general form
  out[8] = fibers.perform(op.guard(function() return op.always("g") end))
  runtime.spawn_raw(function() out[9] = fibers.perform(op.choice(op.always("raw"), op.never())) end)
  -- a lazily started fiber performs without asking for its fiber first
  fibers.run_scope(function(s)
    s:spawn(function()
      ch:put(9)
      out[10] = fibers.perform(op.choice(ch:get_op(), sleep.sleep_op(1)))
    end)
  end)
  sleep.sleep(0.001)
  return unpack(out, 1, 10)
end))
t.is_deeply(res, { n = 10, "perform: expected op, got number", 21, 10, "timeout", 0, 0, true,
  "g", "raw", 9 }, "fibers.perform: checks, wraps (also blocking), blocking choice, C tries, fairness, general forms")

-- a perform in a cancelled scope raises before trying anything
res = t.pack(fibers.run(function()
  local ch = chan.new(1)
  ch:put("kept")
  local st, err = fibers.run_scope(function(s)
    s:cancel("stop")
    fibers.perform(op.choice(ch:get_op(), sleep.sleep_op(1)))
  end)
  return st, err, ch:get()
end))
t.is_deeply(res, { n = 3, "cancelled", "stop", "kept" },
  "perform in a cancelled scope raises the cancellation and takes nothing")

-- a perform that blocked (C on 5.3+): woken by the scope's cancellation
-- (the losing sleep's timer cleaned up), by a cancelled task (its reason
-- raised), by a block half completing at once, by a wrap of the winner
res = t.pack(fibers.run(function()
  local out = {}
  local ch = chan.new()
  local st, err = fibers.run_scope(function(s)
    s:spawn(function()
      fibers.perform(op.choice(ch:get_op(), sleep.sleep_op(10)))
    end)
    sleep.sleep(0.001)
    out[1] = timers()
    s:cancel("bye")
  end)
  out[2], out[3], out[4] = st, err, timers()
  local task
  local leaf = op.new_primitive(nil, function() return false end,
    function(susp, tok) task = susp:complete_task(tok, "never") end)
  local ok, e = pcall(function()
    fibers.spawn(function() sleep.sleep(0.001); task:cancel("why") end)
    local v = fibers.perform(op.choice(leaf, op.never()))
    return v
  end)
  out[5] = not ok and e
  local now = op.new_primitive(nil, function() return false end,
    function(susp, tok) susp:complete(tok, "at once") end)
  out[6] = fibers.perform(op.choice(op.never(), now))
  out[7] = fibers.perform(now:wrap(function(v) sleep.sleep(0.001); return v .. "!" end))
  return unpack(out, 1, 7)
end))
t.is_deeply(res, { n = 7, 1, "cancelled", "bye", 0, "why", "at once", "at once!" },
  "a blocked perform wakes on cancellation (timer cleaned), task cancel, at-once completion, with wraps")

-- fiber:resume of a fiber suspended in a yield puts the values on its
-- coroutine's stack at once (_n < 0): any number, nils kept, scheduled()
-- until it runs, a second resume before it ran still refused
res = t.pack(fibers.run(function()
  local out = {}
  local f
  runtime.spawn_raw(function()
    f = runtime.current_fiber()
    out[1] = t.pack(runtime.suspend(function() end))
    out[2] = t.pack(runtime.suspend(function() end))
  end)
  sleep.sleep(0.001)
  f:resume(1, nil, 3, nil, 5)
  out[3] = f:scheduled()
  out[4] = select(2, pcall(f.resume, f, "again")):match("resumed twice") ~= nil
  sleep.sleep(0.001)
  out[5] = f:scheduled()
  f:resume()
  sleep.sleep(0.001)
  return unpack(out, 1, 5)
end))
t.is_deeply(res, { n = 5, { n = 5, 1, nil, 3, nil, 5 }, { n = 0 }, true, true, false },
  "resume values of a suspended fiber: all kept, scheduled until it runs, no double resume")

-- a fiber blocking in ch:get/ch:put/sleep reuses one suspension and
-- its entry in the scope's cancel queue (x[4]): the queue stays small
-- however often it blocks, cancellation still wakes it, and the entries
-- of fibers that finished do not accumulate
res = t.pack(fibers.run(function()
  local out = {}
  local st, err = fibers.run_scope(function(s)
    local ch = chan.new()
    s:spawn(function() for i = 1, 1000 do ch:put(i) end end)
    local sum = 0
    for _ = 1, 1000 do sum = sum + ch:get() end
    out[1] = sum
    out[2] = op._waitq_len(s._cw) <= 4
    for _ = 1, 5 do sleep.sleep(0.0001) end
    out[3] = op._waitq_len(s._cw) <= 4
    -- a fiber that blocked (and was woken) many times is still cancelled
    s:spawn(function()
      for i = 1, 10 do ch:put(i) end
      ch:put("never taken")
    end)
    for _ = 1, 10 do ch:get() end
    sleep.sleep(0.001)
    -- bursts of 200 fibers that block once and finish: the entries of
    -- finished fibers do not pile up (at most about one burst's worth)
    local w = chan.new()
    local lens = {}
    for b = 1, 4 do
      for _ = 1, 200 do s:spawn(function() w:get() end) end
      sleep.sleep(0.001)
      lens[b] = op._waitq_len(s._cw)
      for i = 1, 200 do w:put(i) end
      sleep.sleep(0.001)
    end
    out[4] = lens[1] >= 400
    out[5] = lens[4] <= 2 * 200 + 16 and op._waitq_len(s._cw) <= 2 * 200 + 16
    s:cancel("stop")
  end)
  out[6], out[7], out[8] = st, err, timers()
  return unpack(out, 1, 8)
end))
t.is_deeply(res, { n = 8, 500500, true, true, true, true, "cancelled", "stop", 0 },
  "fast-path blocks reuse one suspension and cancel entry; cancel still wakes; finished fibers' entries do not pile up")

---------------------------------------------------------------------------
-- wait queues (C): FIFO wake of live entries only; stale entries at the
-- tail are dropped at the next push
do
  local q = op._waitq()
  local out = {}
  local function waiter(name, timeout)
    return function()
      local leaf = op.new_primitive(nil, function() return false end,
        function(s, tok) op._waitq_push(q, s, tok) end)
      local v = timeout and op.perform_raw(op.choice(leaf, sleep.sleep_op(timeout):wrap(function() return "timeout" end)))
                or op.perform_raw(leaf)
      out[#out + 1] = name .. "=" .. tostring(v)
    end
  end
  local lens = {}
  fibers.run(function()
    runtime.spawn_raw(waiter("A"))
    runtime.spawn_raw(waiter("B", 0.001))
    runtime.spawn_raw(waiter("C"))
    sleep.sleep(0.02)                       -- B timed out: a stale entry in the middle
    lens[1] = op._waitq_len(q)
    runtime.spawn_raw(waiter("D", 0.001))
    sleep.sleep(0.02)                       -- D timed out: a stale entry at the tail
    lens[2] = op._waitq_len(q)
    runtime.spawn_raw(waiter("E"))
    sleep.sleep(0.001)
    lens[3] = op._waitq_len(q)              -- D's entry replaced by E's
    op._waitq_wake(q, "go")
    lens[4] = op._waitq_len(q)
    sleep.sleep(0.001)
  end)
  t.is_deeply(lens, { 6, 8, 8, 0 }, "stale tail entries are trimmed at push; wake empties the queue")
  t.is(table.concat(out, " "), "B=timeout D=timeout A=go C=go E=go", "wake completes live entries in FIFO order")
end

---------------------------------------------------------------------------
-- fiber records (src/lua/lfrec.c, Lua 5.4; the same behaviour elsewhere):
-- FIFO across the channel's C ring (8 waiters) and its table, with choice
-- waiters between; cancelled waiters skipped; a blocked put's value is
-- taken from the putter or not at all; scheduled(); a fiber that already
-- blocked (its scope check cached) still raises once its scope is
-- cancelled, even on a ready channel; a raw resume ends a block
res = t.pack(fibers.run(function()
  local out = {}
  local ch = chan.new()
  local got = {}
  for i = 1, 12 do
    if i == 5 or i == 10 then
      fibers.spawn(function()
        local v = fibers.perform(op.choice(ch:get_op(), op.never()))
        got[#got + 1] = i .. "c=" .. tostring(v)
      end)
    else
      fibers.spawn(function() local v = ch:get(); got[#got + 1] = i .. "=" .. tostring(v) end)
    end
  end
  sleep.sleep(0.001)
  for v = 1, 12 do ch:put(v) end
  sleep.sleep(0.001)
  out[1] = table.concat(got, " ")
  -- waiters cancelled while in the ring or the table are skipped
  got = {}
  local st = fibers.run_scope(function(s)
    for i = 1, 10 do s:spawn(function() local v = ch:get(); got[#got + 1] = "x" .. i .. "=" .. tostring(v) end) end
    sleep.sleep(0.001)
    s:cancel("gone")
  end)
  for i = 1, 3 do fibers.spawn(function() local v = ch:get(); got[#got + 1] = "y" .. i .. "=" .. tostring(v) end) end
  sleep.sleep(0.001)
  ch:put("p"); ch:put(nil); ch:put("r")
  sleep.sleep(0.001)
  out[2] = st .. " " .. table.concat(got, " ")
  -- a blocked put cancelled: its value is never delivered
  local st2 = fibers.run_scope(function(s)
    s:spawn(function() ch:put("lost") end)
    sleep.sleep(0.001)
    s:cancel("bye")
  end)
  fibers.spawn(function() ch:put("kept") end)
  sleep.sleep(0.001)
  out[3] = st2 .. " " .. tostring(ch:get())
  -- a woken fiber is scheduled() until it runs
  local f
  fibers.spawn(function() f = runtime.current_fiber(); ch:get() end)
  sleep.sleep(0.001)
  ch:put(1)
  out[4] = f:scheduled()
  sleep.sleep(0.001)
  out[5] = f:scheduled()
  -- a fiber whose scope turns not ok raises on its next ch:get/ch:put,
  -- ready or not, and its ok scope check is not kept from before
  local buf = chan.new(4)
  local log = {}
  local st3, err3 = fibers.run_scope(function(s)
    s:spawn(function()
      ch:get()                      -- blocks: binds its record
      log[#log + 1] = "got"
      buf:put(1)
      log[#log + 1] = "put"
      s:cancel("stop")
      local ok, e = pcall(function() return buf:get() end)   -- a value is ready
      log[#log + 1] = tostring(ok) .. ":" .. tostring(scope.is_cancelled(e))
      local ok2 = pcall(function() buf:put(2) end)
      log[#log + 1] = tostring(ok2)
    end)
    sleep.sleep(0.001)
    ch:put("go")
  end)
  out[6] = st3 .. " " .. tostring(err3) .. " " .. table.concat(log, " ") .. " " .. buf:buffered()
  -- a raw resume of a fiber blocked in ch:get ends that block: the next
  -- put goes to the next waiter
  local g
  local raised
  runtime.spawn_raw(function() end)
  fibers.spawn(function()
    g = runtime.current_fiber()
    local ok, e = pcall(function() return ch:get() end)
    raised = not ok and tostring(e):match("unexpected wake%-up") ~= nil
  end)
  sleep.sleep(0.001)
  g:resume("bogus")
  sleep.sleep(0.001)
  local after
  fibers.spawn(function() after = ch:get() end)
  sleep.sleep(0.001)
  ch:put("next")
  sleep.sleep(0.001)
  out[7] = tostring(raised) .. " " .. tostring(after)
  return unpack(out, 1, 7)
end))
t.is_deeply(res, { n = 7,
  "1=1 2=2 3=3 4=4 5c=5 6=6 7=7 8=8 9=9 10c=10 11=11 12=12",
  "cancelled y1=p y2=nil y3=r",
  "cancelled kept",
  true, false,
  "cancelled stop got put false:true false 1",
  "true next" },
  "fiber records: FIFO over ring and table, cancelled waiters skipped, put values, scheduled, scope checks, raw resume")

-- a task that raises in a turn: the fibers woken by a channel after it
-- still run, in order, in the next turn (queued records are salvaged)
do
  local root = scope.root()
  local ch = chan.new()
  local order = {}
  for i = 1, 3 do root:spawn(function() ch:get(); order[#order + 1] = i end) end
  sched:run()                                   -- all three block
  root:spawn(function()
    sched:schedule(function() error("task boom", 0) end)
    for i = 1, 3 do ch:put(i) end
    order[#order + 1] = "p"
  end)
  sched:run()                                   -- the putter runs
  local ok, err = pcall(sched.run, sched)       -- the task raises first
  local before = table.concat(order, ",")
  sched:run()                                   -- then the salvaged fibers
  t.is_deeply({ ok, err, before, table.concat(order, ",") },
    { false, "task boom", "p", "p,1,2,3" },
    "fibers woken after a raising task run in the next turn, in order")
end

-- fiber records with resume hooks set (the hooks get the fiber table at
-- each resume of a blocked fiber), sleeps and channel blocks mixed in one
-- fiber, and current_fiber() the same table before and after blocking
res = t.pack(fibers.run(function()
  local ch = chan.new()
  local enters, same = 0, true
  local f
  fibers.spawn(function()
    f = runtime.current_fiber()
    for i = 1, 3 do
      sleep.sleep(0.0005)
      ch:put(i)
      same = same and runtime.current_fiber() == f
    end
  end)
  sleep.sleep(0.0001)
  runtime.set_resume_hook(function(g) if g == f then enters = enters + 1 end end, nil)
  local sum = 0
  for _ = 1, 3 do sum = sum + ch:get() end
  sleep.sleep(0.002)
  runtime.set_resume_hook(nil, nil)
  return sum, same, enters >= 3, f:scheduled()
end))
t.is_deeply(res, { n = 4, 6, true, true, false },
  "blocked fibers resume through the hooks with their table; sleep and channel blocks mix")

-- a fiber whose record is registered with one scope, then runs another
-- scope's finaliser (run_finalisers moves it there): a block in the
-- finaliser runs under that scope, whose status is frozen once its
-- finalisers started, so a cancel arriving then does not interrupt it
res = t.pack(fibers.run(function()
  local ch = chan.new()
  local out = {}
  local C
  fibers.spawn(function()
    while not out.blocked do sleep.sleep(0.001) end
    sleep.sleep(0.002)
    C:cancel("stop C")
    sleep.sleep(0.002)
    ch:put("after the cancel")
  end)
  fibers.run_scope(function(p)
    p:spawn(function() ch:put(0) end)
    ch:get()                            -- a fast block in p first
    C = p:child()
    C:finally(function()
      out.blocked = true
      local ok, v = pcall(function() return ch:get() end)
      out[1], out[2], out[3] = ok, v, (C:status())
    end)
  end)
  return out[1], out[2], out[3]
end))
t.is_deeply(res, { n = 3, true, "after the cancel", "running" },
  "a fast block in another scope's finaliser is not interrupted by that scope's late cancellation")


---------------------------------------------------------------------------
-- choice and sleep_op values are hash-consed (ops are immutable): the
-- same two primitive arms give the same choice, sleep_op(dt) the same op;
-- neither keeps anything alive, and colliding cache slots stay correct
res = t.pack(fibers.run(function()
  local out = {}
  local ch = chan.new(math.huge)
  local g, s1 = ch:get_op(), sleep.sleep_op(1)
  out[1] = rawequal(op.choice(g, s1), op.choice(g, s1))
  out[2] = rawequal(sleep.sleep_op(1), s1) and not rawequal(sleep.sleep_op(2), s1)
  out[3] = rawequal(op.choice(s1, g), op.choice(g, s1))   -- order matters
  -- non-ops still raise, also for arms that were cached
  out[4] = select(2, pcall(op.choice, "a", "b"))
  out[5] = select(2, pcall(op.choice, g, "b"))
  out[6] = select(2, pcall(sleep.sleep_op, 0 / 0))
  out[7] = select(2, pcall(sleep.sleep_op, "1"))
  -- 200 channels, each raced against the same timeout: every perform
  -- gets its own channel's value whatever slot its choice lands in
  local chans, sum = {}, 0
  for i = 1, 200 do chans[i] = chan.new(1); chans[i]:put(i) end
  for i = 1, 200 do sum = sum + fibers.perform(op.choice(chans[i]:get_op(), s1)) end
  out[8] = sum
  -- a cached choice performed again after its channel emptied blocks,
  -- and its sleep arm wins
  ch:put("v")
  local c = op.choice(ch:get_op(), sleep.sleep_op(0.005))
  out[9] = fibers.perform(c)
  out[10] = fibers.perform(op.choice(ch:get_op():wrap(function() return "got" end),
                                     sleep.sleep_op(0.005):wrap(function() return "slept" end)))
  out[11] = fibers.perform(op.choice(ch:get_op(), sleep.sleep_op(0.005))) -- nil: the sleep
  -- the caches hold their ops weakly
  local weak = setmetatable({}, { __mode = "k" })
  do
    local lone = chan.new()
    weak[lone] = true
    weak[op.choice(lone:get_op(), sleep.sleep_op(12345.5))] = true
  end
  collectgarbage(); collectgarbage()
  out[12] = next(weak) == nil
  return unpack(out, 1, 12)
end))
t.is(res[1], true, "choice(a, b) of the same primitive arms is the same op")
t.is(res[2], true, "sleep_op(dt) is the same op for the same dt only")
t.is(res[3], false, "choice(b, a) is not choice(a, b)")
t.like(res[4], "choice: expected op, got string", "choice of non-ops raises")
t.like(res[5], "choice: expected op, got string", "choice of a cached arm and a non-op raises")
t.like(res[6], "sleep_op: duration is NaN", "sleep_op(NaN) raises")
t.like(res[7], "sleep_op: expected number, got string", "sleep_op of a string raises")
t.is(res[8], 20100, "200 choices over one timeout each get their own channel's value")
t.is_deeply({ res[9], res[10], res[11] }, { "v", "slept" },
  "a performed-again choice blocks when its channel is empty and its sleep wins")
t.is(res[12], true, "the choice and sleep_op caches keep nothing alive")

-- a fiber that never blocked has its scope check cached by its first
-- ready get or perform: a later cancel of its scope still raises at the
-- next one, on a ready channel, and a blocked perform is woken by it
res = t.pack(fibers.run(function()
  local out = {}
  local ch = chan.new(math.huge)
  for i = 1, 10 do ch:put(i) end
  local st, err = fibers.run_scope(function(s)
    out[1] = ch:get() + fibers.perform(op.choice(ch:get_op(), sleep.sleep_op(1)))
    s:cancel("stop")
    out[2] = pcall(fibers.perform, op.choice(ch:get_op(), sleep.sleep_op(1)))
    out[3] = pcall(ch.get, ch)
  end)
  out[4] = st
  out[5] = ch:buffered()
  local e = chan.new()
  local st2 = fibers.run_scope(function(s)
    out[6] = fibers.perform(op.choice(ch:get_op(), sleep.sleep_op(1)))
    s:spawn(function() sleep.sleep(0.002); s:cancel("late") end)
    fibers.perform(op.choice(e:get_op(), sleep.sleep_op(10)))
    out[7] = "not reached"
  end)
  out[8] = st2
  return unpack(out, 1, 8)
end))
t.is_deeply(res, { n = 8, 3, false, false, "cancelled", 8, 3, nil, "cancelled" },
  "a scope check cached by ready gets and performs still sees a cancel; a blocked perform is woken")

t.done()
