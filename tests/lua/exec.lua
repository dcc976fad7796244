-- tests/lua/exec.lua - fibers.exec (doc/library.md §14): exit statuses, stdio
-- wiring, output ops, shutdown (grace, SIGKILL, process groups and
-- grandchildren, scope cancellation), timeouts, concurrency, child setup
-- failures, credentials, the host hook, bounded memory, and no zombies or
-- leaked fds afterwards.  Runs on whichever exit backend is selected
-- (tests/lua/exec_sigchld.sh runs it again with FIBERS_PROC=sigchld, and
-- tests/lua/exec_vfork.sh with the vfork spawn mode, FIBERS_SPAWN=vfork).
local t = require 'tap'
local fx = require 'fixture'
local fibers = require 'fibers'
local exec = require 'fibers.exec'
local sleep = require 'fibers.sleep'
local scope = require 'fibers.scope'
local file = require 'fibers.io.file'
local core = require 'fibers.core'

local monotime = core.sys.monotime
local mypid = core.proc.getpid()
local want = os.getenv("FIBERS_PROC") == "sigchld" and "sigchld" or "pidfd"
t.is(exec.backend, want, "exit backend is " .. want)
t.ok(require('fibers.io.exec') == exec, "fibers.io.exec is the same module")

-- Helpers -------------------------------------------------------------------

local function proc_dead(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return true end
  local s = f:read("*a") or ""
  f:close()
  return s:match("%) (%a)") == "Z"
end

-- SIGKILL is delivered asynchronously: give a killed process a moment
local function wait_dead(pid)
  local deadline = monotime() + 2
  while not proc_dead(pid) do
    if monotime() > deadline then return false end
    sleep.sleep(0.01)
  end
  return true
end

-- our fd count and zombie children, seen by a helper process (after a pause:
-- the parent closes the child-side pipe ends just after the exec)
local function census()
  local out = fibers.perform(exec.command("sh", "-c",
    "sleep 0.2; ls /proc/" .. mypid .. "/fd | wc -l; ps -o stat= --ppid " .. mypid .. " | grep -c Z || true"):output_op())
  local fds, zombies = out:match("(%d+)%s+(%d+)")
  return tonumber(fds), tonumber(zombies)
end

local function run(...) return fibers.perform(exec.command(...):run_op()) end

local base_fds, base_zombies

fibers.run(function(main)
  base_fds, base_zombies = census()
  t.is(base_zombies, 0, "no zombie children at start")

  -- exit codes 0..255, 32 at a time ---------------------------------------
  local bad = {}
  for lo = 0, 255, 32 do
    local st = fibers.run_scope(function(s)
      for code = lo, lo + 31 do
        s:spawn(function()
          local a, b, c, d = run("sh", "-c", "exit " .. code)
          if not (a == "exited" and b == code and c == nil and d == nil) then
            bad[#bad + 1] = code .. ":" .. tostring(a) .. "," .. tostring(b)
          end
        end)
      end
    end)
    t.is(st, "ok", "batch from " .. lo)
  end
  t.is(table.concat(bad, " "), "", "exit codes 0..255 reported exactly")

  -- death by signal, status(), pid(), argv() ------------------------------
  local cmd = exec.command("sh", "-c", "kill -USR1 $$")
  t.is(cmd:status(), "pending", "status pending before start")
  t.is(cmd:pid(), nil, "no pid before start")
  t.is_deeply({ cmd:kill() }, { false, "command not started" }, "kill before start")
  t.is_deeply({ fibers.perform(cmd:run_op()) }, { "signalled", nil, 10 }, "death by SIGUSR1")
  t.is_deeply({ cmd:status() }, { "signalled", 10 }, "status signalled, signo")
  t.ok(type(cmd:pid()) == "number", "pid after start")
  t.is_deeply(cmd:argv(), { "sh", "-c", "kill -USR1 $$" }, "argv()")
  t.is(cmd:kill("TERM"), true, "kill after exit: true")
  t.is_deeply({ fibers.perform(cmd:run_op()) }, { "signalled", nil, 10 }, "run_op is repeatable")
  t.raises(function() cmd:kill("NOSUCH") end, "unknown signal 'NOSUCH'", "unknown signal name raises")
  t.raises(function() cmd:set_cwd("/") end, "command already started", "setter after start raises")

  -- kill by name to the group while running --------------------------------
  cmd = exec.command("sleep", "30")
  local started = exec.command("true")
  t.is(started:set_cwd("/"), started, "setters return self")
  cmd:set_stdin("null")
  fibers.spawn(function() fibers.perform(cmd:run_op()) end)
  sleep.sleep(0.05)
  t.is(cmd:status(), "running", "status running")
  t.is(cmd:kill("SIGTERM"), true, "kill('SIGTERM')")
  t.is_deeply({ fibers.perform(cmd:run_op()) }, { "signalled", nil, 15 }, "killed by TERM")

  -- stdio -------------------------------------------------------------------
  cmd = exec.command{ "cat", stdin = "pipe", stdout = "pipe" }
  local w, r = cmd:stdin_stream(), cmd:stdout_stream()
  t.ok(w and r, "stdin/stdout streams of pipes")
  t.is(cmd:stderr_stream(), nil, "no stderr stream when inherited")
  fibers.spawn(function() w:write("hello\n", "world\n"); w:close() end)
  t.is(r:read_all(), "hello\nworld\n", "stdin -> cat -> stdout round trip")
  r:close()
  t.is_deeply({ fibers.perform(cmd:run_op()) }, { "exited", 0 }, "cat exited 0")

  cmd = exec.command{ "sh", "-c", "echo out; echo err >&2", stdout = "pipe", stderr = "pipe" }
  local o, e = cmd:stdout_stream(), cmd:stderr_stream()
  t.is(o:read_all(), "out\n", "stdout pipe")
  t.is(e:read_all(), "err\n", "stderr pipe, separate")
  o:close(); e:close()
  fibers.perform(cmd:run_op())
  local out, st, code = fibers.perform(exec.command{ "sh", "-c", "echo out; echo err >&2",
    stderr = "stdout" }:output_op())
  t.is(out, "out\nerr\n", "stderr = 'stdout' merges")
  out = fibers.perform(exec.command("sh", "-c", "echo a; echo b >&2"):combined_output_op())
  t.is(out, "a\nb\n", "combined_output_op")
  out = fibers.perform(exec.command{ "sh", "-c", "cat; echo end", stdin = "null" }:output_op())
  t.is(out, "end\n", "stdin null")

  local path = os.tmpname()
  local fs = assert(file.open(path, "w"))
  st = run{ "sh", "-c", "echo into-a-stream", stdout = fs }
  fs:close()
  local fh = io.open(path); local content = fh:read("*a"); fh:close(); os.remove(path)
  t.is(content, "into-a-stream\n", "stdout to a given Stream")

  -- the *_stream() of a slot given a Stream, or of stderr = "stdout"
  cmd = exec.command{ "sh", "-c", "echo out; echo err >&2", stdout = "pipe", stderr = "stdout" }
  o = cmd:stdout_stream()
  t.ok(o ~= nil and cmd:stderr_stream() == o, "stderr = 'stdout': stderr_stream() is the stdout stream")
  t.is(o:read_all(), "out\nerr\n", "stderr = 'stdout': both through that stream")
  o:close()
  t.is_deeply({ fibers.perform(cmd:run_op()) }, { "exited", 0 }, "stderr = 'stdout': exited 0")
  do
    local pr, pw = file.pipe()
    local fs2 = assert(file.open("/dev/null", "w"))
    cmd = exec.command{ "cat", stdin = pr, stdout = fs2, stderr = "stdout" }
    t.is(cmd:stdin_stream(), pr, "stdin_stream() is the Stream given")
    t.is(cmd:stdout_stream(), fs2, "stdout_stream() is the Stream given")
    t.is(cmd:stderr_stream(), fs2, "stderr = 'stdout' with a Stream: stderr_stream() is that Stream")
    cmd = exec.command{ "true", stderr = fs2 }
    t.is(cmd:stderr_stream(), fs2, "stderr_stream() is the Stream given")
    t.is(cmd:stdout_stream(), nil, "stdout_stream() is nil when inherited")
    pr:close(); pw:close(); fs2:close()
  end

  -- a Stream given for stdout/stderr is flushed before the spawn
  path = os.tmpname()
  fs = assert(file.open(path, "w"))
  fs:write_string("header\n")
  st = run{ "sh", "-c", "echo child; echo child-err >&2", stdout = fs, stderr = fs }
  fs:write_string("footer\n")
  fs:close()
  fh = io.open(path); content = fh:read("*a"); fh:close(); os.remove(path)
  t.is(content, "header\nchild\nchild-err\nfooter\n", "buffered writes before the spawn come first")

  -- output_op of 10 MiB ---------------------------------------------------------
  out, st, code = fibers.perform(exec.command("head", "-c", "10485760", "/dev/zero"):output_op())
  t.is(#out, 10485760, "output_op of 10 MiB")
  t.is(st .. " " .. code, "exited 0", "... and its status")

  -- output_op is bounded: exec.OUTPUT_MAX (16 MiB) by default, opts.max, math.huge
  t.is(exec.OUTPUT_MAX, 16777216, "OUTPUT_MAX is 16 MiB")
  local res = t.pack(fibers.perform(exec.command("yes"):output_op{ max = 100000 }))
  t.is_deeply({ res[1], res[2], res[4], res[5] },
    { nil, "signalled", 13, "output_op: output longer than 100000 bytes" },
    "output past max: nil, the pipe closed (SIGPIPE), a clear error")
  res = t.pack(fibers.perform(exec.command("head", "-c", "17000000", "/dev/zero"):output_op()))
  t.is_deeply({ res[1], res[2], res[5] }, { nil, "signalled", "output_op: output longer than 16777216 bytes" },
    "output past the default cap of 16 MiB fails")
  out = fibers.perform(exec.command("head", "-c", "17000000", "/dev/zero"):output_op{ max = math.huge })
  t.is(#out, 17000000, "max = math.huge: no bound")
  t.raises(function() exec.command("true"):output_op{ max = -1 } end, "max", "a bad max raises")

  -- environment and cwd ---------------------------------------------------------
  out = fibers.perform(exec.command{ "sh", "-c", 'echo "$FIBERS_A|${HOME-unset}|$FIBERS_N"; pwd',
    env = { FIBERS_A = "x y", HOME = false, FIBERS_N = 42 }, cwd = "/tmp" }:output_op())
  t.is(out, "x y|unset|42\n/tmp\n", "env merged (set, unset, number) and cwd")
  out = fibers.perform(exec.command{ "/usr/bin/env", env = { ONLY = "1" }, env_mode = "replace" }:output_op())
  t.is(out, "ONLY=1\n", "env_mode = replace")

  -- child setup failures: 127 + reason -----------------------------------------
  t.is_deeply({ run("fibers-no-such-program-x") },
    { "exited", 127, nil, "exec: No such file or directory" }, "missing program")
  t.is_deeply({ run{ "true", cwd = "/nonexistent/dir" } },
    { "exited", 127, nil, "chdir: No such file or directory" }, "bad cwd")
  out, st, code, e, e = fibers.perform(exec.command{ "true", cwd = "/nonexistent" }:output_op())
  t.is_deeply({ out, st, code }, { "", "exited", 127 }, "output_op of a failing child")

  -- a failure in the parent: "failed" with the reason, nothing started
  local closed = assert(file.open("/dev/null", "w"))
  closed:close()
  cmd = exec.command{ "true", stdout = closed }
  t.is_deeply({ fibers.perform(cmd:run_op()) }, { "failed", nil, nil, "stdout stream is closed" },
    "parent-side failure: failed + reason")
  t.is_deeply({ cmd:status() }, { "failed", nil, "stdout stream is closed" }, "status failed")

  -- a command whose scope has joined cannot start
  local orphan_cmd
  fibers.run_scope(function() orphan_cmd = exec.command("true") end)
  t.is_deeply({ fibers.perform(orphan_cmd:run_op()) }, { "failed", nil, nil, "scope has joined" },
    "start after the owning scope joined: failed")
  t.is(orphan_cmd:pid(), nil, "... and nothing was started")
  out = fibers.perform(exec.command("echo", 1, "two"):output_op())
  t.is(out, "1 two\n", "numbers in argv become strings")

  -- misuse raises ---------------------------------------------------------------
  t.raises(function() exec.command{ "true", stdout = "bogus" } end, "invalid stdout", "bad stdout mode")
  t.raises(function() exec.command{ "true", stdin = "stdout" } end, "invalid stdin", "stdin = stdout")
  t.raises(function() exec.command{ "true", stdout = "log" } end, "invalid stdout", "log mode needs a host")
  t.raises(function() exec.command{ "true", user = "no-such-user-zz" } end, "unknown user", "unknown user")
  t.raises(function() exec.command{ "true", group = "no-such-group-zz" } end, "unknown group", "unknown group")
  t.raises(function() exec.command{ "true", rlimits = { bogus = 1 } } end, "unknown rlimit", "unknown rlimit")
  t.raises(function() exec.command{ "true", colour = 1 } end, "unknown field", "unknown field")
  t.raises(function() exec.command{} end, "empty argv", "empty argv")

  -- credentials, umask, rlimits (root only) ----------------------------------
  if core.proc.geteuid() == 0 then
    out = fibers.perform(exec.command{ "sh", "-c", "id -u; id -g; id -G; umask; ulimit -n; ulimit -c",
      user = 65534, group = 65534, umask = "027", rlimits = { nofile = 77, core = 0 } }:output_op())
    t.is(out, "65534\n65534\n65534\n0027\n77\n0\n", "uid/gid 65534, groups, umask, rlimits")
    out = fibers.perform(exec.command{ "sh", "-c", "id -un; id -G", user = "nobody", groups = { 65534, 3 } }:output_op())
    t.is(out, "nobody\n65534 3\n", "user by name, explicit groups")
  else
    t.ok(true, "not root: credentials skipped")
    t.ok(true, "not root: credentials skipped")
  end

  -- process groups -----------------------------------------------------------
  out = fibers.perform(exec.command("sh", "-c", "ps -o pgid= -p $$"):output_op())
  cmd = exec.command("sh", "-c", "ps -o pgid= -p $$")
  out = fibers.perform(cmd:output_op())
  t.is(tonumber(out), cmd:pid(), "own process group by default")
  cmd = exec.command{ "sh", "-c", "ps -o pgid= -p $$", flags = { pgroup = false } }
  out = fibers.perform(cmd:output_op())
  t.is(tonumber(out), tonumber(io.open("/proc/self/stat"):read("*a"):match("%) %a %d+ (%d+)")),
    "pgroup = false keeps the parent's group")
  cmd = exec.command{ "sh", "-c", "ps -o sid= -p $$", flags = { setsid = true } }
  out = fibers.perform(cmd:output_op())
  t.is(tonumber(out), cmd:pid(), "setsid: own session")

  -- stdin on a terminal: the child stays in our process group (SIGTTIN)
  local runner = fx.runner
  local sst, scode = fibers.perform(exec.command{ "sh", "-c", "command -v script", stdout = "null" }:run_op())
  local has_script = sst == "exited" and scode == 0
  if has_script then
    local code = "local f=require'fibers' local e=require'fibers.exec' f.run(function() " ..
      "local c=e.command('sh','-c','ps -o pgid= -p $$') local o=f.perform(c:output_op()) " ..
      "local me=io.open('/proc/self/stat'):read('*a'):match('%) %a %d+ (%d+)') " ..
      "io.write(tonumber(o)==tonumber(me) and 'same' or 'own', '\\n') end)"
    out = fibers.perform(exec.command{ "script", "-qec", runner .. " -e \"" .. code .. "\"", "/dev/null",
      stdin = "null" }:output_op())
    t.like(out, "^same", "stdin is a terminal: the child keeps our process group")
  else
    t.ok(true, "no script(1): terminal case skipped")
  end

  -- run_op raced with a timeout, repeated ------------------------------------
  cmd = exec.command("sleep", "0.3")
  local n = 0
  while true do
    local which, s2, c2 = fibers.named_choice{ done = cmd:run_op(), timeout = sleep.sleep_op(0.05) }
    if which == "done" then
      t.is_deeply({ s2, c2 }, { "exited", 0 }, "run_op finally wins")
      break
    end
    n = n + 1
  end
  t.ok(n >= 3, "timeouts won first (" .. n .. " times)")

  -- 200 concurrent short commands --------------------------------------------
  local okc = 0
  fibers.run_scope(function(s)
    for _ = 1, 200 do
      s:spawn(function()
        if run("true") == "exited" then okc = okc + 1 end
      end)
    end
  end)
  t.is(okc, 200, "200 concurrent commands all exited 0")

  -- shutdown_op, grace, SIGKILL ------------------------------------------------
  cmd = exec.command{ "sh", "-c", "trap '' TERM; echo ready; exec sleep 30", stdout = "pipe" }
  t.is(cmd:stdout_stream():read_line(), "ready", "TERM-ignoring child ready")
  local t0 = monotime()
  t.is_deeply({ fibers.perform(cmd:shutdown_op(0.3)) }, { "signalled", nil, 9 },
    "shutdown_op: SIGKILL after the grace")
  local dt = monotime() - t0
  t.ok(dt >= 0.3 and dt < 2.3, ("grace respected (%.2fs)"):format(dt))
  cmd:stdout_stream():close()
  cmd = exec.command("sleep", "30")
  t0 = monotime()
  t.is_deeply({ fibers.perform(cmd:shutdown_op(5)) }, { "signalled", nil, 15 },
    "shutdown_op: SIGTERM is enough")
  t.ok(monotime() - t0 < 2, "... without waiting for the grace")
  -- signalled right after it started (an overlapped spawn's child may not
  -- have exec'd, nor made its group or session, yet)
  local early = {}
  for _, flags in ipairs({ {}, { setsid = true }, { pgroup = false } }) do
    cmd = exec.command{ "sleep", "30", flags = flags }
    t0 = monotime()
    local r = { fibers.perform(cmd:shutdown_op(5)) }
    early[#early + 1] = tostring(r[1]) .. ":" .. tostring(r[3]) ..
      (monotime() - t0 < 2 and "" or " (slow)")
  end
  t.is(table.concat(early, " "), "signalled:15 signalled:15 signalled:15",
    "TERM right after the start ends the child: own group, own session, parent's group")

  -- scope exit: TERM-ignoring child and a double-forked grandchild -----------
  local pids = {}
  t0 = monotime()
  st = fibers.run_scope(function(s)
    s:set_default('shutdown_grace', 0.3)
    local c = exec.command{ "sh", "-c",
      "(trap '' TERM; sleep 30 & echo $!); trap '' TERM; echo $$; exec sleep 30", stdout = "pipe" }
    local so = c:stdout_stream()
    pids.grandchild = tonumber(so:read_line())
    pids.child = tonumber(so:read_line())
    pids.cmd = c
    t.is(pids.child, c:pid(), "child pid")
    local snap = s:snapshot()
    t.is(#snap.commands, 1, "snapshot lists the running command")
    t.is(snap.commands[1].pid, c:pid(), "... with its pid")
    t.is(snap.commands[1].state, "running", "... and state")
  end)
  dt = monotime() - t0
  t.is(st, "ok", "scope with a stubborn child finished ok")
  t.ok(dt >= 0.3 and dt < 2.5, ("scope default grace used (%.2fs)"):format(dt))
  t.is_deeply({ pids.cmd:status() }, { "signalled", 9 }, "child SIGKILLed at scope exit")
  t.ok(wait_dead(pids.child), "child dead")
  t.ok(wait_dead(pids.grandchild), "double-forked grandchild in the group dead too")
  t.ok(pids.cmd:stdout_stream():is_closed(), "owned stream closed at scope exit")

  -- many stubborn commands in one scope are stopped in parallel -------------
  local many = {}
  t0 = monotime()
  fibers.run_scope(function(s)
    s:set_default('shutdown_grace', 0.3)
    for i = 1, 20 do
      many[i] = exec.command{ "sh", "-c", "trap '' TERM; echo up; exec sleep 30", stdout = "pipe" }
      many[i]:stdout_stream():read_line()
    end
  end)
  dt = monotime() - t0
  local killed = 0
  for i = 1, 20 do if many[i]:status() == "signalled" then killed = killed + 1 end end
  t.is(killed, 20, "20 TERM-ignoring commands SIGKILLed at scope exit")
  t.ok(dt >= 0.3 and dt < 2.3, ("... in parallel: one grace in total (%.2fs)"):format(dt))

  -- leader obeys TERM, grandchild ignores it: killed after the grace ----------
  t0 = monotime()
  fibers.run_scope(function(s)
    local c = exec.command{ "sh", "-c", "(trap '' TERM; sleep 30 & echo $!); exec sleep 30",
      stdout = "pipe", shutdown_grace = 0.3 }
    pids.g2 = tonumber(c:stdout_stream():read_line())
  end)
  dt = monotime() - t0
  t.ok(wait_dead(pids.g2), "TERM-ignoring grandchild killed with the group")
  t.ok(dt >= 0.3 and dt < 2.5, ("... after the grace (%.2fs)"):format(dt))

  -- a zombie member of the group (its parent, outside the group, does not
  -- reap it) does not hold the scope's shutdown for the whole grace ---------
  do
    -- the helper reads a group id, forks a child that joins that group and
    -- exits, and waits (without reaping it) until the child is a zombie
    local helper = exec.command{ "perl", "-e", [[
      $| = 1; my $g = <STDIN>; chomp $g;
      my $p = fork; defined $p or die "fork: $!";
      if (!$p) { setpgrp(0, $g) or die "setpgrp: $!"; exit 0 }
      for (1 .. 500) {
        open(my $f, "<", "/proc/$p/stat") or die "stat: $!"; my $s = <$f>; close $f;
        if ($s =~ /\) Z /) { print "zombie\n"; sleep 30; exit 0 }
        select(undef, undef, undef, 0.01);
      }
      print "no zombie\n";
    ]], stdin = "pipe", stdout = "pipe", flags = { pgroup = true } }
    local hin, hout = helper:stdin_stream(), helper:stdout_stream()
    local leader, zline
    st = fibers.run_scope(function(s)
      leader = exec.command{ "sleep", "30", stdout = "pipe", shutdown_grace = 3, flags = { pgroup = true } }
      leader:stdout_stream()            -- starts it
      hin:write(leader:pid(), "\n")
      zline = hout:read_line()
      t0 = monotime()
    end)
    dt = monotime() - t0
    t.is(zline, "zombie", "a zombie member in the leader's group")
    t.is_deeply({ st, leader:status() }, { "ok", "signalled", 15 }, "leader ended by SIGTERM at scope exit")
    t.ok(dt < 1.5, ("the zombie member did not hold the 3 s grace (%.2fs)"):format(dt))
    hin:close(); hout:close()
    helper:kill("SIGKILL")
    fibers.perform(helper:run_op())
  end

  -- cancelling a scope mid-output_op -------------------------------------------
  t0 = monotime()
  local reason
  st, reason = fibers.run_scope(function(s)
    local c = exec.command("sh", "-c", "echo partial; exec sleep 30")
    pids.c3 = c
    s:spawn(function() sleep.sleep(0.1); s:cancel("enough") end)
    fibers.perform(c:output_op())
    error("not reached")
  end)
  t.is_deeply({ st, reason }, { "cancelled", "enough" }, "cancelled mid-output_op")
  t.ok(monotime() - t0 < 2, "promptly")
  t.is_deeply({ pids.c3:status() }, { "signalled", 15 }, "the command got SIGTERM")
  t.ok(wait_dead(pids.c3:pid()), "and is dead")

  -- a finished command leaves the scope; memory stays bounded ------------------
  local N = tonumber(os.getenv("FIBERS_EXEC_N") or "") or 1000
  local mem_mid
  st = fibers.run_scope(function(s)
    for i = 1, N do
      local a = fibers.perform(exec.command("true"):run_op())
      if a ~= "exited" then error("command " .. i .. ": " .. tostring(a)) end
      if i == 200 then collectgarbage(); collectgarbage(); mem_mid = collectgarbage("count") end
    end
    t.is(#s:snapshot().commands, 0, "no commands left in the scope's set")
  end)
  collectgarbage(); collectgarbage()
  local grow = collectgarbage("count") - mem_mid
  t.is(st, "ok", N .. " short commands in one scope")
  t.ok(grow < 64, ("Lua memory bounded (grew %.1f KiB after 200)"):format(grow))

  -- host hook: log mode, defaults, orphans ---------------------------------------
  local lines, orphans = {}, {}
  exec._set_host{
    defaults = { stdin = "null", stdout = "log", stderr = "log" },
    scrub_env = { "FIBERS_SECRET" },
    log_line = function(c, name, line) lines[#lines + 1] = name .. ":" .. line end,
    on_orphan = function(pid, status) orphans[#orphans + 1] = pid .. " " .. status end,
  }
  local long = string.rep("x", 5000)
  cmd = exec.command("sh", "-c", "echo one; echo two >&2; printf '" .. long .. "\\nlast'; echo \"[$FIBERS_SECRET]\" >&2")
  st = fibers.perform(cmd:run_op())
  fibers.run_scope(function() end) -- let the pumps drain
  sleep.sleep(0.05)
  table.sort(lines)
  local expect = { "stderr:[]", "stderr:two", "stdout:last", "stdout:one",
    "stdout:" .. string.rep("x", 4096), "stdout:" .. string.rep("x", 904) }
  table.sort(expect)
  t.is_deeply(lines, expect,
    "log mode: every line, split at 4096 bytes, env scrubbed")
  local ph = io.popen("echo $$; exec sleep 0.1")
  local opid = tonumber(ph:read("*l"))
  local deadline = monotime() + 3
  while #orphans == 0 and monotime() < deadline do sleep.sleep(0.02) end
  t.is(orphans[1], opid .. " exited 0", "a child that is no Command is reported as an orphan")
  ph:close()
  exec._set_host(nil)

  -- nothing left behind --------------------------------------------------------
  local fds, zombies = census()
  t.is(zombies, 0, "no zombie children afterwards")
  t.is(fds, base_fds, "no leaked fds afterwards")
end)

-- commands under the root are cleaned up by fibers.run
local rootcmd
fibers.run(function()
  -- a fiber of the root scope creates (so owns) the command
  scope.root():spawn(function()
    rootcmd = exec.command{ "sleep", "30", shutdown_grace = 0.2 }
    fibers.perform(rootcmd:run_op())
  end)
  sleep.sleep(0.05)
end)
t.is_deeply({ rootcmd:status() }, { "signalled", 15 }, "a root-level command is stopped by fibers.run")

t.done()
