-- tests/lua/scope.lua - structured concurrency (doc/library.md §3): tree, ids,
-- names, admission, cancellation cascade, faults (primary, extra_errors,
-- no duplicates), join with LIFO finalisers, reports, boundaries, condition
-- ops, try/perform, snapshots, defaults, the sentinel, bounded memory.
local t = require 'tap'
local fx = require 'fixture'
local fibers = require 'fibers'
local op = require 'fibers.op'
local scope = require 'fibers.scope'
local sleep = require 'fibers.sleep'
local runtime = require 'fibers.runtime'

local pack = t.pack
local pcall = scope._pcall  -- yield-safe on Lua 5.1
local perform_raw = op.perform_raw

-- Run body(s) under fibers.run; returns pack of pcall(fibers.run ...).
local function run(body) return pack(pcall(fibers.run, body)) end

-- sentinel
do
  local c = scope.cancelled("why")
  t.is(getmetatable(c).__name, "fibers.cancelled", "sentinel metatable name")
  t.ok(scope.is_cancelled(c) and not scope.is_cancelled("why"), "is_cancelled")
  t.is(scope.cancel_reason(c), "why", "cancel_reason")
  t.is(scope.cancel_reason({}), nil, "cancel_reason of a non-sentinel")
end

-- tree, ids, names, by_id, defaults
do
  local r = scope.root()
  t.is(scope.current(), r, "outside fibers current() is the root")
  local a = assert(r:child())
  local b = assert(r:child())
  t.ok(b:id() > a:id(), "ids increase")
  t.is(a:parent(), r, "parent()")
  local kids = r:children()
  t.ok(kids[#kids - 1] == a and kids[#kids] == b, "children in attachment order")
  t.is(scope.by_id(a:id()), a, "by_id finds a live scope")
  a:set_name("web-1.x_y")
  t.is(a:name(), "web-1.x_y", "set_name/name")
  t.raises(function() a:set_name("12") end, "not be all digits", "all-digit name refused")
  t.raises(function() a:set_name("a/b") end, "must match", "bad character refused")
  r:set_default("shutdown_grace", 2)
  local c = assert(a:child())
  t.is(c:default("shutdown_grace"), 2, "default inherited from an ancestor")
  a:set_default("shutdown_grace", 0.5)
  t.is(c:default("shutdown_grace"), 0.5, "nearest ancestor wins")
  t.is(c:default("nope"), nil, "unset default is nil")
  r:set_default("shutdown_grace", nil)
  -- cleanup: cancel + join the two test scopes inside a fiber
  fibers.run(function()
    a:cancel("x"); b:cancel("x")
    perform_raw(a:join_op()); perform_raw(b:join_op())
  end)
  local id = c:id()
  a, b, c, kids = nil, nil, nil, nil
  collectgarbage(); collectgarbage()
  t.is(scope.by_id(id), nil, "by_id is weak: nil once collected")
end

-- status / admission / refusal reasons
t.is_deeply(run(function(s)
  local out = {}
  local c1 = s:child(); c1:close()
  out[1] = pack(c1:spawn(function() end))
  out[2] = pack(c1:admission())
  local c2 = s:child(); c2:cancel()
  out[3] = pack(c2:spawn(function() end))
  out[4] = pack(c2:status())
  local c3 = s:child(); c3:_fault("boom")
  out[5] = pack(c3:spawn(function() end))
  out[6] = pack(c3:child())
  local c4 = s:child(); c4:close("custom")
  out[7] = pack(c4:spawn(function() end))
  out[12] = pack(c4:child())
  out[13] = pack(c4:admission())
  out[14] = pack(perform_raw(c4:close_op()))
  s:spawn(function()
    runtime.current_fiber().scope = c4
    out[15] = pack(perform_raw(scope.run_op(function() end)))
    out[15][3] = nil; out[15].n = 2
  end)
  sleep.sleep(0.01)
  local c6 = s:child(); c6:close(); c6:close("no more work"); c6:close("later")
  out[16] = pack(c6:admission())
  out[17] = pack(c6:spawn(function() end))
  local c5 = s:child()
  out[8] = pack(c5:status())
  out[9] = pack(c5:admission())
  perform_raw(c5:join_op())
  out[10] = pack(c5:spawn(function() end))
  out[11] = pack(c5:status())
  return out
end), { n = 2, true, {
  { n = 2, false, "scope is closed" }, { n = 2, "closed", "scope is closed" },
  { n = 2, false, "scope is cancelled" }, { n = 2, "cancelled", "scope cancelled" },
  { n = 2, false, "scope has failed" }, { n = 2, nil, "scope has failed" },
  { n = 2, false, "scope is closed" }, { n = 2, "running", nil }, { n = 1, "open" },
  { n = 2, false, "scope is joining" }, { n = 2, "ok", nil },
  { n = 2, nil, "scope is closed" }, { n = 2, "closed", "custom" }, { n = 2, "closed", "custom" },
  { n = 2, "cancelled", "scope is closed" },
  { n = 2, "closed", "no more work" }, { n = 2, false, "scope is closed" } } },
  "admission refusals and statuses")

-- cancellation: first reason wins, cascade, cancel waiters, no effect after join
t.is_deeply(run(function(s)
  local p = s:child()
  local c = p:child()
  local g = c:child()
  local got = {}
  c:spawn(function() got[1] = pack(fibers.perform(c:cancel_op())) end)
  g:spawn(function() got[2] = pack(pcall(fibers.perform, op.never())) end)
  sleep.sleep(0)
  runtime.yield()
  p:cancel("first")
  p:cancel("second")
  perform_raw(p:join_op())
  got[2][2] = scope.cancel_reason(got[2][2])
  got[3] = pack(p:status()); got[4] = pack(c:status()); got[5] = pack(g:status())
  p:cancel("late")
  got[6] = pack(p:status())
  return got
end), { n = 2, true, {
  { n = 2, "cancelled", "first" }, { n = 2, false, "first" },
  { n = 2, "cancelled", "first" }, { n = 2, "cancelled", "first" }, { n = 2, "cancelled", "first" },
  { n = 2, "cancelled", "first" } } }, "cancel: first wins, cascades with the recorded reason")

-- faults: primary, fail-fast of siblings, extra_errors, no duplicate secondaries
do
  local log = {}
  local res = run(function(s)
    local st, err, rep = fibers.run_scope(function(c)
      c:spawn(function() sleep.sleep(10); log[#log + 1] = "never" end)
      c:spawn(function()
        local ok, e = pcall(fibers.perform, op.never())
        log[#log + 1] = "sibling woke: " .. tostring(e)
        error(e, 0)  -- re-raising the primary adds no copy (§0.7)
      end)
      c:spawn(function() error("boom", 0) end)
      c:spawn(function() runtime.yield(); error("second", 0) end)
      c:finally(function(aborted, status, primary)
        log[#log + 1] = ("fin %s %s %s"):format(tostring(aborted), status, primary)
      end)
    end)
    return st, err, rep
  end)
  t.is(res[2], "failed", "failing fiber fails its scope")
  t.is(res[3], "boom", "first fault is the primary")
  t.is_deeply(res[4].extra_errors, { "second" }, "later fault in extra_errors, no duplicate of the primary")
  t.is_deeply(log, { "sibling woke: boom", "fin true failed boom" }, "sibling woken with the primary; finaliser args")
  t.is(res[4].id ~= nil and type(res[4].children), "table", "report shape")
end

-- a failed child does not fail its parent; report children in attachment order
do
  local res = run(function(s)
    local p = s:child()
    local k1, k2, k3 = p:child(), p:child(), p:child()
    k1:set_name("k1")
    k2:spawn(function() error("k2 failed", 0) end)
    local st, err, rep = perform_raw(p:join_op())
    return st, err, rep, { k1:id(), k2:id(), k3:id(), p:id() }, #p:children(), #s:children()
  end)
  local ids = res[5]
  local function leaf(id, name, extra) return { id = id, name = name, extra_errors = extra or {}, children = {} } end
  t.is_deeply({ res[2], res[3], res[4] }, { "ok", nil, { id = ids[4], extra_errors = {}, children = {
    { id = ids[1], name = "k1", status = "ok", report = leaf(ids[1], "k1") },
    { id = ids[2], status = "failed", primary = "k2 failed", report = leaf(ids[2]) },
    { id = ids[3], status = "ok", report = leaf(ids[3]) } } } },
    "parent ok; exact report with children in attachment order")
  t.is(res[6], 0, "joined children detach from their parent")
  t.is(res[7], 0, "the joined scope detached from its parent")
end

-- a failed run_scope child that detached earlier still shows in the report
do
  local res = run(function(s)
    local q = s:child()
    q:spawn(function() fibers.run_scope(function() error("inner", 0) end) end)
    sleep.sleep(0.01)
    local st, err, rep = perform_raw(q:join_op())
    return st, #rep.children, rep.children[1].status, rep.children[1].primary
  end)
  t.is_deeply(res, { n = 5, true, "ok", 1, "failed", "inner" }, "earlier failed child kept in the report")
end

-- join: waits for fibers without cancelling; finalisers LIFO; detach; defer
do
  local log = {}
  local res = run(function(s)
    local c = s:child()
    c:spawn(function() sleep.sleep(0.05); log[#log + 1] = "fiber done" end)
    c:finally(function(...) log[#log + 1] = "f1 " .. table.concat({ tostring(select(1, ...)), tostring(select(2, ...)), tostring(select(3, ...)) }, " ") end)
    local d = c:defer(function() log[#log + 1] = "detached" end)
    c:defer(function() log[#log + 1] = "f3" end)
    d()
    local t0 = fibers.now()
    local st = perform_raw(c:join_op())
    local dt = fibers.now() - t0
    local again = pack(perform_raw(c:join_op()))
    return st, dt >= 0.05, again[1], again.n
  end)
  t.is_deeply(res, { n = 5, true, "ok", true, "ok", 3 }, "join waits for the fibers; join_op idempotent")
  t.is_deeply(log, { "fiber done", "f3", "f1 false ok nil" }, "finalisers LIFO after fibers, detached one skipped")
end

-- a finaliser added while finalisers run keeps LIFO order among the rest
do
  local log = {}
  run(function(s)
    fibers.run_scope(function(c)
      c:finally(function() log[#log + 1] = "A" end)
      c:finally(function()
        log[#log + 1] = "B"
        c:finally(function()
          log[#log + 1] = "C"
          c:finally(function() log[#log + 1] = "D" end)
        end)
        c:finally(function() log[#log + 1] = "E" end)
      end)
    end)
  end)
  t.is(table.concat(log, " "), "B E C D A", "finalisers added during finalisers run next, LIFO (B; E, C; D; then A)")
end

-- the status is frozen when the finalisers start: a cancel arriving later
-- (here the parent's, cascading) does not change an ok outcome nor
-- interrupt a finaliser's perform
do
  local res = run(function(s)
    local p = s:child()
    local got = {}
    p:spawn(function()
      got.run = pack(fibers.run_scope(function(c)
        c:finally(function(aborted, st)
          got.fin_start = { aborted, st }
          got.slept = pack(pcall(sleep.sleep, 0.05))
          got.fin_status = pack(c:status())
        end)
      end))
      got.run[3] = nil
    end)
    sleep.sleep(0.01)
    p:cancel("parent gone")
    perform_raw(p:join_op())
    return got
  end)
  local got = res[2]
  t.is_deeply(got.fin_start, { false, "ok" }, "finaliser starts with ok")
  t.is_deeply(got.slept, { n = 1, true }, "a perform in the finaliser is not interrupted by the late cancel")
  t.is_deeply(got.fin_status, { n = 2, "running", nil }, "the late cancel left the scope's status alone")
  t.is_deeply(got.run, { n = 3, "ok", nil }, "run_scope returns ok")
end

-- finaliser errors: primary when ok, secondary when not; sentinel = failure
do
  local res = run(function(s)
    local a = s:child()
    a:finally(function() error("fin2", 0) end)
    a:finally(function() error("fin1", 0) end)
    local st1, e1, r1 = perform_raw(a:join_op())
    local b = s:child()
    b:finally(function() error(scope.cancelled("nope")) end)
    local st2, e2 = perform_raw(b:join_op())
    local c = s:child()
    c:finally(function() error("late", 0) end)
    c:cancel("stop")
    local st3, e3, r3 = perform_raw(c:join_op())
    return st1, e1, r1.extra_errors, st2, e2, st3, e3, r3.extra_errors
  end)
  t.is_deeply(res, { n = 9, true, "failed", "fin1", { "fin2" },
    "failed", "finaliser raised cancellation: nope", "cancelled", "stop", { "late" } },
    "finaliser errors: primary if ok, else extra; sentinel is a failure")
end

-- done_op does not start the join; condition ops' values
do
  local res = run(function(s)
    local c = s:child()
    local out = {}
    out[1] = perform_raw(c:done_op():or_else(function() return "not ready" end))
    out[2] = c:state()
    local w = {}
    s:spawn(function() w.close = pack(perform_raw(c:close_op())) end)
    s:spawn(function() w.fault = pack(perform_raw(c:fault_op())) end)
    s:spawn(function() w.notok = pack(perform_raw(c:not_ok_op())) end)
    s:spawn(function() w.cancel = pack(perform_raw(c:cancel_op())) end)
    s:spawn(function() w.done = pack(perform_raw(c:done_op())) end)
    sleep.sleep(0.01)
    c:spawn(function() error("bad", 0) end)
    sleep.sleep(0.01)
    out[3] = w.done
    perform_raw(c:join_op())
    sleep.sleep(0.01)
    out[4] = w
    out[5] = c:state()
    return out
  end)
  local out = res[2]
  t.is(out[1], "not ready", "done_op not ready before join")
  t.is(out[2], "running", "done_op did not start the join")
  t.is(out[3], nil, "done_op waits for the join")
  t.is_deeply(out[4].close, { n = 2, "closed", "scope has failed" }, "close_op")
  t.is_deeply(out[4].fault, { n = 2, "failed", "bad" }, "fault_op")
  t.is_deeply(out[4].notok, { n = 2, "failed", "bad" }, "not_ok_op")
  t.is_deeply(out[4].cancel, { n = 2, "cancelled", "bad" }, "cancel_op after a fault")
  t.is(out[4].done[1], "failed", "done_op status")
  t.is(out[4].done[2], "bad", "done_op err")
  t.is(type(out[4].done[3]), "table", "done_op report")
  t.is(out[5], "failed", "state after join")
end

-- run_op / run: exact tuples, refusal, abort on losing a choice
do
  local log = {}
  local res = run(function(s)
    local out = {}
    out[1] = pack(scope.run(function(c, a, b) return a, nil, b end, 1, 2))
    out[1][3] = type(out[1][3])
    out[2] = pack(scope.run(function() error("body", 0) end))
    out[2][3] = type(out[2][3])
    local p = s:child()
    p:cancel("gone")
    p:spawn(function() end)
    local r = assert(s:child())
    local f = function()
      out[3] = pack(perform_raw(scope.run_op(function() log[#log + 1] = "never runs" end)))
    end
    -- run under the cancelled scope p: refused
    local pf = p  -- use a fresh fiber with p installed
    local ok = s:spawn(function()
      runtime.current_fiber().scope = pf
      f()
    end)
    sleep.sleep(0.01)
    out[4] = pack(perform_raw(op.choice(
      scope.run_op(function(c)
        c:finally(function(ab, st, why) log[#log + 1] = ("fin %s %s %s"):format(tostring(ab), st, why) end)
        sleep.sleep(10)
      end),
      sleep.sleep_op(0.02):wrap(function() log[#log + 1] = "timeout wrap"; return "timeout" end))))
    out[5] = pack(perform_raw(op.choice(scope.run_op(function() log[#log + 1] = "started" end), op.always("ready"))))
    return out
  end)
  local out = res[2]
  t.is_deeply(out[1], { n = 6, "ok", nil, "table", 1, nil, 2 }, "run: ok, nil, report, results (nils kept)")
  t.is_deeply(out[2], { n = 3, "failed", "body", "table" }, "run: failed, primary, report")
  t.is_deeply(out[3], { n = 3, "cancelled", "scope is cancelled", { extra_errors = {}, children = {} } },
    "run_op refused: cancelled, reason, empty report")
  t.is_deeply(out[4], { n = 1, "timeout" }, "run_op loses a choice")
  t.is_deeply(out[5], { n = 1, "ready" }, "ready sibling wins in the try phase")
  t.is_deeply(log, { "fin true cancelled aborted", "timeout wrap" },
    "losing run_op: child cancelled 'aborted' and joined before the winner's wrap; body never started when a sibling is ready")
end

-- run (run_scope) is not interrupted by the caller's cancellation
do
  local res = run(function(s)
    local c = s:child()
    local got
    c:spawn(function()
      got = pack(fibers.run_scope(function(k) sleep.sleep(10) end))
    end)
    sleep.sleep(0.01)
    c:cancel("stop it")
    perform_raw(c:join_op())
    return got[1], got[2], got.n
  end)
  t.is_deeply(res, { n = 4, true, "cancelled", "stop it", 3 }, "run_scope returns cancelled via the cascade")
end

-- perform / try / try_op
do
  local res = run(function(s)
    local out = {}
    local c = s:child()
    local built = 0
    local g = op.guard(function() built = built + 1; return op.always(1) end)
    out[1] = pack(c:try(g))
    c:cancel("halt")
    out[2] = pack(c:try(g))
    out[3] = pack(pcall(c.perform, c, g))
    out[3][2] = scope.cancel_reason(out[3][2])
    out[4] = built
    local f = s:child()
    f:_fault("kaput")
    out[5] = pack(pcall(f.perform, f, op.always(1)))
    out[6] = pack(f:try(op.always(1)))
    -- window: op completed, then the scope is cancelled before the fiber wakes
    local w = s:child()
    local m = {}
    local mop = op.new_primitive(nil, function() return false end, function(su, tk) m.s, m.t = su, tk end)
    w:spawn(function() out[7] = pack(w:try(mop)) end)
    sleep.sleep(0.01)
    m.s:complete(m.t, "val")
    w:cancel("late")
    sleep.sleep(0.01)
    local w2 = s:child()
    w2:spawn(function() out[8] = pack(fibers.perform(mop)) end)
    sleep.sleep(0.01)
    m.s:complete(m.t, "kept")
    w2:cancel("late")
    sleep.sleep(0.01)
    return out
  end)
  local out = res[2]
  t.is_deeply(out[1], { n = 2, "ok", 1 }, "try: ok, ...")
  t.is_deeply(out[2], { n = 2, "cancelled", "halt" }, "try: cancelled, reason")
  t.is_deeply(out[3], { n = 2, false, "halt" }, "perform raises the sentinel")
  t.is(out[4], 1, "a not-ok scope does not attempt the op")
  t.is_deeply(out[5], { n = 2, false, "kaput" }, "perform raises the primary string")
  t.is_deeply(out[6], { n = 2, "failed", "kaput" }, "try: failed, primary")
  t.is_deeply(out[7], { n = 3, "cancelled", "late", { n = 1, "val" } }, "try window: status wins, value returned third")
  t.is_deeply(out[8], { n = 1, "kept" }, "perform window: a completed op keeps its value")
end

-- cancellation from every blocking primitive owned here
do
  local res = run(function(s)
    local c = s:child()
    local got = {}
    local function catch(name, fn)
      c:spawn(function()
        local ok, e = pcall(fn)
        got[name] = scope.is_cancelled(e) and scope.cancel_reason(e) or tostring(e)
      end)
    end
    catch("never", function() fibers.perform(op.never()) end)
    catch("sleep", function() sleep.sleep(10) end)
    catch("sleep_until", function() sleep.sleep_until(math.huge) end)
    catch("named_choice", function() fibers.named_choice({ a = op.never(), b = sleep.sleep_op(10) }) end)
    local busy = s:child()
    busy:spawn(function() sleep.sleep(10) end)
    catch("join", function() fibers.perform(busy:join_op()) end)
    catch("done", function() fibers.perform(s:done_op()) end)
    catch("close", function() fibers.perform(s:close_op()) end)
    catch("run_scope_op", function() fibers.perform(fibers.run_scope_op(function() sleep.sleep(10) end)) end)
    sleep.sleep(0.01)
    c:cancel("cxl")
    perform_raw(c:join_op())
    busy:cancel()
    return got
  end)
  local got = res[2]
  for _, k in ipairs({ "never", "sleep", "sleep_until", "named_choice", "join", "done", "close", "run_scope_op" }) do
    t.is(got[k], "cxl", "cancellation wakes a fiber blocked in " .. k)
  end
end

-- an op that loses to scope cancellation runs its aborts/nacks: bracket
-- releases exactly once with aborted = true, a nack fires
do
  local res = run(function(s)
    local c = s:child()
    local rel, nacked = {}, false
    c:spawn(function()
      local o = op.choice(
        op.bracket(function() return "res" end, function(r, ab) rel[#rel + 1] = { r, ab } end,
          function() return op.never() end),
        op.with_nack(function(n)
          s:spawn(function() perform_raw(n); nacked = true end)
          return op.never()
        end))
      fibers.perform(o)
    end)
    sleep.sleep(0.01)
    c:cancel("stop")
    perform_raw(c:join_op())
    sleep.sleep(0.01)
    return rel, nacked
  end)
  t.is_deeply(res, { n = 3, true, { { "res", true } }, true }, "cancellation aborts: bracket released once, nack fired")
end

-- snapshot and exec hooks
do
  local res = run(function(s)
    local c = s:child()
    c:set_name("snap")
    local k = c:child()
    c:spawn(function() sleep.sleep(10) end)
    local cmd1 = { _info = function() return { pid = 10, argv = { "a" }, state = "running", since = 1 } end }
    local cmd2 = { _info = function() return { pid = 11, argv = { "b" }, state = "exited", since = 2, exit = 0 } end }
    c:_add_command(cmd1); c:_add_command(cmd2)
    local snap1 = c:snapshot()
    c:_remove_command(cmd1)
    local snap2 = c:snapshot()
    c:cancel()
    perform_raw(c:join_op())
    snap1.since = type(snap1.since)
    return snap1, #snap2.commands, c:snapshot().state, k:id(), c:id()
  end)
  t.is_deeply(res[2], { id = res[6], name = "snap", state = "running", since = "number", fibers = 1,
    children = { res[5] }, commands = { { pid = 10, argv = { "a" }, state = "running", since = 1 },
      { pid = 11, argv = { "b" }, state = "exited", since = 2, exit = 0 } } }, "snapshot shape")
  t.is(res[3], 1, "_remove_command removes")
  t.is(res[4], "cancelled", "snapshot state after join")
end

-- state hook
do
  local seen = {}
  scope.set_state_hook(function(sc, from, to, why) seen[#seen + 1] = from .. ">" .. to .. ":" .. tostring(why) end)
  run(function(s)
    local c = s:child()
    scope.set_state_hook(function(sc, from, to, why)
      if sc == c then seen[#seen + 1] = from .. ">" .. to .. ":" .. tostring(why) end
    end)
    c:cancel("r")
    perform_raw(c:join_op())
  end)
  scope.set_state_hook(nil)
  t.is_deeply(seen, { "running>cancelled:r" }, "state hook: running>cancelled (joined outcome equal)")
end

-- debug tracebacks, root-level faults go to the unscoped handler
do
  scope.set_debug(true)
  local res = run(function(s)
    local st, err, rep = fibers.run_scope(function(c)
      c:spawn(function() pcall(sleep.sleep, 10); sleep.sleep(1) end)  -- re-raises the primary
      c:spawn(function() error("traced", 0) end)
    end)
    return err, #rep.extra_errors
  end)
  scope.set_debug(false)
  t.like(res[2], "^traced\nstack traceback:", "set_debug(true) adds a traceback")
  t.is(res[3], 0, "debug mode: re-raised primary is not a secondary error")
  local got = {}
  scope.set_unscoped_error_handler(function(f, e) got[#got + 1] = e end)
  local r2 = run(function(s)
    scope.root():spawn(function() error("root-level", 0) end)
    sleep.sleep(0.01)
    return "fine"
  end)
  scope.set_unscoped_error_handler(nil)
  t.is_deeply({ r2[1], r2[2], got[1] }, { true, "fine", "root-level" }, "root-level fault -> unscoped handler, run unaffected")
end

-- many children: detach is O(1) amortised and attachment order survives compaction
do
  local res = run(function(s)
    local p = s:child()
    local kids = {}
    for i = 1, 2000 do kids[i] = p:child() end
    for i = 1, 2000, 2 do perform_raw(kids[i]:join_op()) end
    local ch = p:children()
    local same = #ch == 1000
    for i = 1, 1000 do if ch[i] ~= kids[2 * i] then same = false end end
    local snap = p:snapshot()
    local n = 0
    for i = 1, 3000 do
      s:spawn(function() fibers.run_scope(function() sleep.sleep(0.001) end); n = n + 1 end)
    end
    local c2 = p:child()
    return same, #snap.children, snap.children[1] == kids[2]:id(), p:children()[1001] == c2
  end)
  t.is_deeply(res, { n = 5, true, true, 1000, true, true }, "children order kept across detaches and compaction")
end

-- a raw fiber dying of a cancellation sentinel is not reported
do
  local got = {}
  scope.set_unscoped_error_handler(function(f, e) got[#got + 1] = tostring(e) end)
  run(function(s)
    runtime.spawn_raw(function() error(scope.cancelled("quiet")) end)
    runtime.spawn_raw(function() error("loud", 0) end)
    sleep.sleep(0.01)
  end)
  scope.set_unscoped_error_handler(nil)
  t.is_deeply(got, { "loud" }, "raw fibers: sentinel silent, other errors to the unscoped handler")
end

-- memory: 1e5 blocking performs in one long-lived scope stay flat
do
  local sched = runtime.current_scheduler
  local res = run(function(s)
    local ready = op.new_primitive(nil, function() return false end,
      function(su, tk) sched:schedule(su:complete_task(tk, 1)) end)
    local o = op.choice(ready, sleep.sleep_op(100))
    local mem = {}
    for i = 1, 100000 do
      fibers.perform(o)
      if i == 20000 or i == 100000 then
        fx.sample_mem(mem)
      end
    end
    local _, timers = sched:counts()
    return mem[2] - mem[1], timers, op._waitq_len(s._cw)
  end)
  t.ok(res[1] and res[2] < 64, "memory flat over 1e5 blocking performs (growth " .. tostring(res[2]) .. " KB)")
  t.is(res[3], 0, "losing sleeps cancelled their timers")
  t.ok(res[4] <= 64, "scope cancel-waiter queue stays bounded (" .. tostring(res[4]) .. ")")
end

t.done()
