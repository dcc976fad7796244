-- fibers.signal - POSIX signals as Ops (doc/library.md §13b).
--
--   signal_op(name_or_number) -> Op   ready when the process receives that
--                                     signal; yields the signal number
--   signal(name_or_number) -> number  performs it (scope-aware)
--
-- Names are "INT", "SIGINT" or "int"; numbers are accepted as is; unknown
-- names, SIGKILL and SIGSTOP raise.  Building the Op starts watching the
-- signal (from then on its default action, e.g. termination, no longer
-- happens; it is delivered through the event loop), so build it before
-- the point where the signal may arrive.  Only the signals asked for are
-- watched (core.signal: signalfd with those signals blocked, or a
-- self-pipe with FIBERS_SIGNAL=pipe).
--
-- Delivery: a signal that arrives while fibers wait for it completes every
-- one of those waits (broadcast); one that arrives while nobody waits is
-- remembered (once, like the kernel's own pending set) for the next
-- perform.  Losing registrations are removed by their suspension cleanup,
-- and the fd wait is dropped when nobody waits, so an idle program with a
-- watched signal still gets the scheduler's deadlock error.
local core = require 'fibers.core'
local op = require 'fibers.op'
local runtime = require 'fibers.runtime'

local csig = core.signal
local sched = runtime.current_scheduler

local M = {}

local watcher = nil     -- core.signal watcher, opened on first use
local pending = {}      -- signum -> true: arrived while nobody waited
local waiters = {}      -- signum -> array of { s = suspension, t = token }
local nwaiting = 0
local wait_handle = nil -- the scheduler fd wait, while armed

local function get_watcher()
  if not watcher then
    local w, err = csig.open()
    if not w then error("fibers: cannot watch signals: " .. tostring(err), 3) end
    watcher = w
    -- a signal is a rare event from outside: a pending signal wait does
    -- not stop the virtual clock (fibers.testing) from jumping
    sched:set_fd_background(w:fd(), true)
  end
  return watcher
end

local function deliver(sig)
  local list = waiters[sig]
  local delivered = false
  if list then
    for i = 1, #list do
      local e = list[i]
      if e.s:waiting() then
        e.s:complete(e.t, sig)
        delivered = true
      end
    end
  end
  if not delivered then pending[sig] = true end
end

local function drain()
  local sigs = watcher:read()
  if sigs then
    for i = 1, #sigs do deliver(sigs[i]) end
  end
end

local arm
local function on_readable()
  wait_handle = nil
  drain()
  arm()
end

-- (Re-)register the fd wait while anybody waits.  Re-registering each time
-- also recovers from a scheduler clear() that dropped our wait.
function arm()
  if wait_handle then
    sched:cancel_fd(wait_handle)
    wait_handle = nil
  end
  if nwaiting > 0 then
    wait_handle = assert(sched:wait_fd(watcher:fd(), "r", on_readable))
  end
end

local function unregister(sig, entry)
  local list = waiters[sig]
  if not list then return end
  for i = 1, #list do
    if list[i] == entry then
      table.remove(list, i)
      nwaiting = nwaiting - 1
      if #list == 0 then waiters[sig] = nil end
      if nwaiting == 0 and wait_handle then
        sched:cancel_fd(wait_handle)
        wait_handle = nil
      end
      return
    end
  end
end

local function signum_of(x)
  local n = csig.number(x)
  if not n then
    error("fibers: unknown signal '" .. tostring(x) .. "'", 3)
  end
  return n
end

-- signal_op(name_or_number) -> Op yielding the signal number.
function M.signal_op(x)
  local sig = signum_of(x)
  local w = get_watcher()
  local ok, err = w:add(sig)
  if not ok then error("fibers: cannot watch signal " .. tostring(x) .. ": " .. tostring(err), 2) end
  local function try()
    if not pending[sig] then drain() end
    if pending[sig] then
      pending[sig] = nil
      return true, sig
    end
    return false
  end
  local function block(susp, token)
    local entry = { s = susp, t = token }
    local list = waiters[sig]
    if not list then list = {}; waiters[sig] = list end
    list[#list + 1] = entry
    nwaiting = nwaiting + 1
    susp:add_cleanup(unregister, sig, entry)
    arm()
  end
  return op.new_primitive(nil, try, block)
end

-- signal(name_or_number) -> number: wait for the signal (scope-aware).
function M.signal(x)
  return require('fibers').perform(M.signal_op(x))
end

return M
