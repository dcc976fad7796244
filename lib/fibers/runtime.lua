-- fibers.runtime - fibers (coroutines + a little state) on top of the C
-- scheduler `fibers.core`.sched (doc/library.md §1, §5; the "Runtime contract"
-- of the project brief).  This layer knows nothing of Ops or scopes: it
-- creates fibers, suspends them, and resumes them when somebody calls
-- fiber:resume(...).  Runs on Lua 5.1-5.4 and LuaJIT (common subset).
--
-- Scheduler (runtime.current_scheduler, one per Lua state), all in C:
--   schedule(task)                 run task next turn (FIFO); a task is a
--                                  function or a value with a run method
--   schedule_at_time(t, task) -> h run task in the first turn with now() >= t
--   cancel_timer(h) -> bool        O(log n); false if already fired/cancelled
--   wait_fd(fd, "r"|"w", task) -> h | nil, msg, errno
--                                  one-shot; errors/hang-ups count as ready
--   cancel_fd(h) -> bool, forget_fd(fd) -> n (drop all waits; before close)
--   set_fd_background(fd, on)      waits on fd do not stop the jumps of
--                                  the virtual clock (fibers.testing)
--   run(now?)                      one turn, never blocks; `now` = synthetic
--   main()                         turns until stop(); raises on deadlock
--   stop(), now(), next_wake_time(), clear(), counts(), backend()
--
-- Deadlock: main() raises "fibers: deadlock: every fiber is blocked and no
-- timer or I/O can wake one" when nothing is runnable and no timer or fd
-- wait is pending, instead of sleeping forever.
local core = require 'fibers.core'

local coroutine_create, coroutine_yield = coroutine.create, coroutine.yield

local M = {}

local sched = core.sched.new()
M.current_scheduler = sched
local schedule = sched.schedule

-- Fresh monotonic clock read (seconds); use it to compute deadlines.
M.monotime = core.sys.monotime

-- Fiber: fields co (coroutine), tag (inherited), plus free fields for upper
-- layers (_exit: see _set_exit_handler).  Private fields start with an
-- underscore: _n is the number of pending resume values (nil = not
-- scheduled), _1.._3 / _v hold them (a negative _n, -n - 1: the n values
-- are already on the suspended coroutine's stack); dead is set once the
-- function returned or raised.  A scope fiber (_spawn_in, Scope:spawn)
-- gets its coroutine when it first runs (until then co is nil and _f holds
-- the function), and with nothing to inherit it is queued as a lazy record
-- whose table is made only when something asks for the running fiber;
-- on Lua 5.4 the coroutine of a fiber whose function returned is recycled
-- for a later fiber and co set to nil (doc/decisions.md, "Hot paths in
-- C").  The hot paths - running a fiber (the scheduler's task interface),
-- fiber:resume, the running fiber, spawning a scope fiber - are C
-- (src/lua/lfiber.c); the scheduler resumes queued fibers directly.
local Fiber = {}
Fiber.__index = Fiber
M.Fiber = Fiber

local C = sched:_fibers(Fiber)
local current_fiber, set_handler = C.current, C.set

-- Yielded by suspend/yield (any yield of a fiber's coroutine suspends it).
local SUSPENDED = setmetatable({}, { __name = "fibers.suspended" })

local function default_handler(fiber, err)
  io.stderr:write("fibers: uncaught error in fiber: ", tostring(err), "\n")
end
set_handler("unscoped", default_handler)
local unscoped_handler = default_handler

-- The task interface: resume the coroutine with the values given to
-- fiber:resume() (none if the fiber itself was handed to the scheduler as
-- a task, e.g. schedule_at_time(t, fiber)).  Called by the scheduler only.
Fiber.run = C.run

-- fiber:resume(...): schedule the fiber to continue in the next turn; the
-- values become the results of its pending runtime.suspend().  Never runs
-- it synchronously.  Resuming twice before it ran, or a finished fiber,
-- is a bug and raises.
Fiber.resume = C.resume

-- True while the fiber has been resumed but has not run yet.
-- (C: _n is set, or its fiber record - lfrec.c - is queued.)
Fiber.scheduled = C.scheduled

-- Internal (fibers.op): resume fiber f with ... right now; only from
-- scheduler context (a task run by the scheduler, not inside a fiber).
M._run_now = C.run_now

-- runtime.spawn_raw(fn, ...) -> fiber: a fiber with no scope, that calls
-- fn(...) in the next turn.  Errors escaping it go to the unscoped handler.
function M.spawn_raw(fn, ...)
  if type(fn) ~= "function" then
    error("fibers: spawn_raw expects a function", 2)
  end
  local cur = current_fiber()
  local f = setmetatable({ co = coroutine_create(fn), tag = cur and cur.tag }, Fiber)
  f:resume(...)
  return f
end

-- Internal (fibers.scope): _spawn_in(S, with_scope, fn): queue a fiber of
-- scope S calling fn(S) (with_scope) or fn(), i.e. spawn_raw plus `scope`
-- and `_exit` = S, built in C (spawning is a hot path); returns nothing.
M._spawn_in = C.spawn_in

-- Internal (fibers.scope): Scope:spawn in C, whose cases other than the
-- hot one (no extra arguments, admission open) call the Lua form given
-- to _set_spawn_general(f).
M._scope_spawn = C.scope_spawn
function M._set_spawn_general(f) set_handler("spawn", f) end

-- runtime.current_fiber() -> the running fiber, or nil outside fibers.
M.current_fiber = current_fiber

-- runtime.now() -> the scheduler's cached turn time (monotonic seconds).
function M.now()
  return sched:now()
end

-- runtime.suspend(block_fn, ...): call block_fn(scheduler, fiber, ...),
-- then yield; returns the values that fiber:resume(...) passes later.
function M.suspend(block_fn, ...)
  local f = current_fiber()
  if not f then
    error("fibers: suspend called outside a fiber", 2)
  end
  block_fn(sched, f, ...)
  return coroutine_yield(SUSPENDED)
end

-- runtime.yield(): let every other runnable task run; continue next turn.
function M.yield()
  local f = current_fiber()
  if not f then
    error("fibers: yield called outside a fiber", 2)
  end
  if f._n then
    error("fibers: fiber resumed twice before it ran", 2)
  end
  f._n = 0
  schedule(sched, f)
  return coroutine_yield(SUSPENDED)
end

-- runtime.main(): run turns until runtime.stop().
function M.main()
  return sched:main()
end

-- runtime.stop(): make main() return after the current turn.
function M.stop()
  return sched:stop()
end

-- runtime.set_resume_hook(enter, leave): enter(fiber) just before each
-- resume of a fiber, leave(fiber) just after; nil clears.
function M.set_resume_hook(enter, leave)
  set_handler("enter", enter)
  set_handler("leave", leave)
end

-- runtime._set_exit_handler(h): internal, used by fibers.scope:
-- h(fiber, ok, err) is called for fibers with an `_exit` field, outside
-- the fiber, right after the resume in which its function returned (ok)
-- or raised (err), instead of the unscoped handler; nil clears.
function M._set_exit_handler(h)
  set_handler("exit", h)
end

-- runtime.set_unscoped_error_handler(h) -> previous: h(fiber, err) gets
-- errors escaping raw fibers; nil restores the default (one stderr line).
function M.set_unscoped_error_handler(h)
  local prev = unscoped_handler
  unscoped_handler = h or default_handler
  set_handler("unscoped", unscoped_handler)
  return prev
end

return M
