-- fibers.runtime - fibers (coroutines + a little state) on top of the C
-- scheduler `fibers.core`.sched (library.md §1, §5; the "Runtime contract"
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
--   run(now?)                      one turn, never blocks; `now` = synthetic
--   main()                         turns until stop(); raises on deadlock
--   stop(), now(), next_wake_time(), clear(), counts(), backend()
--
-- Deadlock: main() raises "fibers: deadlock: every fiber is blocked and no
-- timer or I/O can wake one" when nothing is runnable and no timer or fd
-- wait is pending, instead of sleeping forever.
local core = require 'fibers.core'

local coroutine_create, coroutine_resume, coroutine_yield, coroutine_status =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.status
local unpack = table.unpack or unpack
local select = select

local M = {}

local sched = core.sched.new()
M.current_scheduler = sched
local schedule = sched.schedule

-- Fresh monotonic clock read (seconds); use it to compute deadlines.
M.monotime = core.sys.monotime

local current = nil                  -- the running fiber, or nil
-- Yielded by suspend/yield so that Fiber:run can tell a suspended fiber
-- from a finished one without asking coroutine.status.
local SUSPENDED = setmetatable({}, { __name = "fibers.suspended" })
local enter_hook, leave_hook = nil, nil

local function default_handler(fiber, err)
  io.stderr:write("fibers: uncaught error in fiber: ", tostring(err), "\n")
end
local unscoped_handler = default_handler
-- exit_handler(fiber, ok, err): for fibers with an `_exit` field (scope
-- fibers), called outside the fiber right after the resume in which its
-- function returned (ok) or raised (err), instead of unscoped_handler.
local exit_handler = nil

-- Fiber: fields co (coroutine), tag (inherited), plus free fields for upper
-- layers (_exit: see exit_handler).  Private fields start with an underscore: _n is the number of
-- pending resume values (nil = not scheduled), _1.._3 / _v hold them.
local Fiber = {}
Fiber.__index = Fiber
M.Fiber = Fiber

-- The task interface: resume the coroutine with the values given to
-- fiber:resume() (none if the fiber itself was handed to the scheduler as
-- a task, e.g. schedule_at_time(t, fiber)).  Called by the scheduler only.
function Fiber:run()
  local n, co = self._n, self.co
  self._n = nil
  local prev = current
  current = self
  if enter_hook then enter_hook(self) end
  local ok, err
  if not n or n == 0 then
    ok, err = coroutine_resume(co)
  elseif n == 1 then
    ok, err = coroutine_resume(co, self._1)
    self._1 = nil
  elseif n == 2 then
    ok, err = coroutine_resume(co, self._1, self._2)
    self._1, self._2 = nil, nil
  elseif n == 3 then
    ok, err = coroutine_resume(co, self._1, self._2, self._3)
    self._1, self._2, self._3 = nil, nil, nil
  else
    local v = self._v
    self._v = nil
    ok, err = coroutine_resume(co, unpack(v, 1, n))
  end
  current = prev
  if leave_hook then leave_hook(self) end
  if err ~= SUSPENDED then
    if not ok then
      self.dead = true
      if self._exit and exit_handler then
        exit_handler(self, false, err)
      else
        unscoped_handler(self, err)
      end
    elseif coroutine_status(co) == "dead" then
      self.dead = true
      if self._exit and exit_handler then exit_handler(self, true) end
    end
  end
end

-- fiber:resume(...): schedule the fiber to continue in the next turn; the
-- values become the results of its pending runtime.suspend().  Never runs
-- it synchronously.  Resuming twice before it ran, or a finished fiber,
-- is a bug and raises.
function Fiber:resume(...)
  if self._n then
    error("fibers: fiber resumed twice before it ran", 2)
  end
  if self.dead then
    error("fibers: resume of a finished fiber", 2)
  end
  local n = select('#', ...)
  if n <= 3 then
    self._1, self._2, self._3 = ...
  else
    self._v = { ... }
  end
  self._n = n
  schedule(sched, self)
end

-- True while the fiber has been resumed but has not run yet.
function Fiber:scheduled()
  return self._n ~= nil
end

-- runtime.spawn_raw(fn, ...) -> fiber: a fiber with no scope, that calls
-- fn(...) in the next turn.  Errors escaping it go to the unscoped handler.
function M.spawn_raw(fn, ...)
  if type(fn) ~= "function" then
    error("fibers: spawn_raw expects a function", 2)
  end
  local f = setmetatable({ co = coroutine_create(fn), tag = current and current.tag }, Fiber)
  f:resume(...)
  return f
end

-- Internal (fibers.scope): a fiber of scope S calling fn(S) (with_scope)
-- or fn(), i.e. spawn_raw plus `scope` and `_exit` = S, with the table
-- built by one constructor (sized once; spawning is a hot path).
-- (Four hash fields for fn(): the table of a parked fiber stays at four
-- hash slots when untagged.)
function M._spawn_in(S, with_scope, fn)
  local f
  if with_scope then
    f = setmetatable({ co = coroutine_create(fn), scope = S, _exit = S, _n = 1, _1 = S }, Fiber)
  else
    f = setmetatable({ co = coroutine_create(fn), scope = S, _exit = S, _n = 0 }, Fiber)
  end
  local tag = current and current.tag
  if tag ~= nil then f.tag = tag end
  schedule(sched, f)
  return f
end

-- runtime.current_fiber() -> the running fiber, or nil outside fibers.
function M.current_fiber()
  return current
end

-- runtime.now() -> the scheduler's cached turn time (monotonic seconds).
function M.now()
  return sched:now()
end

-- runtime.suspend(block_fn, ...): call block_fn(scheduler, fiber, ...),
-- then yield; returns the values that fiber:resume(...) passes later.
function M.suspend(block_fn, ...)
  local f = current
  if not f then
    error("fibers: suspend called outside a fiber", 2)
  end
  block_fn(sched, f, ...)
  return coroutine_yield(SUSPENDED)
end

-- runtime.yield(): let every other runnable task run; continue next turn.
function M.yield()
  local f = current
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
  enter_hook, leave_hook = enter, leave
end

-- runtime._set_exit_handler(h): internal, used by fibers.scope (see
-- exit_handler above); nil clears.
function M._set_exit_handler(h)
  exit_handler = h
end

-- runtime.set_unscoped_error_handler(h) -> previous: h(fiber, err) gets
-- errors escaping raw fibers; nil restores the default (one stderr line).
function M.set_unscoped_error_handler(h)
  local prev = unscoped_handler
  unscoped_handler = h or default_handler
  return prev
end

return M
