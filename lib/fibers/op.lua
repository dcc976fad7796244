-- fibers/op.lua - the Op algebra (doc/library.md §4): first-class events in the
-- Concurrent ML style, and the perform engine that synchronises on them.
--
-- Owns: the `Op` metatable and every combinator, suspensions (the handle a
-- blocking primitive completes later), `perform_raw`, and the internal
-- scope-aware perform used by fibers.scope (`_perform_in`).  It must not
-- know about scopes beyond the tiny protocol documented at `_perform_in`,
-- and never resumes a fiber synchronously: completion goes through
-- `fiber:resume`, which only schedules.
--
-- Representation.  An Op is a table with metatable `Op` and a field `k`:
--   PRIM   leaf: try(op) -> ready, ...; block(susp, token, op); wrap?
--   CHOICE [1..n] = arms (array part)  GUARD g() -> op (run per perform)
--   NACK   g(nack_op) -> op         WRAP    op, f
--   ABORT  op, f (on_abort)         ORELSE  op, thunk
-- Performing compiles the tree into a flat list of leaves (depth first), so
-- every on_abort/with_nack subtree covers a contiguous index range [lo, hi];
-- when leaf w wins, every range not containing w fires (inner first).
--
-- Primitive contract (for channel, cond, sleep, io ...):
--   new_primitive(wrap_fn?, try_fn, block_fn)
--   try_fn() -> ready, ...values           (must not block)
--   block_fn(suspension, token)            (arrange for a later
--       suspension:complete(token, ...values), or complete_task)
-- `token` (the spec's `leaf_wrap`) is OPAQUE: pass it back unchanged, never
-- call it.  Check `suspension:waiting()` before handing over anything that
-- must not be lost (a value, bytes); `complete` on a finished suspension
-- raises.  `suspension:add_cleanup(f, a, b)` runs `f(a, b)` in the performing
-- fiber once it wakes, whichever leaf won: use it to unlink the registration
-- (bounded memory, doc/library.md §0.8).
local runtime = require 'fibers.runtime'
local current_fiber = runtime.current_fiber
-- Guards may block, so the compile phase is protected yield-safely.
local compat = require 'fibers.compat'
local ypcall, owns_coroutine = compat.pcall, compat.owns_coroutine
-- Blocking yields the fiber's coroutine directly (= runtime.suspend(noop)
-- minus two frames (parked fibers are smaller); resumed by fiber:resume.
local suspend_yield = coroutine.yield

local unpack = table.unpack or unpack
local random = math.random
local select, type, error, setmetatable =
      select, type, error, setmetatable
-- The raw metatable read (no __metatable lookup: a string-keyed probe on
-- every call of the base getmetatable, on the hot paths of choice and
-- perform); the same answer for ops, which have no __metatable.
local getmetatable = (debug and debug.getmetatable) or getmetatable

local M = {}

local PRIM, CHOICE, GUARD, NACK, WRAP, ABORT, ORELSE = 1, 2, 3, 4, 5, 6, 7
M._PRIM = PRIM

local Op = {}
Op.__index = Op
Op.__name = "fibers.op"
M.Op = Op

local function pack(...) return { n = select('#', ...), ... } end

local function is_op(x) return getmetatable(x) == Op end
M.is_op = is_op

local function check_op(x, who)
  if getmetatable(x) ~= Op then
    error(who .. ": expected op, got " .. type(x), 3)
  end
  return x
end

local function check_fn(f, who)
  if type(f) ~= "function" and not (type(f) == "table" and getmetatable(f)
      and getmetatable(f).__call) then
    error(who .. ": expected function, got " .. type(f), 3)
  end
  return f
end

------------------------------------------------------------------------------
-- Suspensions

local Susp = {}
Susp.__index = Susp
Susp.__name = "fibers.suspension"

-- Completion tokens that are not leaf indices.
local TASK_ERR = {}   -- task:cancel(reason): the perform raises `reason`
local CANCEL = {}     -- the scope's not-ok condition won (see _perform_in)
M._CANCEL = CANCEL
M._TASK_ERR = TASK_ERR   -- (for the C fibers.perform, src/lua/lperform.c)

-- Internal: the C hot paths of fibers.channel and fibers.sleep
-- (src/lua/lchan.c), which build suspensions of this layout and
-- metatable and register them in scope cancel queues with CANCEL.
M._fast = runtime.current_scheduler:_fast(Susp, CANCEL)

-- True while no leaf has completed this suspension yet.
function Susp:waiting() return self[2] end

-- Complete with the given leaf token and values; schedules the fiber.
function Susp:complete(token, ...)
  if not self[2] then error("suspension: already completed", 2) end
  self[2] = false
  self[1]:resume(token, ...)
end

-- Register f(a, b) to run in the performing fiber after it wakes.
function Susp:add_cleanup(f, a, b)
  local c = self[3]
  if not c then self[3] = { f, a, b, n = 3 }; return end
  local n = c.n
  c[n + 1] = f; c[n + 2] = a; c[n + 3] = b
  c.n = n + 3
end

local Task = {}
Task.__index = Task
Task.__name = "fibers.suspension_task"

-- Resume fiber f with ... right now.  Only used from scheduler context (a
-- task run by the scheduler, not inside any fiber), so no fiber ever runs
-- inside another; this is what makes "a sleeper due at t has run when
-- run(t) returns" (doc/library.md §1) hold.
local run_now = runtime._run_now

-- Run the task: completes the suspension if it is still waiting.  Run by
-- the scheduler (timers, fd readiness) it resumes the fiber in the same
-- turn; run from inside a fiber it only schedules it.
function Task:run()
  local s = self.s
  if s[2] and not self.x then
    local f = s[1]
    if current_fiber() == nil and f._n == nil and not f.dead and f.run then
      s[2] = false
      local v = self.v
      if v then return run_now(f, self.t, unpack(v, 1, v.n)) end
      return run_now(f, self.t)
    end
    local v = self.v
    if v then s:complete(self.t, unpack(v, 1, v.n)) else s:complete(self.t) end
  end
end

-- Cancel the task: if still waiting, the perform raises `reason`
-- (default "operation cancelled").  Later runs do nothing.
function Task:cancel(reason)
  self.x = true
  local s = self.s
  if s[2] then s:complete(TASK_ERR, reason or "operation cancelled") end
end

-- A task that completes this suspension with token and values when run.
function Susp:complete_task(token, ...)
  local v
  if select('#', ...) > 0 then v = pack(...) end
  return setmetatable({ s = self, t = token, v = v }, Task)
end

local function no_fiber() error("perform: cannot block outside a fiber", 4) end

-- Before a perform registers anything to block: it must run on the
-- fiber's own coroutine (not a coroutine created inside the fiber, whose
-- yield would go to its resumer and leave the registration behind), and
-- that coroutine must be able to yield from here.  Else nil, why.
local running, isyieldable = coroutine.running, coroutine.isyieldable
local getinfo = debug and debug.getinfo
local puc51 = not compat.yield_across_pcall
local NOT_OWN = "perform: cannot block in a coroutine created inside a fiber "
             .. "(only the fiber's own coroutine can wait for an op)"
local NO_YIELD = "perform: cannot block here: the fiber cannot yield across "
              .. "a C call, metamethod or iterator"
local function cannot_block(fiber)
  local co = running()
  if co ~= fiber.co and not owns_coroutine(co) then return NOT_OWN end
  if isyieldable then
    if not isyieldable() then return NO_YIELD end
  elseif puc51 and getinfo then
    -- 5.1 cannot yield across any C frame (plain pcall included), nor out
    -- of a metamethod or a for iterator.
    local lv = 3
    while true do
      local ar = getinfo(lv, "Sn")
      if not ar then break end
      if ar.what == "C" or ar.namewhat == "metamethod" or ar.namewhat == "for iterator" then
        return NO_YIELD
      end
      lv = lv + 1
    end
  end
  return nil
end
M._cannot_block = cannot_block

local function new_susp(fiber)
  -- [1] fiber, [2] waiting, [3] cleanups ([4]: see src/lua/lwait.c)
  return setmetatable({ fiber, true }, Susp)
end

local function run_cleanups(s)
  local c = s[3]
  if c then
    s[3] = nil
    for i = 1, c.n, 3 do c[i](c[i + 1], c[i + 2]) end
  end
end

------------------------------------------------------------------------------
-- Builders

local function prim_call_try(op) return op.tf() end
local function prim_call_block(susp, token, op) return op.bf(susp, token) end

-- A leaf Op.  `wrap_fn` post-processes the values (from try or complete).
function M.new_primitive(wrap_fn, try_fn, block_fn)
  if wrap_fn ~= nil then check_fn(wrap_fn, "new_primitive") end
  check_fn(try_fn, "new_primitive"); check_fn(block_fn, "new_primitive")
  return setmetatable({ k = PRIM, try = prim_call_try, block = prim_call_block,
                        tf = try_fn, bf = block_fn, wf = wrap_fn }, Op)
end

-- Internal fast constructor: try(op) and block(susp, token, op) receive the
-- op itself, so per-perform leaves need no closures (channel, cond, io ...).
-- `fields` becomes the op table (size it up front on hot paths).
function M._prim(try, block, wrap, fields)
  local o = fields or {}
  o.k = PRIM; o.try = try; o.block = block; o.wf = wrap
  return setmetatable(o, Op)
end

-- Like _prim with a single argument stored as op.a (one allocation).
function M._prim1(try, block, wrap, a)
  return setmetatable({ k = PRIM, try = try, block = block, wf = wrap, a = a }, Op)
end

local function always_try(op) local v = op.v; return true, unpack(v, 1, v.n) end
local function always1_try(op) return true, op.v1 end
local function noblock() end
local function never_try() return false end

-- An op that is always ready with the given values.
function M.always(...)
  local n = select('#', ...)
  if n == 1 then
    return setmetatable({ k = PRIM, try = always1_try, block = noblock, v1 = (...) }, Op)
  end
  return setmetatable({ k = PRIM, try = always_try, block = noblock, v = pack(...) }, Op)
end

local NEVER = setmetatable({ k = PRIM, try = never_try, block = noblock }, Op)
-- An op that never completes.
function M.never() return NEVER end

-- Race the given ops; nested choices are flattened.  A choice keeps its
-- arms in its own array part (one table per choice).
function M.choice(...)
  local n = select('#', ...)
  if n == 2 then
    -- Fast path (hot): two primitive arms make a flat choice directly.
    local a, b = ...
    if getmetatable(a) == Op and getmetatable(b) == Op and a.k == PRIM and b.k == PRIM then
      return setmetatable({ a, b, k = CHOICE, flat = true }, Op)
    end
  end
  if n == 1 then return check_op((...), "choice") end
  if n == 0 then return NEVER end
  -- k and flat in the constructor: the table is sized once (setting them
  -- afterwards costs two rehashes per choice, a hot path).
  local c = { k = CHOICE, flat = true, ... }
  local flat, nested = true, false
  for i = 1, n do
    local o = c[i]
    if getmetatable(o) ~= Op then error("choice: expected op, got " .. type(o), 2) end
    local k = o.k
    if k ~= PRIM then
      flat = false
      if k == CHOICE then nested = true end
    end
  end
  if nested then
    local out = {}
    flat = true
    for i = 1, n do
      local o = c[i]
      if o.k == CHOICE then
        for j = 1, #o do out[#out + 1] = o[j] end
        if not o.flat then flat = false end
      else
        out[#out + 1] = o
        if o.k ~= PRIM then flat = false end
      end
    end
    c = out
  end
  c.k = CHOICE; c.flat = flat
  return setmetatable(c, Op)
end

-- op.choice is C (src/lua/lperform.c, a hot path): it checks the arms
-- with the messages above and builds a two-primitive-arm choice itself;
-- everything else comes here.
M.choice = M._fast.make_choice(Op, M.choice)

-- g() builds the op afresh at every perform.
function M.guard(g)
  return setmetatable({ k = GUARD, g = check_fn(g, "guard") }, Op)
end

-- g(nack_op) builds an op; nack_op becomes ready if a leaf outside wins.
function M.with_nack(g)
  return setmetatable({ k = NACK, g = check_fn(g, "with_nack") }, Op)
end

-- Post-process the results with f (in the performing fiber; f may block).
function Op:wrap(f)
  check_fn(f, "wrap")
  if self.k == PRIM then
    -- Fold into the leaf so wrapped primitives keep the fast path.
    local o = {}
    for key, v in pairs(self) do o[key] = v end
    local inner = self.wf
    if inner then
      o.wf = function(...) return f(inner(...)) end
    else
      o.wf = f
    end
    return setmetatable(o, Op)
  end
  return setmetatable({ k = WRAP, op = self, f = f }, Op)
end

-- f() runs if another leaf of the same perform wins.
function Op:on_abort(f)
  return setmetatable({ k = ABORT, op = self, f = check_fn(f, "on_abort") }, Op)
end

-- One non-blocking attempt; if nothing is ready, thunk()'s results.
function Op:or_else(thunk)
  return setmetatable({ k = ORELSE, op = self, f = check_fn(thunk, "or_else") }, Op)
end

-- cleanup(false) after the op wins, cleanup(true) if it loses.
function Op:finally(cleanup)
  check_fn(cleanup, "finally")
  return self:wrap(function(...) cleanup(false); return ... end)
             :on_abort(function() cleanup(true) end)
end

-- Per perform: res = acquire(), op = use(res); release(res, aborted) once.
function M.bracket(acquire, release, use)
  check_fn(acquire, "bracket"); check_fn(release, "bracket"); check_fn(use, "bracket")
  return M.guard(function()
    local res = acquire()
    local released = false
    local o = check_op(use(res), "bracket")
    return o:wrap(function(...)
      if not released then released = true; release(res, false) end
      return ...
    end):on_abort(function()
      if not released then released = true; release(res, true) end
    end)
  end)
end

-- Race ops; the winner's index and values go through on_win(i, ...).
function M.race(ops, on_win)
  local arms = {}
  for i = 1, #ops do
    local o = check_op(ops[i], "race")
    if on_win then
      arms[i] = o:wrap(function(...) return on_win(i, ...) end)
    else
      arms[i] = o:wrap(function(...) return i, ... end)
    end
  end
  return M.choice(unpack(arms, 1, #ops))
end

-- Race ops; yields index, ... of the winner.
function M.first_ready(ops) return M.race(ops) end

-- Race named arms; yields name, ... of the winner.
function M.named_choice(arms)
  if type(arms) ~= "table" then error("named_choice: expected table, got " .. type(arms), 2) end
  local names = {}
  for name in pairs(arms) do names[#names + 1] = name end
  table.sort(names, function(a, b) return tostring(a) < tostring(b) end)
  local list = {}
  for i, name in ipairs(names) do
    list[i] = check_op(arms[name], "named_choice"):wrap(function(...) return name, ... end)
  end
  return M.choice(unpack(list, 1, #list))
end

-- Race two ops; yields true, ... if a wins, false, ... if b wins.
function M.boolean_choice(a, b)
  check_op(a, "boolean_choice"); check_op(b, "boolean_choice")
  return M.choice(a:wrap(function(...) return true, ... end),
                  b:wrap(function(...) return false, ... end))
end

------------------------------------------------------------------------------
-- Nack conditions (one per with_nack per perform)

local NackCond = {}

local function nack_try(op) return op.a.fired end
local function nack_block(susp, token, op)
  local c = op.a
  local n = #c
  c[n + 1] = susp; c[n + 2] = token
end

local function nack_fire(c)
  c.fired = true
  for i = 1, #c, 2 do
    local s = c[i]
    if s[2] then s:complete(c[i + 1]) end
    c[i] = nil; c[i + 1] = nil
  end
end

------------------------------------------------------------------------------
-- Compile: C = { n = leaves, [2i-1] = leaf, [2i] = wrap chain | false,
--               na, ab = { lo, hi, f_or_nackcond ... }, fb = first fallback }

local compile

local function push_abort(C, lo, f)
  local ab = C.ab
  if not ab then ab = {}; C.ab = ab end
  local na = C.na
  ab[na + 1] = lo; ab[na + 2] = C.n; ab[na + 3] = f
  C.na = na + 3
end

compile = function(op, chain, C)
  local k = op.k
  if k == PRIM then
    local n = C.n + 1
    C.n = n
    C[2 * n - 1] = op; C[2 * n] = chain
  elseif k == CHOICE then
    for i = 1, #op do compile(op[i], chain, C) end
  elseif k == WRAP then
    compile(op.op, { op.f, chain }, C)
  elseif k == GUARD then
    local o = op.g()
    if getmetatable(o) ~= Op then error("guard: builder returned " .. type(o) .. ", expected op", 0) end
    compile(o, chain, C)
  elseif k == ABORT then
    local lo = C.n + 1
    compile(op.op, chain, C)
    push_abort(C, lo, op.f)
  elseif k == NACK then
    local c = setmetatable({ fired = false }, NackCond)
    local lo = C.n + 1
    local o = op.g(M._prim1(nack_try, nack_block, nil, c))
    if getmetatable(o) ~= Op then error("with_nack: builder returned " .. type(o) .. ", expected op", 0) end
    compile(o, chain, C)
    push_abort(C, lo, c)
  else -- ORELSE: a pseudo-leaf after the inner leaves, never tried/blocked
    compile(op.op, chain, C)
    local n = C.n + 1
    C.n = n
    C[2 * n - 1] = op; C[2 * n] = chain
    if not C.fb then C.fb = n end
  end
end

local function fire_aborts(C, w)
  local ab = C.ab
  if not ab then return end
  for i = 1, C.na, 3 do
    if w < ab[i] or w > ab[i + 1] then
      local f = ab[i + 2]
      if getmetatable(f) == NackCond then
        nack_fire(f)
      else
        f()
      end
    end
  end
end

local function apply(chain, ...)
  if not chain then return ... end
  return apply(chain[2], chain[1](...))
end

-- Leaf i won with values ...: fire losers, then the wraps (inner first).
local function win(C, i, ...)
  fire_aborts(C, i)
  local leaf = C[2 * i - 1]
  local w = leaf.wf
  if w then return apply(C[2 * i], w(...)) end
  return apply(C[2 * i], ...)
end

local try_from
-- Returns i, ...values when leaf i was ready, false when none was.
local function try_result(C, i, left, ready, ...)
  if ready then return i, ... end
  if left <= 1 then return false end
  return try_from(C, i % C.n + 1, left - 1)
end
try_from = function(C, i, left)
  local leaf = C[2 * i - 1]
  if leaf.k == PRIM then return try_result(C, i, left, leaf.try(leaf)) end
  return try_result(C, i, left, false)
end

-- The compile and try phases of a general perform (run protected, see
-- perform_in): i, ...values of a ready leaf | false.
local function compile_try(op, C, sc)
  compile(op, false, C)
  if sc and sc._status then return sc:_raise() end
  local n = C.n
  if n == 0 then return false end
  return try_from(C, n > 1 and random(n) or 1, n)
end

local function noop() end

------------------------------------------------------------------------------
-- Wait queues (internal, used by fibers.scope, cond, waitgroup, exec):
-- FIFO queues of (suspension, token) pairs in C (src/lua/lwait.c);
-- entries whose suspension stopped waiting are compacted lazily, so
-- memory stays proportional to live waiters.
--   _waitq() -> q                a new empty wait queue
--   _waitq_push(q, s, tok)       append suspension s with token tok
--   _waitq_wake(q, ...)          complete every still-waiting entry (FIFO)
--                                with (tok, ...) and empty q
--   _waitq_len(q) -> n           slots in use (2 per entry, stale included)

M._waitq, M._waitq_push = M._fast.waitq, M._fast.waitq_push
M._waitq_wake, M._waitq_len = M._fast.waitq_wake, M._fast.waitq_len
local waitq_push = M._waitq_push

------------------------------------------------------------------------------
-- Perform

-- Scope protocol used by _perform_in (sc may be nil = not scope-aware):
--   sc._status   nil while ok; anything else means not ok
--   sc._cw       a wait queue (M._waitq) of cancel waiters; the scope
--                completes each waiting one with its token when it turns
--                not ok (stale entries are compacted lazily)
--   sc:_raise()  raises the cancellation sentinel / primary (never returns)

-- Woken while still waiting: resumed by something other than a
-- completion (a raw fiber:resume).  End the wait - its registrations go
-- stale - and raise.
local function stray_wake(s, token)
  s[2] = false
  run_cleanups(s)
  error("perform: unexpected wake-up token " .. tostring(token), 0)
end

local function after_block(C, s, sc, token, ...)
  if s[2] then
    fire_aborts(C, 0)
    return stray_wake(s, token)
  end
  run_cleanups(s)
  if token == CANCEL then
    fire_aborts(C, 0)
    return sc:_raise()
  elseif token == TASK_ERR then
    fire_aborts(C, 0)
    error((...), 0)
  end
  return win(C, token, ...)
end

local function block(C, sc)
  local fiber = current_fiber()
  if not fiber then error("perform: cannot block outside a fiber", 3) end
  local why = cannot_block(fiber)
  if why then
    fire_aborts(C, 0)
    error(why, 3)
  end
  local s = new_susp(fiber)
  for i = 1, C.n do
    local leaf = C[2 * i - 1]
    if leaf.k == PRIM then
      leaf.block(s, i, leaf)
      if not s[2] then break end
    end
  end
  if sc and s[2] then waitq_push(sc._cw, s, CANCEL) end
  return after_block(C, s, sc, suspend_yield())
end

-- After compile_try: an error there fires the aborts of everything
-- compiled so far (a bracket arm releases its resource) and is re-raised;
-- a ready leaf wins (its wraps run unprotected); else the fallback or block.
local function after_try(C, sc, ok, i, ...)
  if not ok then
    fire_aborts(C, 0)
    error(i, 0)
  end
  if i then return win(C, i, ...) end
  local fb = C.fb
  if fb then
    fire_aborts(C, fb)
    local o = C[2 * fb - 1]
    return apply(C[2 * fb], o.f())
  end
  return block(C, sc)
end

-- Single leaf fast path.
local function prim_after_block(op, s, sc, token, ...)
  if s[2] then return stray_wake(s, token) end
  run_cleanups(s)
  if token == CANCEL then return sc:_raise() end
  if token == TASK_ERR then error((...), 0) end
  local w = op.wf
  if w then return w(...) end
  return ...
end

-- (A separate, non-vararg frame: it is what a parked fiber keeps.)
local function prim_block(op, sc)
  local fiber = current_fiber() or no_fiber()
  local why = cannot_block(fiber)
  if why then error(why, 3) end
  local s = new_susp(fiber)
  op.block(s, 1, op)
  if sc and s[2] then waitq_push(sc._cw, s, CANCEL) end
  return prim_after_block(op, s, sc, suspend_yield())
end

local function prim_after_try(op, sc, ready, ...)
  if ready then
    local w = op.wf
    if w then return w(...) end
    return ...
  end
  return prim_block(op, sc)
end

-- Flat choice fast path: every arm is a primitive (wraps folded in), so
-- there is nothing to compile and no abort to fire.
local function flat_after_block(ops, s, sc, token, ...)
  if s[2] then return stray_wake(s, token) end
  run_cleanups(s)
  if token == CANCEL then return sc:_raise() end
  if token == TASK_ERR then error((...), 0) end
  local w = ops[token].wf
  if w then return w(...) end
  return ...
end

local function flat_block(ops, sc)
  local fiber = current_fiber()
  if not fiber then error("perform: cannot block outside a fiber", 4) end
  local why = cannot_block(fiber)
  if why then error(why, 4) end
  local s = new_susp(fiber)
  for i = 1, #ops do
    local leaf = ops[i]
    leaf.block(s, i, leaf)
    if not s[2] then break end
  end
  if sc and s[2] then waitq_push(sc._cw, s, CANCEL) end
  return flat_after_block(ops, s, sc, suspend_yield())
end

local flat_from
local function flat_result(ops, sc, i, left, ready, ...)
  if ready then
    local w = ops[i].wf
    if w then return w(...) end
    return ...
  end
  if left <= 1 then return flat_block(ops, sc) end
  return flat_from(ops, sc, i % #ops + 1, left - 1)
end
flat_from = function(ops, sc, i, left)
  local leaf = ops[i]
  return flat_result(ops, sc, i, left, leaf.try(leaf))
end

-- Perform op, raced against sc's not-ok condition when sc is given.
local function perform_in(op, sc)
  if sc and sc._status then return sc:_raise() end
  local k = op.k
  if k == PRIM then return prim_after_try(op, sc, op.try(op)) end
  if k == CHOICE and op.flat then
    local n = #op
    return flat_from(op, sc, random(n), n)
  end
  local C = { false, false, false, false, n = 0, na = 0 }
  return after_try(C, sc, ypcall(compile_try, op, C, sc))
end
M._perform_in = perform_in

-- Synchronise on op; not scope-aware (doc/library.md §4).
function M.perform_raw(op)
  if getmetatable(op) ~= Op then error("perform: expected op, got " .. type(op), 2) end
  return perform_in(op, nil)
end

-- Method form: op:perform_raw().
Op.perform_raw = M.perform_raw

return M
