#!/usr/bin/env bats
# 023-shutdown.bats - SIGTERM/SIGINT: STOPPING=1, every task cancelled with
# "shutdown" in parallel, their process groups (TERM-ignoring children and
# grandchildren too) stopped within the grace, exit 0, nothing left; a
# second signal skips the wait; shutdown_timeout bounds a stuck stop.

load helpers

setup() { fd_setup; }
teardown() { fd_teardown; }

# A task running a child that writes its pid (and, when $2 = stubborn,
# ignores SIGTERM and has a grandchild in its process group).
child_task() {
	if [ "${2:-}" = stubborn ]; then
		fd_task "$1" <<EOF2
local exec = require 'fibers.exec'
local fibers = require 'fibers'
local cmd = exec.command{ 'sh', '-c', 'trap "" TERM; echo \$\$ > $D/$1.pid; sleep 1000 & echo \$! > $D/$1.gpid; while :; do wait; done' }
fibers.perform(cmd:run_op())
EOF2
	else
		fd_task "$1" <<EOF2
local exec = require 'fibers.exec'
local fibers = require 'fibers'
local cmd = exec.command{ 'sh', '-c', 'echo \$\$ > $D/$1.pid; exec sleep 1000' }
fibers.perform(cmd:run_op())
EOF2
	fi
}

wait_file() {
	local i
	for i in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done
	return 1
}

@test "SIGTERM stops all tasks and their process trees in parallel, exits 0" {
	for i in 1 2 3; do child_task "plain$i"; child_task "stubborn$i" stubborn; done
	fd_conf <<'EOF2'
[defaults]
shutdown_grace = 1
EOF2
	fd_notify_listen
	fd_start
	fd_wait_ready
	for f in plain1 plain2 plain3 stubborn1 stubborn2 stubborn3; do wait_file "$D/$f.pid"; done
	for f in stubborn1 stubborn2 stubborn3; do wait_file "$D/$f.gpid"; done
	pids=$(cat "$D"/*.pid "$D"/*.gpid)
	for p in $pids; do ! fd_dead "$p"; done
	start=$(date +%s.%N)
	kill -TERM "$FD_PID"
	fd_wait_dead "$FD_PID" 10
	end=$(date +%s.%N)
	wait "$FD_PID" || rc=$?
	[ "${rc:-0}" -eq 0 ]
	for p in $pids; do fd_dead "$p"; done
	# in parallel: one grace (1 s), not six; lower bound: the stubborn ones waited the grace
	awk -v a="$start" -v b="$end" 'BEGIN { d = b - a; exit !(d >= 1 && d < 1 + 2) }'
	grep -q '^STOPPING=1' "$D/notify.log"
	grep -q '^<5>fibersd: SIGTERM: shutting down$' "$D/log"
	[ "$(fd_count '^<6>(plain|stubborn)[0-9]: stopped \(shutdown\)$')" -eq 6 ]
	grep -q '^<5>fibersd: stopped$' "$D/log"
	[ ! -e "$D/c.sock" ]
}

@test "a second SIGINT skips the wait and kills what is left" {
	child_task stubborn stubborn
	fd_conf <<'EOF2'
[defaults]
shutdown_grace = 30
EOF2
	fd_start
	wait_file "$D/stubborn.pid"
	wait_file "$D/stubborn.gpid"
	pids=$(cat "$D"/*.pid "$D"/*.gpid)
	kill -INT "$FD_PID"
	fd_wait_log 'SIGINT: shutting down'
	sleep 0.3
	! fd_dead "$FD_PID"
	kill -INT "$FD_PID"
	fd_wait_dead "$FD_PID" 5
	for p in $pids; do fd_wait_dead "$p" 3; done
	grep -q 'shutdown: 1 task did not stop in time: killed' "$D/log"
}

@test "shutdown_timeout bounds the stop of a task that ignores cancellation" {
	fd_task stuck <<EOF2
local op = require 'fibers.op'
local sleep = require 'fibers.sleep'
local exec = require 'fibers.exec'
local cmd = exec.command{ 'sh', '-c', 'trap "" TERM; echo \$\$ > $D/stuck.pid; while :; do sleep 1; done' }
require('fibers').spawn(function() require('fibers').perform(cmd:run_op()) end)
-- performs that ignore the scope: cancellation never reaches this loop
while true do op.perform_raw(sleep.sleep_op(0.05)) end
EOF2
	fd_conf <<'EOF2'
[fibersd]
shutdown_timeout = 1
[defaults]
shutdown_grace = 30
stop_timeout = 60
EOF2
	fd_start
	wait_file "$D/stuck.pid"
	pid=$(cat "$D/stuck.pid")
	start=$(date +%s.%N)
	kill -TERM "$FD_PID"
	fd_wait_dead "$FD_PID" 5
	end=$(date +%s.%N)
	awk -v a="$start" -v b="$end" 'BEGIN { d = b - a; exit !(d >= 1 && d < 1 + 2) }'
	fd_wait_dead "$pid" 3
	grep -q 'shutdown: 1 task did not stop in time: killed' "$D/log"
}

@test "a long stop sends EXTEND_TIMEOUT_USEC to the service manager" {
	child_task stubborn stubborn
	fd_conf <<'EOF2'
[defaults]
shutdown_grace = 2.5
EOF2
	fd_notify_listen
	fd_start
	fd_wait_ready
	wait_file "$D/stubborn.gpid"
	kill -TERM "$FD_PID"
	fd_wait_dead "$FD_PID" 10
	grep -Eq '^EXTEND_TIMEOUT_USEC=[0-9]+' "$D/notify.log"
	[ "$(grep -n '^STOPPING=1' "$D/notify.log" | cut -d: -f1)" -lt "$(grep -n '^EXTEND_TIMEOUT_USEC' "$D/notify.log" | head -n 1 | cut -d: -f1)" ]
}
