#!/usr/bin/env bats
# 061-control-cancel.bats - the mutating commands against a real fibersd:
# cancel of a task, of a nested child scope and of a scope owning a
# subprocess (process gone, join report returned), --no-wait, start, stop,
# restart, signal and reload, and their error paths.

load fixtures/control/ctl

setup() { fd_setup; }
teardown() { fd_teardown; }

nested_task() {
	fd_task job <<'EOF2'
local sleep = require 'fibers.sleep'
local exec = require 'fibers.exec'
local fibers = require 'fibers'
local s = ...
local w = assert(s:child()); w:set_name('worker')
w:spawn(function()
  fibers.perform(exec.command('sh', '-c', 'echo $$ > "$0"; exec sleep 1000', os.getenv('PIDFILE')):run_op())
end)
local inner = assert(w:child()); inner:set_name('inner')
inner:spawn(function() sleep.sleep(1000) end)
require('fibersd').ready()
sleep.sleep(1000)
EOF2
}

wait_file() {
	local i
	for i in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done
	return 1
}

@test "cancel a nested child scope, then the scope owning a subprocess: process gone, report returned" {
	nested_task
	export PIDFILE=$D/pid
	ctl_start
	ctl_wait_state job ready
	wait_file "$D/pid"
	pid=$(cat "$D/pid")
	run ctl cancel job/worker/inner "enough"
	[ "$status" -eq 0 ]
	[[ ${lines[0]} =~ ^job/worker/inner\ \[[0-9]+\]:\ cancelled\ \(enough\)$ ]]
	! fd_dead "$pid"
	run ctl --json cancel job/worker
	[ "$status" -eq 0 ]
	[[ $output == '{"id":'*',"primary":"cancelled by fibersctl","report":{"children":[{'*'"name":"inner","primary":"enough"'*'"scope":"job/worker","status":"cancelled","t":'* ]]
	fd_dead "$pid"
	run ctl status job/worker
	[ "$status" -eq 3 ]
	ctl_wait_state job ready
	grep -q "control: pid [0-9]* uid 0 cancels job/worker \[[0-9]*\] (cancelled by fibersctl)" "$D/log"
}

@test "cancel of a task scope stops the task; --no-wait returns at once" {
	nested_task
	export PIDFILE=$D/pid
	ctl_start
	ctl_wait_state job ready
	wait_file "$D/pid"
	pid=$(cat "$D/pid")
	run ctl cancel job
	[ "$status" -eq 0 ]
	[[ ${lines[0]} =~ ^job\ \[[0-9]+\]:\ cancelled\ \(stop\)$ ]]
	[[ $output == *"worker ["*"]: cancelled (stop)"* ]]
	fd_dead "$pid"
	run ctl status job
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == "○ job: stopped, restarts 0, memory 0B" ]]
	run ctl cancel job
	[ "$status" -eq 1 ]
	[ "$output" = "fibersctl: task 'job' is not running (failed)" ]
	run ctl start job
	[ "$status" -eq 0 ]
	[[ $output =~ ^job:\ (running|ready)$ ]]
	run ctl --json cancel job --no-wait
	[ "$status" -eq 0 ]
	[[ $output == *'"scope":"job","status":"cancelling"'* ]]
	ctl_wait_state job stopped
}

@test "start, stop, restart: states, unknown task exits 3, missing params exit 2" {
	fd_task svc <<'EOF2'
require('fibersd').ready()
require('fibers.sleep').sleep(1000)
EOF2
	ctl_start
	ctl_wait_state svc ready
	id1=$(ctl --json status svc -d 0 | grep -o '"id":[0-9]*' | head -1)
	run ctl restart svc
	[ "$status" -eq 0 ]
	[[ $output =~ ^svc:\ (running|ready)$ ]]
	id2=$(ctl --json status svc -d 0 | grep -o '"id":[0-9]*' | head -1)
	[ "$id1" != "$id2" ]
	run ctl stop svc
	[ "$status" -eq 0 ]
	[ "$output" = "svc: stopped" ]
	run ctl stop svc
	[ "$status" -eq 0 ]
	[ "$output" = "svc: stopped" ]
	run ctl start svc
	[ "$status" -eq 0 ]
	[[ $output =~ ^svc:\ (running|ready)$ ]]
	run ctl start svc
	[ "$status" -eq 0 ]
	for c in start stop restart; do
		run ctl $c nope
		[ "$status" -eq 3 ]
		[ "$output" = "fibersctl: no task 'nope' (not_found)" ]
	done
	run ctl stop control
	[ "$status" -eq 3 ]
	run ctl stop
	[ "$status" -eq 2 ]
}

@test "signal reaches every process group of the scope; bad signal exits 2" {
	fd_task sig <<'EOF2'
local fibers = require 'fibers'
local exec = require 'fibers.exec'
local s = ...
for i = 1, 2 do
  s:spawn(function()
    fibers.perform(exec.command('sh', '-c', 'trap "echo got-usr1-' .. i .. '; exit 0" USR1; while :; do sleep 0.05; done'):run_op())
  end)
end
require('fibersd').ready()
require('fibers.sleep').sleep(1000)
EOF2
	ctl_start
	ctl_wait_state sig ready
	for i in $(seq 100); do
		[ "$(ctl --json status sig | grep -o '"state":"running"' | wc -l)" -ge 2 ] && break
		sleep 0.05
	done
	run ctl signal sig FOO
	[ "$status" -eq 2 ]
	[ "$output" = "fibersctl: unknown signal 'FOO' (bad_request)" ]
	run ctl signal sig USR1
	[ "$status" -eq 0 ]
	[[ $output =~ ^sig:\ sent\ SIGUSR1\ to\ 2\ process\ groups\ \(pids\ [0-9]+\ [0-9]+\)$ ]]
	fd_wait_log 'got-usr1-1'
	fd_wait_log 'got-usr1-2'
	run ctl signal nope TERM
	[ "$status" -eq 3 ]
}

@test "reload lists the diff; a task that does not compile keeps the old one, exit 1" {
	fd_task a <<'EOF2'
require('fibers.sleep').sleep(1000)
EOF2
	ctl_start
	ctl_wait_state a running
	fd_task b <<'EOF2'
require('fibers.sleep').sleep(1000)
EOF2
	run ctl reload
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "added: b" ]
	[ "${lines[3]}" = "unchanged: a" ]
	echo 'local x = = 1' >"$D/t/a.lua"
	run ctl reload
	[ "$status" -eq 1 ]
	# a changed file that does not compile: not "unchanged", but kept, with
	# the compile error at file:line
	[ "${lines[3]}" = "unchanged: b" ]
	[ "${lines[4]}" = "kept: a (old version still running)" ]
	[ "${lines[5]}" = "error: a: not reloaded, the old version keeps running: $D/t/a.lua:1: unexpected symbol near '='" ]
	[ "${#lines[@]}" -eq 6 ]
	ctl_wait_state a running
}
