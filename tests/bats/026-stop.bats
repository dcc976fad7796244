#!/usr/bin/env bats
# 026-stop.bats - operator actions through fibersctl on the supervisor:
# stop (a stuck task is forced past stop_timeout: processes killed, state
# stopped, last_exit "stopped (forced)"), start (also re-arms a fatal task),
# restart.

load helpers

setup() { fd_setup; }
teardown() { fd_teardown; }

ctl() { timeout 20 "$FIBERSCTL" -S "$D/c.sock" "$@"; }

wait_file() {
	local i
	for i in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done
	return 1
}

@test "stop of a task that ignores cancellation is forced after stop_timeout" {
	fd_task stuck <<EOF2
local op = require 'fibers.op'
local sleep = require 'fibers.sleep'
local exec = require 'fibers.exec'
local cmd = exec.command{ 'sh', '-c', 'trap "" TERM; echo \$\$ >> $D/stuck.pid; while :; do sleep 1; done' }
require('fibers').spawn(function() require('fibers').perform(cmd:run_op()) end)
while true do op.perform_raw(sleep.sleep_op(0.05)) end
EOF2
	fd_conf <<'EOF2'
[defaults]
shutdown_grace = 30
stop_timeout = 1
EOF2
	fd_start
	wait_file "$D/stuck.pid"
	pid=$(cat "$D/stuck.pid")
	start=$(date +%s.%N)
	run ctl stop stuck
	end=$(date +%s.%N)
	[ "$status" -eq 0 ]
	fd_wait_log '^<4>stuck: did not stop within 1s: forced \(processes killed, fibers abandoned\)$'
	fd_wait_dead "$pid" 3
	awk -v a="$start" -v b="$end" 'BEGIN { d = b - a; exit !(d >= 1 && d < 1 + 2) }'
	run ctl --json status stuck
	[ "$status" -eq 0 ]
	[[ "$output" == *'"state":"stopped"'* ]]
	[[ "$output" == *'"last_exit":"stopped (forced)"'* ]]
	[[ "$output" == *'"forced":true'* ]]
	# start runs it again
	run ctl start stuck
	[ "$status" -eq 0 ]
	for i in $(seq 100); do [ "$(wc -l <"$D/stuck.pid")" -eq 2 ] && break; sleep 0.05; done
	[ "$(wc -l <"$D/stuck.pid")" -eq 2 ]
}

@test "start re-arms a fatal task; restart stops with reason restart and starts again" {
	fd_task crash <<'EOF2'
require('fibersd').log.info('crash run')
error('crash', 0)
EOF2
	fd_task beat <<'EOF2'
require('fibersd').log.info('beat start')
require('fibersd').ready()
while true do require('fibers.sleep').sleep(10) end
EOF2
	fd_conf <<'EOF2'
[task:crash]
restart_delay = 0
restart_limit = 1
EOF2
	fd_start
	fd_wait_log 'crash: more than 1 restarts within 60s: giving up \(fatal\); last error: crash'
	[ "$(fd_count 'crash run')" -eq 2 ]
	run ctl --json status crash
	[[ "$output" == *'"state":"fatal"'* ]]
	[[ "$output" == *'"last_error":"crash"'* ]]
	run ctl start crash
	[ "$status" -eq 0 ]
	fd_wait_log 'crash: more than 1 restarts within 60s' 
	for i in $(seq 100); do [ "$(fd_count 'crash run')" -eq 4 ] && break; sleep 0.05; done
	[ "$(fd_count 'crash run')" -eq 4 ]
	fd_wait_log 'beat: ready'
	run ctl restart beat
	[ "$status" -eq 0 ]
	fd_wait_log '^<6>beat: stopped \(restart\)$'
	for i in $(seq 100); do [ "$(fd_count 'beat start')" -eq 2 ] && break; sleep 0.05; done
	[ "$(fd_count 'beat start')" -eq 2 ]
}

@test "a stop waiting on a stuck task returns at the client timeout (exit 6), the force follows" {
	fd_task stuck <<'EOF2'
local op = require 'fibers.op'
local sleep = require 'fibers.sleep'
require('fibersd').log.info('stuck start')
while true do op.perform_raw(sleep.sleep_op(0.05)) end
EOF2
	fd_conf <<'EOF2'
[defaults]
stop_timeout = 4
EOF2
	fd_start
	fd_wait_log 'stuck start'
	start=$(date +%s.%N)
	run timeout 20 "$FIBERSCTL" -S "$D/c.sock" -t 1 stop stuck
	end=$(date +%s.%N)
	echo "status=$status output=$output"
	[ "$status" -eq 6 ]
	awk -v a="$start" -v b="$end" 'BEGIN { d = b - a; exit !(d >= 0.9 && d < 1 + 2) }'
	fd_wait_log 'stuck: did not stop within 4s: forced' 8
}

@test "stop: the process group of a Command is stopped even after its leader exited" {
	# the leader (sh) exits at once; two children stay in its process group:
	# one still writing to the log pipe, one with its stdio elsewhere
	fd_task bg <<EOF2
local exec = require 'fibers.exec'
local fibers = require 'fibers'
fibers.perform(exec.command{ 'sh', '-c',
  'sleep 1000 & echo \$! > $D/p1; sleep 1000 >/dev/null 2>&1 </dev/null & echo \$! > $D/p2' }:run_op())
require('fibersd').log.info('leader exited')
while true do require('fibers.sleep').sleep(10) end
EOF2
	fd_start
	fd_wait_log '^<6>bg: leader exited$'
	wait_file "$D/p1"
	wait_file "$D/p2"
	p1=$(cat "$D/p1")
	p2=$(cat "$D/p2")
	! fd_dead "$p1"
	! fd_dead "$p2"
	run ctl stop bg
	[ "$status" -eq 0 ]
	# SIGTERM to the group, then (sleep dies of it) well within the grace
	fd_wait_dead "$p1" 5
	fd_wait_dead "$p2" 5
	run ctl --json status bg
	[[ "$output" == *'"state":"stopped"'* ]]
	! grep -q 'did not stop' "$D/log"
}

@test "start of a task disabled in the config: it runs, with a note; the next reload disables it again" {
	fd_task off <<'EOF2'
require('fibersd').log.info('off runs')
while true do require('fibers.sleep').sleep(10) end
EOF2
	fd_conf <<'EOF2'
[task:off]
enabled = no
EOF2
	fd_start
	for i in $(seq 200); do ctl --json status off 2>/dev/null | grep -q '"state":"disabled"' && break; sleep 0.05; done
	run ctl start off
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "off: running" ]
	[ "${lines[1]}" = "note: off is disabled in the configuration (enabled = no): runs until the next reload or restart of fibersd" ]
	fd_wait_log '^<6>off: off runs$'
	grep -q '^<4>off: started by hand while disabled in the configuration' "$D/log"
	run ctl --json start off
	[[ "$output" == *'"note":"disabled in the configuration (enabled = no): '* ]]
	run ctl reload
	[ "$status" -eq 0 ]
	for i in $(seq 200); do ctl --json status off | grep -q '"state":"disabled"' && break; sleep 0.05; done
	ctl --json status off | grep -q '"state":"disabled"'
	[ "$(fd_count 'off runs')" -eq 1 ]
}
