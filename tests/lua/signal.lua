-- tests/lua/signal.lua - fibers.signal (doc/library.md §13b) and core.signal:
-- name lookup, real `kill -INT <self>` turned into a clean cancellation
-- through fibers.run + scopes, pending and broadcast delivery, losers
-- cleaned up, both backends (signalfd, FIBERS_SIGNAL=pipe).
local t = require 'tap'
local fx = require 'fixture'
local core = require 'fibers.core'
local fibers = require 'fibers'
local sleep = require 'fibers.sleep'
local signal = require 'fibers.signal'
local op = require 'fibers.op'
local runtime = require 'fibers.runtime'
local csig = core.signal
local monotime = core.sys.monotime

local runner = fx.runner

-- `kill -SIG <this process>` from a background shell after `delay` s.
local function kill_self_later(sig, delay)
  local p = io.popen("(sleep " .. delay .. "; kill -" .. sig .. " $PPID) >/dev/null 2>&1 &")
  p:close()
end

---------------------------------------------------------------- names
t.is(csig.number("INT"), 2, "INT")
t.is(csig.number("SIGTERM"), 15, "SIGTERM")
t.is(csig.number("hup"), 1, "names are case-insensitive")
t.is(csig.number(10), 10, "numbers pass")
t.is(csig.number("NOPE"), nil, "unknown name")
t.is(csig.number(0), nil, "signal 0 is not a signal")
t.is(csig.name(15), "TERM", "name of 15")
t.raises(function() signal.signal_op("NOPE") end, "fibers: unknown signal 'NOPE'", "unknown name raises")
t.raises(function() signal.signal_op(-3) end, "fibers: unknown signal '%-3'", "bad number raises")
t.raises(function() signal.signal_op("KILL") end, "cannot be watched", "SIGKILL raises")

---------------------------------------------------------------- Ctrl-C as cancellation
do
  local log = {}
  local t0 = monotime()
  local status, err = fibers.run(function()
    local int = signal.signal_op("INT")       -- watching from here on
    kill_self_later("INT", 0.2)
    return fibers.run_scope(function(s)
      s:finally(function(aborted, st) log[#log + 1] = "finally:" .. tostring(st) end)
      for i = 1, 3 do
        fibers.spawn(function()
          sleep.sleep(30)                    -- the "work"
          log[#log + 1] = "work done?!"
        end)
      end
      fibers.spawn(function()
        local sig = fibers.perform(int)
        log[#log + 1] = "got " .. sig
        s:cancel("interrupted")
      end)
    end)
  end)
  local el = monotime() - t0
  t.is(status, "cancelled", "kill -INT cancels the scope")
  t.is(err, "interrupted", "with the reason given")
  t.is(table.concat(log, ","), "got 2,finally:cancelled", "watcher saw SIGINT, finaliser ran, work did not finish")
  t.ok(el >= 0.2 and el < 2.5, "cancelled when the signal came (" .. el .. " s)")
end

do -- racing: named_choice against the work
  local t0 = monotime()
  local which, v = fibers.run(function()
    local int = signal.signal_op("SIGINT")
    kill_self_later("INT", 0.1)
    return fibers.named_choice{ int = int, work = sleep.sleep_op(30) }
  end)
  t.is(which, "int", "signal_op wins the race against the work")
  t.is(v, 2, "and yields the signal number")
  t.ok(monotime() - t0 < 2.5, "promptly")
end

---------------------------------------------------------------- delivery rules
do -- arrived while nobody waited: remembered once
  local r = fibers.run(function()
    local usr1 = signal.signal_op("USR1")
    csig.raise("USR1")
    csig.raise("USR1")
    sleep.sleep(0.05)
    local first = fibers.perform(usr1)
    local second = fibers.perform(op.choice(usr1, op.always("none")))
    return first .. "/" .. second
  end)
  t.is(r, "10/none", "a signal that came while nobody waited is delivered once to the next perform")
end

do -- broadcast to every waiter
  local got = {}
  fibers.run(function()
    local usr2 = signal.signal_op("USR2")
    for i = 1, 3 do
      fibers.spawn(function()
        local sig = signal.signal("USR2")
        got[#got + 1] = i .. ":" .. sig
      end)
    end
    sleep.sleep(0.02)
    csig.raise("USR2")
    sleep.sleep(0.02)
    local _ = usr2
  end)
  table.sort(got)
  t.is(table.concat(got, " "), "1:12 2:12 3:12", "one signal wakes every fiber waiting for it")
end

do -- losers unregister; the fd wait goes away when nobody waits
  local counts
  fibers.run(function()
    local usr1 = signal.signal_op("USR1")
    for i = 1, 1000 do
      fibers.perform(op.choice(usr1, sleep.sleep_op(0)))
    end
    local _, _, nfd = runtime.current_scheduler:counts()
    counts = nfd
  end)
  t.is(counts, 0, "1000 lost races leave no fd wait behind")
  local ok, err = pcall(fibers.run, function()
    signal.signal_op("USR1")
    fibers.perform(op.never())
  end)
  t.is(ok, false, "an idle program with a watched signal still deadlocks")
  t.like(err, "deadlock", "with the deadlock error")
end

---------------------------------------------------------------- pipe backend
do
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write([[
    local fibers = require 'fibers'
    local signal = require 'fibers.signal'
    local sleep = require 'fibers.sleep'
    local which = fibers.run(function()
      local int = signal.signal_op("INT")
      local p = io.popen("(sleep 0.1; kill -INT $PPID) >/dev/null 2>&1 &"); p:close()
      return fibers.named_choice{ int = int, work = sleep.sleep_op(30) }
    end)
    io.stdout:write(which)
  ]])
  f:close()
  local p = io.popen("FIBERS_SIGNAL=pipe " .. runner .. " " .. path .. " 2>&1")
  local out = p:read("*a")
  p:close()
  os.remove(path)
  t.is(out, "int", "FIBERS_SIGNAL=pipe: kill -INT delivered through the self-pipe")
end

t.done()
