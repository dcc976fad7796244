-- fibers.lua - the facade of the fibers library (doc/library.md §2): the entry
-- point `run`, scope-aware spawn/perform, the Op builders and the scope
-- boundaries.  It owns the teardown of §0.10: after main's scope joins, the
-- root is cancelled ("fibers.run finished") and joined, then every raw fiber,
-- timer and fd wait left in the scheduler is dropped.
local runtime = require 'fibers.runtime'
local op = require 'fibers.op'
local scope = require 'fibers.scope'

local unpack = table.unpack or unpack
local perform_in = op._perform_in

local M = {}

local function pack(...) return { n = select('#', ...), ... } end

-- Op builders (all build; named_choice performs, see below).
M.choice, M.guard, M.with_nack = op.choice, op.guard, op.with_nack
M.always, M.never, M.bracket = op.always, op.never, op.bracket
M.race, M.first_ready, M.boolean_choice = op.race, op.first_ready, op.boolean_choice
M.named_choice_op = op.named_choice
M.run_scope_op = scope.run_op
M.current_scope = scope.current
M.set_unscoped_error_handler = scope.set_unscoped_error_handler

-- Monotonic seconds, cached per turn.
function M.now() return runtime.now() end

local current_fiber, Op = runtime.current_fiber, op.Op
-- Raw metatable read, as in fibers.op (no __metatable probe per perform).
local getmetatable = (debug and debug.getmetatable) or getmetatable

-- Scope-aware perform: raises the sentinel / primary when the scope is not ok.
function M.perform(o)
  local f = current_fiber()
  if not f then error("fibers.perform: must be called from inside a fiber", 2) end
  if getmetatable(o) ~= Op then error("perform: expected op, got " .. type(o), 2) end
  return perform_in(o, f.scope or scope.root())
end
-- On Lua 5.3+ it is C (src/lua/lperform.c, a hot path): the same checks
-- and messages; primitive ops and flat choices are tried, blocked on and
-- woken in C; the rest here.
if op._fast.make_perform then
  M.perform = op._fast.make_perform(Op, function(o)
    return perform_in(o, current_fiber().scope or scope.root())
  end, op._TASK_ERR)
end

-- Status-first perform: "ok", ... | "failed", primary | "cancelled", reason.
function M.try_perform(o)
  if not runtime.current_fiber() then
    error("fibers.try_perform: must be called from inside a fiber", 2)
  end
  if getmetatable(o) ~= op.Op then error("try_perform: expected op, got " .. type(o), 2) end
  return op.perform_raw(scope.current():try_op(o))
end

-- Perform a named race scope-aware: name, ...values of the winner.
function M.named_choice(arms)
  local f = runtime.current_fiber()
  if not f then error("fibers.named_choice: must be called from inside a fiber", 2) end
  return perform_in(op.named_choice(arms), f.scope or scope.root())
end

-- Spawn fn(...) in a new fiber of the current scope: true | false, reason.
function M.spawn(fn, ...)
  if type(fn) ~= "function" then error("spawn: expected function, got " .. type(fn), 2) end
  return scope.current():_spawn(false, fn, ...)
end

-- Run fn(child, ...) in a child scope and join it:
-- status, err, report, ...results (results only when ok).
function M.run_scope(fn, ...)
  if not runtime.current_fiber() then
    error("fibers.run_scope: must be called from inside a fiber", 2)
  end
  return op.perform_raw(scope.run_op(fn, ...))
end

-- Entry point: run main_fn(scope, ...) under a fresh child of the root,
-- drive the scheduler until it has joined, tear everything down, and
-- return its results or raise its primary failure / cancellation reason.
function M.run(main_fn, ...)
  if runtime.current_fiber() then
    error("fibers.run must not be called from inside a fiber", 2)
  end
  if type(main_fn) ~= "function" then
    error("fibers.run: expected function, got " .. type(main_fn), 2)
  end
  local sched = runtime.current_scheduler
  local root = scope.root()
  local args = pack(...)
  local res, derr
  runtime.spawn_raw(function()
    local ok, e = scope._pcall(function()
      res = pack(op.perform_raw(scope.run_op(main_fn, unpack(args, 1, args.n))))
      root:cancel("fibers.run finished")
      op.perform_raw(root:join_op())
    end)
    if not ok then derr = e end
    sched:stop()
  end)
  local ok, err = pcall(sched.main, sched)
  sched:clear()
  scope._new_root()
  if not ok then error(err, 0) end
  if derr ~= nil then error(derr, 0) end
  if not res then error("fibers.run: the main scope never finished (deadlock)", 0) end
  if res[1] == "ok" then return unpack(res, 4, res.n) end
  local p = res[2]
  if scope.is_cancelled(p) then p = scope.cancel_reason(p) end
  error(tostring(p), 0)
end

return M
