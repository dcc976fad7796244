#!/usr/bin/env bats
# 030-containment.bats - one cgroup v2 per task: 100 tasks whose child
# starts a setsid daemon that ignores SIGTERM leave no process after
# `fibersctl stop`, after a daemon stop, and after a SIGKILL of the daemon
# and a restart (which names each process it reaps); `status TASK` lists
# processes with strays marked and the CPU of a busy child; the
# process-group fallback says at start what it cannot catch.  Needs root
# and a writable cgroup v2 hierarchy (skips with the reason otherwise);
# each test runs fibersd in a private cgroup it creates and removes.

load helpers

setup() {
	fd_setup
	[ "$(id -u)" -eq 0 ] || skip "needs root (cgroup v2 writes)"
	CGM=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' \
		/proc/self/mountinfo | head -n 1)
	[ -n "$CGM" ] || skip "no cgroup v2 hierarchy"
	TCG="$CGM/fibersd-bats-$$-$BATS_TEST_NUMBER"
	mkdir "$TCG" 2>/dev/null || skip "cgroup v2 not writable ($CGM)"
}

# Kill and remove everything below $TCG (deepest first).
cg_cleanup() {
	[ -n "${TCG:-}" ] && [ -d "$TCG" ] || return 0
	local d
	for d in $(find "$TCG" -mindepth 1 -type d | sort -r) "$TCG"; do
		echo 1 >"$d/cgroup.kill" 2>/dev/null || true
	done
	for d in $(find "$TCG" -mindepth 1 -type d | sort -r) "$TCG"; do
		for _ in $(seq 100); do rmdir "$d" 2>/dev/null && break; sleep 0.05; done
	done
}

teardown() {
	fd_teardown
	cg_cleanup
}

ctl() { timeout 20 "$FIBERSCTL" -S "$D/c.sock" "$@"; }

# Start the daemon inside $TCG (it moves itself to $TCG/supervisor).
fd_start_cg() {
	if [ -n "$FD_SOCAT" ]; then export NOTIFY_SOCKET="$D/notify"; fi
	sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$TCG" \
		"$FIBERSD" -c "$D/f.conf" -d "$D/t" -S "$D/c.sock" "$@" 3>&- </dev/null >>"$D/log" 2>&1 &
	FD_PID=$!
	unset NOTIFY_SOCKET
}

# Processes left in the test's cgroup tree (the daemon itself excluded).
left() {
	local n=0 f p
	for f in $(find "$TCG" -name cgroup.procs); do
		for p in $(cat "$f"); do
			[ "$p" = "${FD_PID:-}" ] || n=$((n + 1))
		done
	done
	echo "$n"
}

wait_left() {
	local want="$1" i
	for i in $(seq 200); do
		[ "$(left)" -eq "$want" ] && return 0
		sleep 0.05
	done
	echo "processes left: $(left), want $want" >&2
	return 1
}

wait_lines() {
	local i
	for i in $(seq 400); do
		[ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ] && return 0
		sleep 0.05
	done
	echo "$1: $(wc -l <"$1" 2>/dev/null) lines, want $2" >&2
	return 1
}

# N tasks d1..dN: each child starts a setsid daemon ignoring SIGTERM
# (double fork: the daemon's parent exits at once) and stays.
daemon_tasks() {
	cat >"$D/child.sh" <<EOF
( setsid sh -c 'trap "" TERM; echo \$\$ >>$D/daemons; exec sleep 1000' </dev/null >/dev/null 2>&1 & )
exec sleep 1000
EOF
	local i
	for i in $(seq "$1"); do
		fd_task "d$i" <<EOF
local fibers = require 'fibers'
fibers.perform(require('fibers.exec').command{ 'sh', '$D/child.sh' }:run_op())
EOF
	done
}

all_dead() {
	local p
	for p in $(cat "$1"); do
		fd_wait_dead "$p" 5 || { echo "pid $p alive" >&2; return 1; }
	done
}

@test "100 tasks with escaped SIGTERM-ignoring daemons: fibersctl stop leaves 0 processes" {
	daemon_tasks 100
	fd_notify_listen
	fd_start_cg
	fd_wait_ready
	wait_lines "$D/daemons" 100
	[ "$(left)" -eq 200 ]
	grep -q "containment: cgroup $TCG" "$D/log"
	[ -d "$TCG/supervisor" ]
	grep -qx "$FD_PID" "$TCG/supervisor/cgroup.procs"
	for i in $(seq 100); do
		run ctl stop "d$i"
		[ "$status" -eq 0 ]
	done
	wait_left 0
	all_dead "$D/daemons"
	for i in $(seq 100); do
		run ctl --json status "d$i"
		[[ "$output" == *'"state":"stopped"'* ]]
	done
	# the task cgroups are removed once empty
	[ -z "$(find "$TCG" -mindepth 1 -maxdepth 1 -name 'task-*')" ]
	grep -Eq '^<5>d1: cgroup.kill after the grace: pid [0-9]+ \(sleep 1000\)$' "$D/log"
}

@test "100 tasks with escaped daemons: a daemon stop leaves 0 processes and no task cgroup" {
	daemon_tasks 100
	fd_notify_listen
	fd_start_cg
	fd_wait_ready
	wait_lines "$D/daemons" 100
	kill -TERM "$FD_PID"
	fd_wait_dead "$FD_PID" 20
	wait "$FD_PID"
	[ "$(left)" -eq 0 ]
	all_dead "$D/daemons"
	[ -z "$(find "$TCG" -mindepth 1 -maxdepth 1 -name 'task-*')" ]
	fd_wait_log '^<5>fibersd: stopped$'
}

@test "SIGKILL of the daemon, then a restart: the leftovers are killed, each named in the log" {
	daemon_tasks 100
	fd_notify_listen
	fd_start_cg
	fd_wait_ready
	wait_lines "$D/daemons" 100
	kill -KILL "$FD_PID"
	fd_wait_dead "$FD_PID" 10
	# the direct children die with the daemon (parent-death signal), the
	# escaped daemons do not
	sleep 0.2
	[ "$(left)" -eq 100 ]
	mv "$D/daemons" "$D/daemons.1"
	: >"$D/log"
	fd_start_cg
	fd_wait_log 'fibersd .* ready: 100 tasks' 20
	all_dead "$D/daemons.1"
	for p in $(cat "$D/daemons.1"); do
		grep -Eq "^<4>fibersd: task-d[0-9]+: killed leftover pid $p \(sleep 1000\) of a previous fibersd\$" "$D/log"
	done
	grep -q '^<4>fibersd: killed 100 leftover processes of a previous fibersd$' "$D/log"
	# the new runs start fresh
	wait_lines "$D/daemons" 100
	kill -TERM "$FD_PID"
	fd_wait_dead "$FD_PID" 20
	[ "$(left)" -eq 0 ]
}

@test "status TASK lists the processes of its cgroup, a stray marked, and a busy child's CPU" {
	cat >"$D/child.sh" <<EOF
( setsid sh -c 'echo \$\$ >$D/stray; exec sleep 1000' </dev/null >/dev/null 2>&1 & )
exit 0
EOF
	fd_task strays <<EOF
local fibers = require 'fibers'
local exec = require 'fibers.exec'
fibers.perform(exec.command{ 'sh', '$D/child.sh' }:run_op())
fibers.perform(exec.command{ 'sh', '-c', 'echo \$\$ >$D/busy; while :; do :; done' }:run_op())
EOF
	fd_start_cg
	wait_lines "$D/busy" 1
	stray=$(cat "$D/stray")
	busy=$(cat "$D/busy")
	run ctl --json status strays
	[ "$status" -eq 0 ]
	[[ "$output" == *'"containment":"cgroup"'* ]]
	[[ "$output" == *"\"cgroup\":\"$TCG/task-strays\""* ]]
	[[ "$output" == *"{\"cmdline\":\"sleep 1000\",\"pid\":$stray,\"stray\":true}"* ]]
	[[ "$output" == *"\"pid\":$busy,\"stray\":false}"* ]]
	# the busy child's CPU shows within 2 s
	ok=
	for i in $(seq 20); do
		run ctl --json status strays
		u=$(printf '%s' "$output" | sed -n 's/.*"cpu_user_usec":\([0-9]*\).*/\1/p')
		s=$(printf '%s' "$output" | sed -n 's/.*"cpu_system_usec":\([0-9]*\).*/\1/p')
		if [ -n "$u" ] && [ $((u + s)) -ge 100000 ]; then ok=1; break; fi
		sleep 0.1
	done
	[ -n "$ok" ]
	run ctl status strays
	[ "$status" -eq 0 ]
	[[ "$output" == *"    containment: cgroup $TCG/task-strays, cpu "*" user "*" system"* ]]
	[[ "$output" == *"    process $stray (stray): sleep 1000"* ]]
	[[ "$output" == *"    process $busy: sh -c echo"* ]]
}

@test "without a cgroup of its own: process-group containment, said once at start" {
	# the test's shell runs in the hierarchy's root cgroup here or not:
	# force the fallback by starting in the root of the unified mount
	sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$CGM" \
		"$FIBERSD" -c "$D/f.conf" -d "$D/t" -S "$D/c.sock" 3>&- </dev/null >>"$D/log" 2>&1 &
	FD_PID=$!
	fd_wait_log 'fibersd .* ready'
	[ "$(fd_count 'containment: ')" -eq 1 ]
	grep -q "^<5>fibersd: containment: process-group (fibersd runs in the root cgroup of $CGM, which it does not own): processes that leave their process group (setsid, double fork) are not stopped with their task\$" "$D/log"
	run ctl --json status
	[ "$status" -eq 0 ]
}

@test "memory_max without the memory controller: the task is refused with file:line, at start, reload and --check" {
	fd_task lim <<'EOF'
require('fibersd').log.info('lim ran')
EOF
	fd_task other <<'EOF'
require('fibersd').log.info('other ran')
EOF
	fd_conf <<'EOF'
[task:lim]
memory_max = 64M
EOF
	line=$(grep -n '^memory_max = 64M$' "$D/f.conf" | cut -d: -f1)
	controllers=$(cat "$TCG/cgroup.controllers")
	grep -qw memory "$TCG/cgroup.controllers" && skip "the memory controller is available here"
	msg="$D/f.conf:$line: memory_max: the memory controller is not delegated to fibersd (cgroup.controllers: ${controllers:-empty})"
	fd_start_cg
	fd_wait_log 'fibersd .* ready'
	grep -qxF "<3>fibersd: $msg" "$D/log"
	[ "$(fd_count 'lim ran')" -eq 0 ]
	fd_wait_log 'other ran'
	run ctl --json status lim
	[ "$status" -ne 0 ]
	: >"$D/log"
	run ctl reload
	[[ "$output" == *"error: $msg"* ]]
	# --check (run in the same cgroup) reports the same
	run sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$TCG" \
		timeout 20 "$FIBERSD" --check -c "$D/f.conf" -d "$D/t"
	[ "$status" -eq 1 ]
	[[ "$output" == *"$msg"* ]]
}

@test "user, group, environment.*, environment_file, working_directory, umask reach the task's Commands" {
	printf '# comment\nFROM_FILE="file value"\nBOTH=file\n' >"$D/env"
	fd_task who <<EOF
local fibers = require 'fibers'
local exec = require 'fibers.exec'
local out = fibers.perform(exec.command{ 'sh', '-c',
  'id -un; id -gn; echo "\$FOO|\$FROM_FILE|\$BOTH"; pwd; umask; cat /proc/self/cgroup | grep ^0::' }:output_op())
local own = fibers.perform(exec.command{ 'sh', '-c', 'id -un; echo "\$FOO"; pwd', user = 'root', env = { FOO = 'own' },
  cwd = '/' }:output_op())
local f = io.open('$D/out', 'w'); f:write(out, '--\n', own); f:close()
EOF
	fd_conf <<EOF
[task:who]
user = nobody
group = nogroup
environment.FOO = bar
environment.BOTH = key
environment_file = $D/env
working_directory = /tmp
umask = 0027
restart = no
EOF
	fd_start_cg
	fd_wait_file "$D/out"
	fd_wait_log 'who: exited'
	run cat "$D/out"
	[ "${lines[0]}" = nobody ]
	[ "${lines[1]}" = nogroup ]
	[ "${lines[2]}" = "bar|file value|key" ]
	[ "${lines[3]}" = /tmp ]
	[ "${lines[4]}" = 0027 ]
	[ "${lines[5]}" = "0::${TCG#$CGM}/task-who" ]
	[ "${lines[6]}" = -- ]
	[ "${lines[7]}" = root ]
	[ "${lines[8]}" = own ]
	[ "${lines[9]}" = / ]
}

@test "an unknown user or group is a config error with file:line" {
	fd_conf <<'EOF'
[defaults]
user = fibersd-no-such-user
[task:x]
group = fibersd-no-such-group
supplementary_groups = root fibersd-no-such-group
EOF
	run fibersd --check -c "$D/f.conf" -d "$D/t"
	[ "$status" -eq 1 ]
	[[ "$output" == *"$D/f.conf:8: bad value 'fibersd-no-such-user' for user: unknown user"* ]]
	[[ "$output" == *"$D/f.conf:10: bad value 'fibersd-no-such-group' for group: unknown group"* ]]
	[[ "$output" == *"$D/f.conf:11: bad value 'root fibersd-no-such-group' for supplementary_groups: unknown group"* ]]
}
