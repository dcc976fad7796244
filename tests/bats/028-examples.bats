#!/usr/bin/env bats
# 028-examples.bats - every task in scripts/examples/ runs under fibersd and
# does what its comments say (docs that are tests cannot rot); the other
# examples are in 029-examples.bats.

load helpers

setup() { fd_setup; }
teardown() { fd_teardown; }

@test "scripts/examples: heartbeat, subprocess, periodic and flaky behave as documented" {
	for n in heartbeat subprocess periodic flaky; do
		cp "$top_srcdir/scripts/examples/$n.lua" "$D/t/"
	done
	chmod 0644 "$D"/t/*.lua
	fd_conf <<'EOF2'
[task:heartbeat]
param.interval = 0.2
[task:subprocess]
param.period = 0.2
[task:periodic]
param.every = 0.3
param.timeout = 2
[task:flaky]
param.life = 0.3
restart_delay = 0.1
EOF2
	fd_notify_listen
	fd_start
	fd_wait_ready
	[ "$(ls "$D"/t/*.lua | wc -l)" -eq 4 ]
	fd_wait_log '^<6>heartbeat: beat 3 \(every 0.2s, up [0-9]+s\)$'
	fd_wait_log '^<6>subprocess\[[0-9]+\]: tick 3$'
	fd_wait_log '^<6>periodic: root filesystem [0-9]+% used$'
	fd_wait_log '^<3>flaky: failed: .*flaky.lua:[0-9]+: simulated failure after 0.3s$'
	fd_wait_log '^<5>flaky: restarting in 0\.[0-9]+s \(restart 1\)$'
	fd_wait_log '^<5>flaky: starting; will fail in 0.3s$'
	[ "$(fd_count 'flaky: starting')" -ge 2 ]
	kill -TERM "$FD_PID"
	fd_wait_dead "$FD_PID" 10
	grep -q '^<6>subprocess: stopped (shutdown)$' "$D/log"
}
