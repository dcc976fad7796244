-- tests/lua/runtime.lua - fibers.runtime and the core.sched scheduler:
-- turns, FIFO order, timers (synthetic and real time), fd waits on both
-- poller backends, main/stop, deadlock detection, hooks, error handling.
local t = require 'tap'
local fx = require 'fixture'
local core = require 'fibers.core'
local runtime = require 'fibers.runtime'
local sched = runtime.current_scheduler
local monotime = core.sys.monotime

local runner = fx.runner

-- run a Lua snippet in a child interpreter; returns its stdout+stderr
local function child(env, code)
  local f = io.popen(env .. " " .. runner .. " -e '" .. code .. "' 2>&1")
  local out = f:read("*a")
  f:close()
  return out
end

---------------------------------------------------------------- basics
do
  local log = {}
  t.is(runtime.current_fiber(), nil, "no current fiber outside fibers")
  local f = runtime.spawn_raw(function(a, b, ...)
    log[#log + 1] = { a, b, select('#', ...) }
  end, 1, 2, nil, nil)
  t.is(#log, 0, "spawn_raw does not run the fiber synchronously")
  t.is(f:scheduled(), true, "spawned fiber is scheduled")
  sched:run()
  t.is_deeply(log, { { 1, 2, 2 } }, "fiber got its arguments, trailing nils counted")
  t.is(f.dead, true, "finished fiber is dead")
  t.raises(function() f:resume() end, "fibers: resume of a finished fiber", "resume of a dead fiber raises")
end

do -- current_fiber really is the fiber
  local seen
  local f = runtime.spawn_raw(function() seen = runtime.current_fiber() end)
  sched:run()
  t.is(seen, f, "current_fiber() returns the running fiber")
  t.is(runtime.current_fiber(), nil, "and nil again after the turn")
end

do -- FIFO within a turn; scheduled-during-turn runs next turn
  local log = {}
  for i = 1, 3 do
    runtime.spawn_raw(function()
      log[#log + 1] = "a" .. i
      runtime.yield()
      log[#log + 1] = "b" .. i
    end)
  end
  sched:run()
  t.is(table.concat(log, " "), "a1 a2 a3", "turn 1 runs each spawned fiber once, FIFO")
  sched:run()
  t.is(table.concat(log, " "), "a1 a2 a3 b1 b2 b3", "yielded fibers continue next turn, FIFO")
  local order = {}
  sched:schedule(function()
    order[#order + 1] = 1
    sched:schedule(function() order[#order + 1] = 3 end)
  end)
  sched:schedule(setmetatable({}, { __index = { run = function(self) order[#order + 1] = 2 end } }))
  sched:run()
  t.is(table.concat(order, ","), "1,2", "tasks: functions and run-methods; new ones wait a turn")
  sched:run()
  t.is(table.concat(order, ","), "1,2,3", "task scheduled during the turn ran in the next")
end

do -- suspend / resume values
  local got = {}
  local fib
  runtime.spawn_raw(function()
    local function grab(...) got[#got + 1] = { n = select('#', ...), ... } end
    grab(runtime.suspend(function(s, f, x) fib = f; t.is(s, sched, "block_fn gets the scheduler"); t.is(x, "extra", "and extra args") end, "extra"))
    grab(runtime.suspend(function() end))
    grab(runtime.suspend(function() end))
    grab(runtime.suspend(function() end))
  end)
  sched:run()
  t.ok(fib ~= nil, "block_fn got the fiber")
  fib:resume()
  t.raises(function() fib:resume(1) end, "fibers: fiber resumed twice before it ran", "double resume raises")
  sched:run()
  fib:resume("x", nil)
  sched:run()
  fib:resume(1, 2, 3, 4, nil)
  sched:run()
  fib:resume(nil, nil, 3)
  sched:run()
  t.is_deeply(got, { { n = 0 }, { n = 2, "x" }, { n = 5, 1, 2, 3, 4 }, { n = 3, nil, nil, 3 } },
    "suspend returns exactly the values given to resume")
  t.raises(function() runtime.suspend(function() end) end, "fibers: suspend called outside a fiber",
    "suspend outside a fiber raises")
  t.raises(function() runtime.spawn_raw(42) end, "fibers: spawn_raw expects a function", "spawn_raw checks its argument")
end

---------------------------------------------------------------- tags, hooks, errors
do
  local child_tag, top_tag
  local parent = runtime.spawn_raw(function()
    local c = runtime.spawn_raw(function() child_tag = runtime.current_fiber().tag end)
    t.is(c.tag, "task-A", "tag inherited at spawn")
  end)
  parent.tag = "task-A"
  local top = runtime.spawn_raw(function() top_tag = runtime.current_fiber().tag end)
  sched:run(); sched:run()
  t.is(child_tag, "task-A", "child fiber carries the parent's tag")
  t.is(top_tag, nil, "fiber spawned outside fibers has no tag")
  t.is(top.tag, nil, "no tag field")

  local ev = {}
  runtime.set_resume_hook(function(f) ev[#ev + 1] = "enter:" .. tostring(f.name) end,
                          function(f) ev[#ev + 1] = "leave:" .. tostring(f.name) end)
  local f = runtime.spawn_raw(function() ev[#ev + 1] = "body"; runtime.yield(); ev[#ev + 1] = "body2" end)
  f.name = "f"
  sched:run(); sched:run()
  runtime.set_resume_hook(nil)
  runtime.spawn_raw(function() ev[#ev + 1] = "unhooked" end)
  sched:run()
  t.is(table.concat(ev, " "), "enter:f body leave:f enter:f body2 leave:f unhooked",
    "resume hook brackets every resume; nil clears it")

  local errs = {}
  local prev = runtime.set_unscoped_error_handler(function(fb, err) errs[#errs + 1] = { fb, err } end)
  t.is(type(prev), "function", "set_unscoped_error_handler returns the previous handler")
  local bad = runtime.spawn_raw(function() error("boom", 0) end)
  local after = false
  runtime.spawn_raw(function() after = true end)
  sched:run()
  t.is(#errs, 1, "error escaping a raw fiber went to the handler")
  t.is(errs[1][1], bad, "handler got the fiber")
  t.is(errs[1][2], "boom", "and the error")
  t.is(after, true, "other fibers of the turn still ran")
  t.is(bad.dead, true, "failed fiber is dead")
  runtime.set_unscoped_error_handler(nil)
end

do -- default handler: one line on stderr
  local out = child("", "local r = require [[fibers.runtime]]; r.spawn_raw(function() error([[boom]], 0) end); r.current_scheduler:run(); io.stdout:write([[done]])")
  t.is(out, "fibers: uncaught error in fiber: boom\ndone", "default unscoped handler prints one line")
end

do -- a raising task: error propagates, untouched tasks survive in order
  local log = {}
  sched:schedule(function() log[#log + 1] = 1 end)
  sched:schedule(function() error("task failed", 0) end)
  sched:schedule(function() log[#log + 1] = 3 end)
  sched:schedule(function() log[#log + 1] = 4; sched:schedule(function() log[#log + 1] = 6 end) end)
  local ok, err = pcall(sched.run, sched)
  t.is(ok, false, "run() propagates a task's error")
  t.is(err, "task failed", "with its value")
  sched:schedule(function() log[#log + 1] = 5 end)
  sched:run()
  t.is(table.concat(log, ","), "1,3,4,5", "tasks the failed turn had not reached run first")
  sched:run()
  t.is(table.concat(log, ","), "1,3,4,5,6", "then the rest")
  t.raises(function() sched:schedule(nil) end, "fibers: a task must be a function", "nil task raises")
  local inner
  sched:schedule(function() inner = { pcall(sched.run, sched) } end)
  sched:run()
  t.is(inner[1], false, "run() from inside a task raises")
  t.like(inner[2], "fibers: scheduler is already running", "with a clear message")
end

---------------------------------------------------------------- timers, synthetic time
do
  sched:run(100)
  t.is(sched:now(), 100, "run(t) sets the synthetic turn time")
  t.is(runtime.now(), 100, "runtime.now() is the cached turn time")
  local log = {}
  sched:schedule_at_time(103, function() log[#log + 1] = "c" end)
  sched:schedule_at_time(101, function() log[#log + 1] = "a" end)
  local hb = sched:schedule_at_time(102, function() log[#log + 1] = "b" end)
  sched:schedule_at_time(101, function() log[#log + 1] = "a2" end)
  t.is(sched:next_wake_time(), 101, "next_wake_time = earliest deadline")
  local n, nt = sched:counts()
  t.is(nt, 3 + 1, "counts() reports armed timers")
  t.is(sched:cancel_timer(hb), true, "cancel_timer of a pending timer")
  t.is(sched:cancel_timer(hb), false, "cancel_timer is idempotent")
  sched:run(100.5)
  t.is(#log, 0, "nothing due before its deadline")
  sched:run(101)
  t.is(table.concat(log, " "), "a a2", "due at exactly t (deadline <= now), equal deadlines FIFO")
  sched:run(104)
  t.is(table.concat(log, " "), "a a2 c", "cancelled timer never runs")
  t.is(sched:cancel_timer(hb), false, "stale handle stays harmless")
  -- a fiber sleeping through the runtime
  local woke
  runtime.spawn_raw(function()
    runtime.suspend(function(s, f) s:schedule_at_time(s:now() + 5, f) end)
    woke = runtime.now()
  end)
  sched:run(200)
  sched:run(204.9)
  t.is(woke, nil, "sleeper not woken early")
  sched:run(205)
  t.is(woke, 205, "sleeper due at t has run when run(t) returns")
  sched:schedule(function() end)
  t.is(sched:next_wake_time(), sched:now(), "next_wake_time = now when runnable")
  sched:run()
  sched:clear()
  t.is(sched:next_wake_time(), math.huge, "next_wake_time = math.huge when idle")
end

---------------------------------------------------------------- main / stop / deadlock
do
  local t0 = monotime()
  local log = {}
  for _, d in ipairs({ 0.03, 0.01, 0.02 }) do
    local deadline = monotime() + d
    sched:schedule_at_time(deadline, function()
      log[#log + 1] = d
      t.ok(monotime() >= deadline, "timer " .. d .. " did not fire early")
      if #log == 3 then runtime.stop() end
    end)
  end
  runtime.main()
  local el = monotime() - t0
  t.is(table.concat(log, ","), "0.01,0.02,0.03", "real-time timers fire in deadline order")
  t.ok(el >= 0.03 and el < 2.5, "main() slept until the last deadline (" .. el .. " s)")

  local f = runtime.spawn_raw(function() runtime.suspend(function() end) end)
  local ok, err = pcall(runtime.main)
  t.is(ok, false, "main() with every fiber blocked raises")
  t.is(err, "fibers: deadlock: every fiber is blocked and no timer or I/O can wake one",
    "with the deadlock message")
  f:resume()
  sched:schedule(function() runtime.stop() end)
  runtime.main()
  t.is(f.dead, true, "scheduler usable after a deadlock error")
end

do -- clear()
  sched:schedule(function() error("must not run") end)
  sched:schedule_at_time(0, function() error("must not run") end)
  sched:clear()
  local a, b, c = sched:counts()
  t.is(a + b + c, 0, "clear() drops queued tasks, timers and fd waits")
  sched:run()
  t.ok(true, "nothing dropped ran")
end

---------------------------------------------------------------- fd waits, both backends
-- A FIFO opened read-write gives us a real pollable fd from plain Lua; we
-- find its number through /proc.
local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkfifo " .. tmp)
local fifo = assert(io.open(tmp, "r+"))
local function fd_of(path)
  local p = io.popen("for f in /proc/$PPID/fd/*; do [ \"$(readlink $f)\" = '" .. path ..
    "' ] && basename $f; done")
  local s = p:read("*a")
  p:close()
  return tonumber(s:match("%d+"))
end
local ffd = fd_of(tmp)
t.ok(ffd ~= nil, "found the FIFO's fd")
local reg = os.tmpname()
local regf = assert(io.open(reg, "w"))
local rfd = fd_of(reg)

for _, backend in ipairs({ "epoll", "poll" }) do
  local s = core.sched.new(backend)
  t.is(s:backend(), backend, backend .. ": backend in use")
  local log = {}
  local hr = s:wait_fd(ffd, "r", function() log[#log + 1] = "r" end)
  t.is(math.type and math.type(hr) or "integer", "integer", backend .. ": wait_fd returns a handle")
  s:run()
  t.is(#log, 0, backend .. ": empty FIFO is not readable")
  local hw = s:wait_fd(ffd, "w", function() log[#log + 1] = "w" end)
  s:run()
  t.is(table.concat(log, ","), "w", backend .. ": writable fires, readable still waiting")
  fifo:write("x"); fifo:flush()
  s:run()
  t.is(table.concat(log, ","), "w,r", backend .. ": readable fires once data is there")
  t.is(s:cancel_fd(hr), false, backend .. ": fired wait is stale")
  t.is(s:cancel_fd(hw), false, backend .. ": fired wait is stale (w)")
  s:wait_fd(ffd, "r", function() log[#log + 1] = "r2" end)
  s:wait_fd(ffd, "r", function() log[#log + 1] = "r3" end)
  s:run()
  t.is(table.concat(log, ","), "w,r,r2,r3", backend .. ": one-shot, re-armed, all waiters fire in order")
  fifo:read(1)
  local hc = s:wait_fd(ffd, "r", function() log[#log + 1] = "bad" end)
  t.is(s:cancel_fd(hc), true, backend .. ": cancel_fd of a pending wait")
  fifo:write("y"); fifo:flush()
  s:run()
  local _, _, nfd = s:counts()
  t.is(#log, 4, backend .. ": cancelled wait never fires")
  t.is(nfd, 0, backend .. ": no fd waits left")
  s:wait_fd(ffd, "r", function() log[#log + 1] = "bad" end)
  t.is(s:forget_fd(ffd), 1, backend .. ": forget_fd drops the waits")
  s:run()
  t.is(#log, 4, backend .. ": forgotten wait never fires")
  fifo:read(1)
  -- main() sleeps in the poller until the fd is ready
  s:schedule_at_time(monotime() + 0.05, function()
    fifo:write("z"); fifo:flush()
  end)
  s:wait_fd(ffd, "r", function() log[#log + 1] = "late"; s:stop() end)
  s:main()
  t.is(log[5], "late", backend .. ": main() wakes on fd readiness")
  fifo:read(1)
  -- regular files are always ready
  s:wait_fd(rfd, "r", function() log[#log + 1] = "file" end)
  s:run()
  t.is(log[6], "file", backend .. ": a regular file is ready at once")
  local ok, msg, errno = s:wait_fd(999999, "r", function() end)
  t.is(ok, nil, backend .. ": bad fd fails")
  t.ok(type(msg) == "string" and errno ~= nil, backend .. ": with message and errno")
  t.raises(function() s:wait_fd(ffd, "x", function() end) end, 'expected "r" or "w"', backend .. ": bad direction raises")
end
fifo:close()
regf:close()
os.remove(tmp)
os.remove(reg)

---------------------------------------------------------------- environment
t.is(child("FIBERS_POLLER=poll", "io.stdout:write(require([[fibers.runtime]]).current_scheduler:backend())"),
  "poll", "FIBERS_POLLER=poll selects the poll backend")
t.like(child("FIBERS_POLLER=bogus", "require([[fibers.runtime]])"),
  "fibers: unknown FIBERS_POLLER value 'bogus'", "unknown FIBERS_POLLER raises")
t.raises(function() core.sched.new("kqueue") end, "fibers: unknown poller backend 'kqueue'", "unknown backend raises")

t.done()
