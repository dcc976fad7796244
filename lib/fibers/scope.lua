-- fibers/scope.lua - structured concurrency (doc/library.md §3): the scope tree,
-- admission, cancellation and faults, the non-interruptible join with LIFO
-- finalisers, reports, scope boundaries (run_op/run) and the cancellation
-- sentinel.
--
-- A fiber's scope lives in `fiber.scope` (runtime fibers are tables); a
-- fiber without one belongs to the root.  Nothing here grows per perform:
-- cancel waiters sit in wait queues that compact lazily (op.lua), finalisers
-- and commands are keyed sets, and joined children detach from their parent
-- (doc/library.md §0.8).
--
-- Exec-layer hooks: `scope:_add_command(cmd)` and
-- `scope:_remove_command(cmd)` maintain the scope's set of live Commands;
-- `snapshot().commands` lists `cmd:_info()` for each, in insertion order
-- (`{ pid, argv, state, since, exit }`).  A Command removes itself once
-- reaped (and detaches its finaliser), so the set stays bounded.
local runtime = require 'fibers.runtime'
local op = require 'fibers.op'
local compat = require 'fibers.compat'

local perform_in, perform_raw = op._perform_in, op.perform_raw
local prim, waitq, push, wake = op._prim1, op._waitq, op._waitq_push, op._waitq_wake
-- invalidate(): after a scope turns not ok or a fiber changes scope, so
-- that the C fast paths check the fiber's scope again (src/lua/lfrec.c).
local invalidate = op._fast.invalidate
local current_fiber = runtime.current_fiber
local spawn_raw, spawn_in = runtime.spawn_raw, runtime._spawn_in
local unpack = table.unpack or unpack
local select, type, error, tostring, setmetatable, getmetatable, pairs, ipairs =
      select, type, error, tostring, setmetatable, getmetatable, pairs, ipairs

local M = {}

local function pack(...) return { n = select('#', ...), ... } end

-- Yield-safe pcall/xpcall (Lua 5.1 cannot yield across pcall): fibers.compat.
local ypcall, yxpcall = compat.pcall, compat.xpcall
M._pcall = ypcall

------------------------------------------------------------------------------
-- Cancellation sentinel (§3.8)

local Cancelled = { __name = "fibers.cancelled" }
Cancelled.__index = Cancelled
Cancelled.__tostring = function(c) return "cancelled: " .. tostring(c.reason) end

-- A new cancellation sentinel carrying reason.
function M.cancelled(reason)
  return setmetatable({ reason = reason == nil and "cancelled" or reason }, Cancelled)
end
-- True if v is a cancellation sentinel.
function M.is_cancelled(v) return getmetatable(v) == Cancelled end
-- The reason carried by sentinel v (nil if v is not one).
function M.cancel_reason(v)
  if getmetatable(v) == Cancelled then return v.reason end
  return nil
end
local is_cancelled = M.is_cancelled

local debug_on = false
-- With true, fault messages of fibers carry a traceback.
function M.set_debug(on) debug_on = not not on end

local unscoped_handler = nil
local runtime_default

local function report_unscoped(fiber, err)
  if unscoped_handler then return unscoped_handler(fiber, err) end
  io.stderr:write("fibers: uncaught error in root-level fiber: ", tostring(err), "\n")
end

-- Raw fibers: a cancellation sentinel escaping one (e.g. a raw fiber in
-- fibers.perform when fibers.run cancels the root) is not an error.
runtime_default = runtime.set_unscoped_error_handler(function(fiber, err)
  if M.is_cancelled(err) then return end
  if unscoped_handler then return unscoped_handler(fiber, err) end
  return runtime_default(fiber, err)
end)

-- h(fiber, err) receives errors of raw fibers and of root-level fibers;
-- nil restores the defaults (one line on stderr).
function M.set_unscoped_error_handler(h)
  unscoped_handler = h
end

local state_hook = nil
-- h(scope, from, to, reason) on every state change (running, joining, ok,
-- failed, cancelled); for supervisors (fibersd watch).  nil clears.
function M.set_state_hook(h) state_hook = h end

------------------------------------------------------------------------------
-- The Scope object

local Scope = {}
Scope.__index = Scope
Scope.__name = "fibers.scope"
M.Scope = Scope

local registry = setmetatable({}, { __mode = "v" })
local next_id = 0
local root
local GONE_MAX = 64  -- not-ok children kept for the report after they detach

local function new_scope(parent)
  next_id = next_id + 1
  local s = setmetatable({
    _id = next_id, _parent = parent, _children = {}, _nch = 0, _holes = 0, _nf = 0,
    _cw = waitq(), _st = "running", _since = runtime.now(),
  }, Scope)
  registry[next_id] = s
  return s
end

-- The scope with this id, or nil (weak registry).
function M.by_id(id) return registry[id] end
Scope.by_id = M.by_id

-- The process-wide root scope.
function M.root() return root end

-- The scope of the running fiber (the root outside fibers).
function M.current()
  local f = current_fiber()
  if f then return f.scope or root end
  return root
end

-- Replace the (joined) root by a fresh one; used by fibers.run teardown.
function M._new_root()
  root = new_scope(nil)
  root._isroot = true
  return root
end
M._new_root()

-- The state shown in snapshots: running|joining|ok|failed|cancelled.
function Scope:state()
  if self._js == "joined" then return self._status or "ok" end
  if self._status then return self._status end
  if self._js then return "joining" end
  return "running"
end

-- Recompute the state; on a change record `since` and call the state hook.
function Scope:_changed()
  local to = self:state()
  local from = self._st
  if to ~= from then
    self._st = to
    self._since = runtime.now()
    if state_hook then state_hook(self, from, to, self._err) end
  end
end

-- Integer id, unique per process.
function Scope:id() return self._id end
-- Name or nil.
function Scope:name() return self._name end

-- Set (or clear with nil) the name; [A-Za-z0-9_.-]+, not all digits.
function Scope:set_name(s)
  if s ~= nil and (type(s) ~= "string" or not s:match("^[A-Za-z0-9_.%-]+$")
                   or s:match("^%d+$")) then
    error("scope name must match [A-Za-z0-9_.-]+ and not be all digits: " .. tostring(s), 2)
  end
  self._name = s
  return self
end

-- Parent scope (nil for the root).
function Scope:parent() return self._parent end

-- Attached children, in attachment order (a copy).  `_children` keeps
-- them in slots 1.._nch with `false` holes left by detached ones,
-- compacted once holes outnumber live children (O(1) amortised detach).
function Scope:children()
  local out, n = {}, 0
  local ch = self._children
  for i = 1, self._nch do
    local c = ch[i]
    if c then n = n + 1; out[n] = c end
  end
  return out
end

-- Record an inherited default.
function Scope:set_default(key, value)
  local d = self._defaults
  if not d then d = {}; self._defaults = d end
  d[key] = value
  return self
end

-- The value set by the nearest ancestor (self included), or nil.
function Scope:default(key)
  local s = self
  while s do
    local d = s._defaults
    if d and d[key] ~= nil then return d[key] end
    s = s._parent
  end
  return nil
end

-- Why spawn/child/run_op are refused, or nil when admission is open.
function Scope:_refusal()
  local st = self._status
  if st == "failed" then return "scope has failed" end
  if st == "cancelled" then return "scope is cancelled" end
  if self._js then return "scope is joining" end
  if self._closed then return "scope is closed" end
  return nil
end

-- Why admission is closed: as _refusal, but a close gives its own reason.
local function closed_reason(S)
  local why = S:_refusal()
  if why == "scope is closed" then return S._closed end
  return why
end

-- "open" or "closed", reason.
function Scope:admission()
  local why = closed_reason(self)
  if why then return "closed", why end
  return "open"
end

-- "running", nil | "failed", primary | "cancelled", reason | after join
-- the joined outcome ("ok" | "failed", primary | "cancelled", reason).
function Scope:status()
  if self._js == "joined" then return self._status or "ok", self._err end
  if self._status then return self._status, self._err end
  return "running", nil
end

local function admission_closed(S)
  local q = S._aw
  if q then S._aw = nil; wake(q, S) end
end

-- Attach a new child scope; nil, reason when admission is closed.
function Scope:child()
  local why = self:_refusal()
  if why then return nil, why end
  local c = new_scope(self)
  local n = self._nch + 1
  self._nch = n
  self._children[n] = c
  c._slot = n
  return c
end

-- Close admission (reason default "scope is closed").  The first reason
-- given is kept, even when an earlier close gave none.  No effect after join.
function Scope:close(reason)
  if self._js == "joined" then return end
  if self._closed then
    if reason and self._closedflt then
      self._closed, self._closedflt = reason, nil
    end
    return
  end
  if not reason then
    self._closed, self._closedflt = "scope is closed", true
  else
    self._closed = reason
  end
  admission_closed(self)
end

-- Cancel: first reason wins; cascades to attached children.  Once the
-- finalisers have started (_fin_st) the status is frozen: a later cancel
-- is ignored, as after the join.
function Scope:cancel(reason)
  if self._js == "joined" or self._status or self._fin_st then return end
  if reason == nil then reason = "scope cancelled" end
  self._status, self._err = "cancelled", reason
  invalidate()
  self:_changed()
  admission_closed(self)
  wake(self._cw, self)
  local ch = self:children()
  for i = 1, #ch do ch[i]:cancel(reason) end
end

local function add_extra(S, msg)
  local x = S._extra
  if not x then x = {}; S._extra = x end
  x[#x + 1] = msg
end

-- Record a fault (a normalised string): primary or secondary error.
-- `raw` is the message without a debug traceback (for §0.7 comparisons).
function Scope:_fault(msg, raw)
  local st = self._status
  if st == "failed" then
    if msg ~= self._err then add_extra(self, msg) end
    return
  end
  self._status, self._err, self._rawp = "failed", msg, raw or msg
  invalidate()
  self:_changed()
  admission_closed(self)
  if not st then
    wake(self._cw, self)
    local ch = self:children()
    for i = 1, #ch do ch[i]:cancel(msg) end
  end
  local q = self._fw
  if q then self._fw = nil; wake(q, self) end
end

-- Raise for a not-ok scope: the primary (failed) or the sentinel.
function Scope:_raise()
  if self._status == "failed" then error(self._err, 0) end
  error(M.cancelled(self._err), 0)
end

-- Fault record for an error e escaping a fiber body of this scope.
-- e may be a { raw, tb } pair built by the debug traceback handler.
function Scope:_fiber_error(e, fiber)
  local raw, full = e, nil
  if type(e) == "table" and e.tb_raw ~= nil then raw, full = e.tb_raw, e.tb end
  if is_cancelled(raw) then
    if not self._isroot then self:cancel(raw.reason) end
    return
  end
  local msg = tostring(raw)
  if self._isroot then return report_unscoped(fiber, full or msg) end
  if self._status == "failed" and (msg == self._err or msg == self._rawp) then
    return  -- a sibling re-raising the primary (§0.7)
  end
  self:_fault(full or msg, msg)
end

-- co: the dead coroutine on Lua 5.1 (see fibers.compat), else nil.
local function tb_handler(e, co)
  if is_cancelled(e) then return e end
  if co then return { tb_raw = e, tb = debug.traceback(co, tostring(e)) } end
  return { tb_raw = e, tb = debug.traceback(tostring(e), 2) }
end

local function protected(f, ...)
  if not debug_on then return ypcall(f, ...) end
  return yxpcall(f, tb_handler, ...)
end

local function fiber_done(S)
  local n = S._nf - 1
  S._nf = n
  if n == 0 then
    local q = S._iw
    if q then S._iw = nil; wake(q, S) end
  end
end

-- A scope fiber runs its function directly as the coroutine body (no
-- entry frame, no pcall: a parked fiber keeps only its own frames).  Its
-- `_exit` field names the scope; the runtime calls this handler outside
-- the fiber, right after the resume in which the function returned or
-- raised, instead of the unscoped error handler.  (For a fiber that
-- returned while others of its scope remain - _nf > 1 - the C runner
-- does fiber_done's decrement itself: src/lua/lfiber.c quick_exit.)
runtime._set_exit_handler(function(f, ok, e)
  local S = f._exit
  if not ok then
    if debug_on then e = tb_handler(e, f.co) end
    S:_fiber_error(e, f)
  end
  fiber_done(S)
end)

-- Admission check, then a new fiber running fn(scope?, ...) in this scope.
function Scope:_spawn(with_scope, fn, ...)
  local why = self:_refusal()
  if why then return false, why end
  self._nf = self._nf + 1
  if select('#', ...) == 0 then
    spawn_in(self, with_scope, fn)
    return true
  end
  local f
  if with_scope then
    f = spawn_raw(fn, self, ...)
  else
    f = spawn_raw(fn, ...)
  end
  f.scope = self
  f._exit = self
  return true
end

-- Run fn(scope, ...) in a new fiber of this scope; false, reason if refused.
-- Scope:spawn is C (src/lua/lfiber.c f_scope_spawn, a hot path): it checks
-- fn, and does the case of no extra arguments with admission open (none
-- of _status, _js, _closed: _refusal() returning nil) itself; every other
-- call goes to this general form.
runtime._set_spawn_general(function(self, fn, ...)
  return self:_spawn(true, fn, ...)
end)
Scope.spawn = runtime._scope_spawn

-- Register finaliser f(aborted, status, primary_or_nil); returns detach().
function Scope:finally(f)
  if type(f) ~= "function" then error("finally: expected function, got " .. type(f), 2) end
  if self._js == "joined" then error("finally: scope has already joined", 2) end
  local fin = self._fin
  if not fin then fin = {}; self._fin = fin end
  local k = (self._finseq or 0) + 1
  self._finseq = k
  fin[k] = f
  return function() if fin[k] == f then fin[k] = nil end end
end
Scope.defer = Scope.finally

-- Exec hook: add a live Command to this scope's set.
function Scope:_add_command(cmd)
  local c = self._cmds
  if not c then c = {}; self._cmds = c end
  local k = (self._cmdseq or 0) + 1
  self._cmdseq = k
  c[cmd] = k
end

-- Exec hook: remove a Command from this scope's set.
function Scope:_remove_command(cmd)
  local c = self._cmds
  if c then c[cmd] = nil end
end

-- A plain table describing the scope now (for supervisors).
function Scope:snapshot()
  local kids, n = {}, 0
  local ch = self._children
  for i = 1, self._nch do
    local c = ch[i]
    if c then n = n + 1; kids[n] = c._id end
  end
  local cmds = {}
  if self._cmds and next(self._cmds) ~= nil then
    local order = {}
    for cmd, k in pairs(self._cmds) do order[#order + 1] = { k, cmd } end
    table.sort(order, function(a, b) return a[1] < b[1] end)
    for i, e in ipairs(order) do cmds[i] = e[2]:_info() end
  end
  return { id = self._id, name = self._name, state = self:state(), since = self._since,
           fibers = self._nf, children = kids, commands = cmds }
end

------------------------------------------------------------------------------
-- Condition ops (§3.3); completions pass the scope, wraps read its state.

local function try_true(o) return true, o.a end
local function block_cw(s, tok, o) push(o.a._cw, s, tok) end
-- The fault/admission/done/idle queues are created on first use.
local function push_lazy(S, key, s, tok)
  local q = S[key]
  if not q then q = waitq(); S[key] = q end
  push(q, s, tok)
end
local function block_fw(s, tok, o) push_lazy(o.a, "_fw", s, tok) end
local function block_aw(s, tok, o) push_lazy(o.a, "_aw", s, tok) end
local function block_dw(s, tok, o) push_lazy(o.a, "_dw", s, tok) end
local function block_iw(s, tok, o) push_lazy(o.a, "_iw", s, tok) end

local function try_notok(o) local S = o.a; if S._status then return true, S end return false end
local function try_fault(o) local S = o.a; if S._status == "failed" then return true, S end return false end
local function try_closed(o) local S = o.a; if S:_refusal() then return true, S end return false end
local function try_done(o) local S = o.a; if S._js == "joined" then return true, S end return false end
local function try_idle(o) return o.a._nf == 0 end

local function wrap_cancel(S) return "cancelled", S._err end
local function wrap_fault(S) return "failed", S._err end
local function wrap_notok(S) return S._status, S._err end
local function wrap_closed(S) return "closed", closed_reason(S) end
local function wrap_done(S) return S._status or "ok", S._err, S._report end

-- Ready once the scope is cancelled (or failed): "cancelled", reason.
function Scope:cancel_op() return prim(try_notok, block_cw, wrap_cancel, self) end
-- Ready once the scope has failed: "failed", primary.
function Scope:fault_op() return prim(try_fault, block_fw, wrap_fault, self) end
-- Ready once the scope is failed or cancelled: status, primary_or_reason.
function Scope:not_ok_op() return prim(try_notok, block_cw, wrap_notok, self) end
-- Ready once admission is closed: "closed", reason.
function Scope:close_op() return prim(try_closed, block_aw, wrap_closed, self) end
-- Ready once the scope has joined (does not start the join): status, err, report.
function Scope:done_op() return prim(try_done, block_dw, wrap_done, self) end

------------------------------------------------------------------------------
-- Join (§3.5)

local join_proc

-- Step 1 of the join: mark joining and close admission.
function Scope:_begin_join()
  self._js = "joining"
  self:_changed()
  admission_closed(self)
end

-- Run the finalisers, newest first.  One added while they run has a
-- higher key than every pending one, so it runs next (LIFO among the
-- rest, like Go's defer).  From here on the scope's status is frozen
-- against cancellation (_fin_st); a finaliser that raises still fails an
-- ok scope.
local function run_finalisers(S)
  S._fin_st = true
  local fin = S._fin
  if not fin then return end
  local f = current_fiber()
  local prev = f and f.scope
  if f then f.scope = S; invalidate() end
  local top = S._finseq or 0
  local k = top
  while k >= 1 do
    local fn = fin[k]
    if fn then
      fin[k] = nil
      local st = S._status
      local ok, e = protected(fn, st ~= nil, st or "ok", S._err)
      if not ok then
        local raw = e
        if type(e) == "table" and e.tb_raw ~= nil then raw = e.tb_raw; e = e.tb end
        local msg
        if is_cancelled(raw) then
          msg = "finaliser raised cancellation: " .. tostring(raw.reason)
        else
          msg = tostring(e)
        end
        if not S._status then
          S._status, S._err = "failed", msg
          invalidate()
          wake(S._cw, S)
          local q = S._fw
          if q then S._fw = nil; wake(q, S) end
        elseif msg ~= S._err then
          add_extra(S, msg)
        end
      end
    end
    if S._finseq > top then top = S._finseq; k = top else k = k - 1 end
  end
  if f then f.scope = prev; invalidate() end
end

local function child_entry(c)
  return { id = c._id, name = c._name, status = c._status or "ok", primary = c._err,
           report = c._report }
end

local function detach(S)
  local P = S._parent
  if not P then return end
  local ch = P._children
  local slot = S._slot
  if slot and ch[slot] == S then
    ch[slot] = false
    local holes = P._holes + 1
    if holes > 16 and holes * 2 > P._nch then
      local j = 0
      for i = 1, P._nch do
        local c = ch[i]
        if c then j = j + 1; ch[j] = c; c._slot = j end
      end
      for i = j + 1, P._nch do ch[i] = nil end
      P._nch, holes = j, 0
    end
    P._holes = holes
  end
  if S._status and not P._step3 then
    local g = P._gone
    if not g then g = {}; P._gone = g end
    g[#g + 1] = child_entry(S)
    if #g > GONE_MAX then table.remove(g, 1) end
  end
end

-- Run the whole join of S in the calling fiber (S._js is "joining").
join_proc = function(S)
  while S._nf > 0 do perform_raw(prim(try_idle, block_iw, nil, S)) end
  local kids = S:children()
  S._step3 = true  -- from here on, children report through `kids`
  for _, c in ipairs(kids) do
    if not c._js then
      c:_begin_join()
      join_proc(c)
    elseif c._js == "joining" then
      perform_raw(c:done_op())
    end
  end
  -- not-ok children that detached earlier (bounded), then those joined
  -- here, in attachment order
  local entries = {}
  local g = S._gone
  if g then for i = 1, #g do entries[i] = g[i] end end
  for _, c in ipairs(kids) do entries[#entries + 1] = child_entry(c) end
  run_finalisers(S)
  S._report = { id = S._id, name = S._name, extra_errors = S._extra or {},
                children = entries }
  S._js = "joined"
  S._fin, S._gone, S._iw, S._aw = nil, nil, nil, nil
  S:_changed()
  local q = S._dw
  if q then S._dw = nil; wake(q, S) end
  detach(S)
end

-- An op that starts the join (if not started) and yields status, err, report.
function Scope:join_op()
  local S = self
  return op.guard(function()
    if not S._js then
      S:_begin_join()
      runtime.spawn_raw(join_proc, S)
    end
    return S:done_op()
  end)
end

-- Perform join_op (not interruptible).
function Scope:join() return perform_raw(self:join_op()) end

------------------------------------------------------------------------------
-- Performing under a scope

local function need_fiber(who)
  if not current_fiber() then error(who .. ": must be called from inside a fiber", 3) end
end

-- Perform op raced against this scope's not-ok condition; raises.
function Scope:perform(o)
  if getmetatable(o) ~= op.Op then error("perform: expected op, got " .. type(o), 2) end
  return perform_in(o, self)
end

-- An op yielding "ok", ... | "failed", primary | "cancelled", reason.
-- If the op completed but the scope turned not ok before the fiber woke,
-- the status wins and the op's values follow packed as a third result.
function Scope:try_op(o)
  if getmetatable(o) ~= op.Op then error("try_op: expected op, got " .. type(o), 2) end
  local S = self
  return op.guard(function()
    if S._status then return op.always(S._status, S._err) end
    return op.choice(o:wrap(function(...)
      if S._status then return S._status, S._err, pack(...) end
      return "ok", ...
    end), S:not_ok_op())
  end)
end

-- Perform try_op(op).
function Scope:try(o)
  need_fiber("try")
  return perform_raw(self:try_op(o))
end

------------------------------------------------------------------------------
-- Boundaries (§3.7)

local function empty_report() return { extra_errors = {}, children = {} } end

local function run_body(S, s, tok, body, args)
  local f = current_fiber()
  f.scope = S
  invalidate()
  local r = pack(protected(body, S, unpack(args, 1, args.n)))
  if not r[1] then S:_fiber_error(r[2], f) end
  fiber_done(S)
  S:close()
  if not S._js then
    S:_begin_join()
    join_proc(S)
  elseif S._js == "joining" then
    perform_raw(S:done_op())
  end
  f.scope = nil
  invalidate()
  if s:waiting() then
    if S._status then
      s:complete(tok, S._status, S._err, S._report)
    else
      s:complete(tok, "ok", nil, S._report, unpack(r, 2, r.n))
    end
  end
end

local function run_try(o)
  local why = o.a.P:_refusal()
  if why then return true, "cancelled", why, empty_report() end
  return false
end

local function run_block(s, tok, o)
  local a = o.a
  local child, why = a.P:child()
  if not child then return s:complete(tok, "cancelled", why, empty_report()) end
  a.ctx.child = child
  child._nf = child._nf + 1
  runtime.spawn_raw(run_body, child, s, tok, a.body, a.args)
end

-- An op running body_fn(child, ...) in a new child scope of the current one.
function M.run_op(body_fn, ...)
  if type(body_fn) ~= "function" then
    error("run_op: expected function, got " .. type(body_fn), 2)
  end
  local args = pack(...)
  return op.guard(function()
    local ctx = {}
    return prim(run_try, run_block, nil, { P = M.current(), ctx = ctx, body = body_fn, args = args })
      :on_abort(function()
        local c = ctx.child
        if c then
          c:cancel("aborted")
          perform_raw(c:done_op())
        end
      end)
  end)
end

-- Perform run_op without being interrupted by the caller's cancellation.
function M.run(body_fn, ...)
  need_fiber("run_scope")
  return perform_raw(M.run_op(body_fn, ...))
end

return M
