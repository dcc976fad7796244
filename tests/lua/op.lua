-- tests/lua/op.lua - the Op algebra (doc/library.md §4): exact results, wrap
-- order, aborts/nacks before the winner's wrap, or_else, bracket, guards,
-- suspensions (asynchronous completion, tasks, cleanups).
local t = require 'tap'
local fx = require 'fixture'
local op = require 'fibers.op'
local runtime = require 'fibers.runtime'

local sched = runtime.current_scheduler
local perform = op.perform_raw
local pack = t.pack
local pcall = require('fibers.scope')._pcall  -- yield-safe on Lua 5.1

local turns = fx.turns

-- Run fn in a raw fiber, drive turns until it finishes (bounded).
local function in_fiber(fn)
  local done, err = false, nil
  runtime.spawn_raw(function()
    local ok, e = pcall(fn)
    if not ok then err = e end
    done = true
  end)
  for _ = 1, 100 do
    if done then break end
    turns()
  end
  if err then t.diag("fiber error: " .. tostring(err)) end
  return done and not err
end

-- A primitive that is never ready by itself; exposes its suspension.
local function manual()
  local m = {}
  m.op = op.new_primitive(nil, function() return false end,
    function(s, tok) m.s, m.tok = s, tok end)
  return m
end

-- always / never / identity
t.is(getmetatable(op.always(1)), op.Op, "Ops have metatable op.Op")
t.is_deeply(pack(perform(op.always(1, nil, 3))), { n = 3, 1, nil, 3 }, "always keeps nils and count")
t.is_deeply(pack(perform(op.always())), { n = 0 }, "always() yields nothing")
t.is(op.choice(op.never()), op.never(), "choice of one op returns it as is")
t.is_deeply(pack(perform(op.choice():or_else(function() return "fb", nil end))),
  { n = 2, "fb", nil }, "choice() never completes; or_else returns thunk results")
t.raises(function() perform(42) end, "perform: expected op, got number$", "perform_raw checks its argument")
t.raises(function() op.choice(op.always(1), "x") end, "choice: expected op, got string", "choice checks args")
t.raises(function() perform(op.never()) end, "cannot block outside a fiber", "blocking outside a fiber raises")

t.is_deeply(pack(perform(op.choice(op.always(), op.never()):on_abort(function() end))), { n = 0 },
  "zero results stay zero results (composite)")
t.is_deeply(pack(perform(op.choice(op.always(), op.never()))), { n = 0 }, "zero results (flat choice)")

-- flattening
do
  local a, b, c = op.always(1), op.always(2), op.always(3)
  local ch = op.choice(op.choice(a, b), c)
  t.is(#ch, 3, "nested choices are flattened (arms in the choice's array part)")
  t.ok(ch[1] == a and ch[2] == b and ch[3] == c, "flattening keeps order")
end

-- wrap order
t.is_deeply(pack(perform(op.always(2):wrap(function(x) return x + 1, "a" end)
  :wrap(function(x, s) return x * 10, s .. "b" end))), { n = 2, 30, "ab" },
  "a:wrap(f1):wrap(f2) yields f2(f1(...)) on a primitive")
t.is_deeply(pack(perform(op.choice(op.always(2), op.never()):wrap(function(x) return x + 1 end)
  :wrap(function(x) return x * 10 end))), { n = 1, 30 }, "wrap order on a composite")
do
  local p = op.new_primitive(function(x) return "w" .. x end, function() return true, "v" end, function() end)
  t.is(perform(p:wrap(function(s) return s .. "!" end)), "wv!", "primitive wrap_fn applies first")
end

-- guard runs per perform
do
  local n = 0
  local g = op.guard(function() n = n + 1; return op.always(n) end)
  t.is(perform(g), 1, "guard builds at perform")
  t.is(perform(g), 2, "guard builds at every perform")
  t.raises(function() perform(op.guard(function() return 1 end)) end,
    "guard: builder returned number, expected op", "guard result checked")
end

-- random start index
do
  local seen = {}
  local c = op.choice(op.always(1), op.always(2), op.always(3))
  for _ = 1, 300 do seen[perform(c)] = true end
  t.ok(seen[1] and seen[2] and seen[3], "ready leaves are tried from a random start")
end

-- losers' aborts/nacks fire before the winner's wrap (try phase)
do
  local log = {}
  local nack
  local o = op.choice(
    op.never():on_abort(function() log[#log + 1] = "abort1" end),
    op.with_nack(function(n) nack = n; return op.never() end),
    op.always("x"):wrap(function(v) log[#log + 1] = "wrap"; return v end)
      :on_abort(function() log[#log + 1] = "abort-winner" end))
  t.is(perform(o), "x", "ready arm wins")
  t.is_deeply(log, { "abort1", "wrap" }, "loser abort before winner wrap; winner's own abort not run")
  t.is(perform(nack:or_else(function() return "not ready" end)), nil, "nack of the losing subtree is ready")
end

-- or_else: nested, nacks fire, outer wraps apply to the thunk's results
do
  local log = {}
  local nack
  local o = op.with_nack(function(n) nack = n; return op.never() end)
    :on_abort(function() log[#log + 1] = "abort" end)
    :or_else(function() log[#log + 1] = "thunk"; return 5 end)
    :wrap(function(x) return x * 2 end)
  t.is(perform(o), 10, "or_else thunk result goes through outer wraps")
  t.is_deeply(log, { "abort", "thunk" }, "aborts fire before the thunk")
  t.is(perform(nack:or_else(function() return "no" end)), nil, "or_else fires the nacks")
  local fired = false
  local n2
  local o2 = op.with_nack(function(n) n2 = n; return op.always(1) end):or_else(function() return 2 end)
  t.is(perform(o2), 1, "or_else: ready inner op wins")
  t.is(perform(n2:or_else(function() fired = "no" return "no" end)), "no", "nack of the winner does not fire")
end

-- finally / bracket
do
  local log = {}
  perform(op.choice(op.always(1):finally(function(ab) log[#log + 1] = "a" .. tostring(ab) end),
                    op.never():finally(function(ab) log[#log + 1] = "n" .. tostring(ab) end)))
  table.sort(log)
  t.is_deeply(log, { "afalse", "ntrue" }, "finally: cleanup(false) on win, cleanup(true) on loss")

  local acq, rel = 0, {}
  local function br(inner)
    return op.bracket(function() acq = acq + 1; return "r" .. acq end,
      function(r, aborted) rel[#rel + 1] = { r, aborted } end,
      function(r) return inner:wrap(function(...) return r, ... end) end)
  end
  t.is_deeply(pack(perform(br(op.always("v")))), { n = 2, "r1", "v" }, "bracket: use's result")
  perform(op.choice(br(op.never()), op.always(0)))
  t.is_deeply(rel, { { "r1", false }, { "r2", true } }, "bracket: release once per perform with aborted flag")

  -- an error in another arm's try, or in a later guard, releases the
  -- bracket arms already compiled (once), then propagates
  acq, rel = 0, {}
  local raising = op.new_primitive(nil, function() error("try raised", 0) end, function() end)
  local errs = {}
  for i = 1, 10 do
    local ok, e = pcall(perform, op.choice(br(op.never()), raising))
    errs[i] = ok and "no error" or e
  end
  t.is(acq, 10, "bracket + raising try: 10 acquires")
  t.is(#rel, 10, "bracket + raising try: 10 releases")
  t.is_deeply({ rel[1][2], rel[10][2], errs[1], errs[10] }, { true, true, "try raised", "try raised" },
    "bracket + raising try: released as aborted, the try's error propagates")
  acq, rel = 0, {}
  local nacked = false
  local ok, e = pcall(perform, op.choice(br(op.never()),
    op.with_nack(function(n) return n:wrap(function() nacked = true end) end),
    op.guard(function() error("guard raised", 0) end)))
  t.is_deeply({ ok, e, acq, #rel, rel[1] and rel[1][2] }, { false, "guard raised", 1, 1, true },
    "bracket + raising guard: released once as aborted")
  acq, rel = 0, {}
  ok, e = pcall(perform, br(op.always(1)):wrap(function() error("wrap raised", 0) end))
  t.is_deeply({ ok, e, acq, #rel, rel[1] and rel[1][2] }, { false, "wrap raised", 1, 1, false },
    "an error in the winner's wrap does not release a second time")
end

-- race / first_ready / named_choice / boolean_choice
t.is_deeply(pack(perform(op.first_ready({ op.never(), op.always("a", "b") }))), { n = 3, 2, "a", "b" },
  "first_ready yields index, ...")
t.is_deeply(pack(perform(op.race({ op.never(), op.always(7) }, function(i, v) return "won", i, v end))),
  { n = 3, "won", 2, 7 }, "race passes index and values to on_win")
t.is_deeply(pack(perform(op.named_choice({ a = op.never(), b = op.always(1, 2) }))), { n = 3, "b", 1, 2 },
  "named_choice builder yields name, ...")
t.is_deeply(pack(perform(op.boolean_choice(op.always("x"), op.never()))), { n = 2, true, "x" },
  "boolean_choice: true when a wins")
t.is_deeply(pack(perform(op.boolean_choice(op.never(), op.always("y")))), { n = 2, false, "y" },
  "boolean_choice: false when b wins")

-- blocking: asynchronous completion, aborts before wrap, cleanup order
do
  local m1, m2 = manual(), manual()
  local log = {}
  local res
  runtime.spawn_raw(function()
    res = pack(perform(op.choice(
      m1.op:wrap(function(...) log[#log + 1] = "wrap1"; return ... end),
      m2.op:on_abort(function() log[#log + 1] = "abort2" end))))
  end)
  turns()
  t.ok(m1.s and m2.s and m1.s == m2.s, "one suspension is registered with every leaf")
  t.ok(m1.s:waiting(), "suspension waiting while blocked")
  m1.s:add_cleanup(function(a, b) log[#log + 1] = "cleanup" .. a .. tostring(b) end, "x", nil)
  m1.s:complete(m1.tok, "v1", nil)
  t.ok(not m1.s:waiting(), "complete ends waiting")
  t.is(res, nil, "completion does not resume synchronously")
  t.raises(function() m2.s:complete(m2.tok, "v2") end, "already completed", "second complete raises")
  turns()
  t.is_deeply(res, { n = 2, "v1", nil }, "winner's values (nils kept)")
  t.is_deeply(log, { "cleanupxnil", "abort2", "wrap1" }, "cleanups, then loser aborts, then winner's wrap")
end

-- complete_task: run and cancel
do
  local m = manual()
  local res
  runtime.spawn_raw(function() res = pack(perform(m.op)) end)
  turns()
  local task = m.s:complete_task(m.tok, 1, nil, 3)
  sched:schedule(task)
  turns()
  t.is_deeply(res, { n = 3, 1, nil, 3 }, "a task run by the scheduler resumes the fiber in the same turn")
  task:run()  -- no-op: no longer waiting

  local m3 = manual()
  local res3, seen
  runtime.spawn_raw(function() res3 = perform(m3.op) end)
  turns()
  runtime.spawn_raw(function() m3.s:complete_task(m3.tok, "x"):run(); seen = res3 end)
  turns()
  t.is(seen, nil, "a task run inside a fiber only schedules the waiter")
  turns()
  t.is(res3, "x", "... which runs next turn")

  local m2 = manual()
  local err
  runtime.spawn_raw(function()
    local ok, e = pcall(perform, m2.op:on_abort(function() err = "aborted" end))
    err = (err or "") .. "|" .. tostring(e)
  end)
  turns()
  local task2 = m2.s:complete_task(m2.tok, "late")
  task2:cancel("shut down")
  task2:run()
  turns(2)
  t.is(err, "aborted|shut down", "task:cancel makes the perform raise its reason, aborts fired")
end

-- wrap and on_abort may block
do
  local m = manual()
  local res
  runtime.spawn_raw(function()
    res = perform(op.choice(op.always(1):wrap(function(v)
      local m2 = manual()
      sched:schedule(function() m2.s:complete(m2.tok, v + 1) end)
      return perform(m2.op)
    end), m.op))
  end)
  turns(4)
  t.is(res, 2, "a wrap may block")
end

-- nack observed by a server fiber (blocking)
do
  local req = manual()
  local got
  t.ok(in_fiber(function()
    local nack_op
    local o = op.with_nack(function(n) nack_op = n; return req.op end)
    runtime.spawn_raw(function() got = perform(nack_op:wrap(function() return "nacked" end)) end)
    local m = manual()
    sched:schedule(function() m.s:complete(m.tok, "other") end)
    t.is(perform(op.choice(o, m.op)), "other", "other arm wins while blocked")
    runtime.yield(); runtime.yield()
  end), "nack scenario ran")
  t.is(got, "nacked", "a blocked nack waiter is woken when its subtree loses")
end

-- with_nack builder type check, on_abort in composite leaf ranges
t.raises(function() perform(op.with_nack(function() return nil end)) end,
  "with_nack: builder returned nil", "with_nack result checked")
do
  local log = {}
  local o = op.choice(
    op.choice(op.never(), op.always("in")):on_abort(function() log[#log + 1] = "outer-range" end),
    op.never():on_abort(function() log[#log + 1] = "other" end))
  t.is(perform(o), "in", "leaf inside an on_abort range wins")
  t.is_deeply(log, { "other" }, "on_abort covers its whole subtree")
end

-- ops are reusable
do
  local m = manual()
  local o = op.choice(m.op, op.never())
  local out = {}
  runtime.spawn_raw(function() for i = 1, 3 do out[i] = perform(o) end end)
  for i = 1, 3 do
    turns()
    m.s:complete(m.tok, i * 10)
  end
  turns()
  t.is_deeply(out, { 10, 20, 30 }, "an op may be performed many times")
end

t.done()
