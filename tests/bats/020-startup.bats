#!/usr/bin/env bats
# 020-startup.bats - fibersd start-up: readiness datagram, --check, the
# task directory scan (ignored leftovers, refused names), the private task
# environment and the `fibersd` module.

load helpers

setup() { fd_setup; }
teardown() { fd_teardown; }

@test "READY=1 and the first STATUS= come in one datagram once tasks are loaded" {
	fd_task beat <<'EOF2'
local sleep = require 'fibers.sleep'
require('fibersd').log.info('loaded')
while true do sleep.sleep(10) end
EOF2
	fd_notify_listen
	fd_start
	fd_wait_ready
	# socat -v: a header line with length=N, then the N bytes of the datagram
	len=$(head -n 1 "$D/notify.log" | sed -n 's/.*length=\([0-9]*\).*/\1/p')
	first=$(tail -n +2 "$D/notify.log" | head -c "$len")
	[ "$first" = "$(printf 'READY=1\nSTATUS=1 task running, 0 processes')" ]
	grep -q '^<6>beat: loaded$' "$D/log"
}

@test "--check: clean directory exits 0 silently, errors are file:line: message and exit 1" {
	fd_task good <<'EOF2'
local x = 1
EOF2
	run timeout 10 "$FIBERSD" -c "$D/f.conf" -d "$D/t" --check
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	fd_task broken <<'EOF2'
local x = 1
local y = = 2
EOF2
	run timeout 10 "$FIBERSD" -c "$D/f.conf" -d "$D/t" --check
	[ "$status" -eq 1 ]
	[ "$output" = "$D/t/broken.lua:2: unexpected symbol near '='" ]
}

@test "dotfiles, backups and package leftovers are ignored; bad names are refused with a reason" {
	for f in .hidden.lua '#x.lua#' x.lua~ y.lua.dpkg-new z.lua.rpmnew notes.txt; do
		printf "require('fibersd').log.info('started %s')\n" "$f" >"$D/t/$f"
	done
	printf "require('fibersd').log.info('started bad')\n" >"$D/t/bad name.lua"
	printf "require('fibersd').log.info('started reserved')\n" >"$D/t/control.lua"
	printf "require('fibersd').log.info('started 123')\n" >"$D/t/123.lua"
	fd_task ok <<'EOF2'
require('fibersd').log.info('started ok')
EOF2
	fd_start
	fd_wait_log 'ok: exited'
	[ "$(fd_count 'started')" -eq 1 ]
	grep -qF "$D/t/bad name.lua: refused: task name must match [A-Za-z0-9_.-]+" "$D/log"
	grep -qF "$D/t/control.lua: refused: task name 'control' is reserved" "$D/log"
	grep -qF "$D/t/123.lua: refused: task name must not be all digits" "$D/log"
	# --check reports a badly named file too (exit 1); the docs say the same
	run fibersd -c "$D/f.conf" -d "$D/t" --check
	[ "$status" -eq 1 ]
	[[ "$output" == *"$D/t/bad name.lua: refused: task name must match [A-Za-z0-9_.-]+"* ]]
	grep -q 'such as `my task.lua`, is refused' "$top_srcdir/README.md"
	grep -q 'refused with an error' "$top_srcdir/man/fibersd.conf.5"
}

@test "tasks get private globals, tagged print, blocked calls and their own fibersd.task" {
	fd_task a <<'EOF2'
local fibers = require 'fibers'
local fibersd = require 'fibersd'
counter = 41
shared_name = 'a'
local scope, task = ...
print('chunk args', type(scope), task.name, task.params.colour)
-- a fiber spawned in a child scope still resolves the task
fibers.run_scope(function()
  fibersd.log.notice('nested %s %s', fibersd.task.name, tostring(fibersd.task == task))
end)
for _, f in ipairs({ function() os.exit(1) end, function() os.execute('true') end,
                     function() io.popen('true') end, function() io.read() end,
                     function() io.lines() end }) do
  local ok, err = pcall(f)
  print(ok, (err:gsub('^.-:%d+: ', '')))
end
EOF2
	fd_task b <<'EOF2'
require('fibers.sleep').sleep(0.2)
print('b sees', tostring(counter), tostring(shared_name), tostring(os.getenv ~= nil))
EOF2
	fd_conf <<'EOF2'
[task:a]
param.colour = blue
EOF2
	fd_start
	fd_wait_log 'b: exited'
	fd_wait_log 'a: exited'
	grep -qx '<6>a: chunk args	table	a	blue' "$D/log"
	grep -qx '<5>a: nested a true' "$D/log"
	grep -qx '<6>a: false	os.exit is not available in fibersd tasks: the daemon would end' "$D/log"
	grep -qx '<6>a: false	os.execute is not available in fibersd tasks: use fibers.exec' "$D/log"
	grep -qx '<6>a: false	io.popen is not available in fibersd tasks: use fibers.exec' "$D/log"
	grep -qx '<6>a: false	io.read is not available in fibersd tasks: stdin belongs to the daemon; use fibers.io' "$D/log"
	grep -qx '<6>a: false	io.lines on stdin is not available in fibersd tasks: use fibers.io' "$D/log"
	grep -qx '<6>b: b sees	nil	nil	true' "$D/log"
}

@test "outcomes: a returning chunk is exited, restart=no failure stays failed" {
	fd_task once <<'EOF2'
require('fibersd').log.info('ran once')
EOF2
	fd_task fails <<'EOF2'
error('kaputt', 0)
EOF2
	fd_conf <<'EOF2'
[defaults]
restart = no
EOF2
	fd_start
	fd_wait_log 'fails: failed: kaputt'
	fd_wait_log 'once: exited'
	sleep 0.5
	[ "$(fd_count 'ran once')" -eq 1 ]
	[ "$(fd_count 'failed: kaputt')" -eq 1 ]
	! grep -q 'restarting' "$D/log"
}

@test "task alarms fire on the wall clock (realtime source set by the daemon)" {
	fd_task alarmed <<'EOF2'
local alarm = require 'fibers.alarm'
local fibers = require 'fibers'
local a = alarm.new{ next_time = function(last, now) if last then return nil end return now + 0.3 end }
local ok, _, fired = fibers.perform(a:wait_op())
require('fibersd').log.info('alarm fired %s', tostring(ok))
EOF2
	fd_start
	fd_wait_log '^<6>alarmed: alarm fired true$' 5
}

@test "as root, task files and directories writable by others are refused" {
	[ "$(id -u)" -eq 0 ] || skip "trust checks apply to root only"
	fd_task loose <<'EOF2'
require('fibersd').log.info('loose ran')
EOF2
	fd_task fine <<'EOF2'
require('fibersd').log.info('fine ran')
EOF2
	chmod 0666 "$D/t/loose.lua"
	fd_start
	fd_wait_log 'fine: exited'
	grep -qx "<3>fibersd: refused: $D/t/loose.lua is writable by group or others (mode 0666)" "$D/log"
	! grep -q 'loose ran' "$D/log"
	kill -TERM "$FD_PID"; fd_wait_dead "$FD_PID"
	chmod 0777 "$D/t"
	: >"$D/log"
	fd_start
	fd_wait_log 'ready: 0 tasks \(1 errors\)'
	grep -qx "<3>fibersd: refused: $D/t is writable by group or others (mode 0777)" "$D/log"
}
