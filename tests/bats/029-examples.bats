#!/usr/bin/env bats
# 029-examples.bats - the examples of scripts/examples/ beyond the first four
# (028-examples.bats): each one runs under fibersd and does what its header
# comment says; and all of them together, with their defaults, behave under
# one daemon as in `./dev.sh run`.

load fixtures/control/ctl

setup() {
	fd_setup
	export TMPDIR="$D" # default paths of linesrv/fifo stay in the test dir
}
teardown() { fd_teardown; }

ex() { # ex NAME...: copy examples into the task dir
	local n
	for n in "$@"; do
		cp "$top_srcdir/scripts/examples/$n.lua" "$D/t/"
		chmod 0644 "$D/t/$n.lua"
	done
}

@test "server.lua: ready only after the ready line; restarted (and ready again) when the server dies" {
	ex server
	fd_conf <<'EOF2'
[task:server]
restart_delay = 0.1
EOF2
	ctl_start
	fd_wait_log '^<6>server: started sh \(pid [0-9]+\)$'
	ctl_wait_state server ready
	fd_wait_log '^<6>server: listening on port 8080$'
	fd_wait_log '^<5>server: ready after 0\.[3-9]s$'
	run ctl --json status server
	[ "$status" -eq 0 ]
	[[ "$output" == *'"ready":true'* ]]
	pid=$(ctl_json_field pid)
	[ -n "$pid" ]
	kill -KILL "$pid"
	fd_wait_log '^<3>server: failed: .*server.lua:[0-9]+: server ended: signalled 9$'
	fd_wait_log '^<5>server: restarting in 0\.[0-9]+s \(restart 1\)$'
	for i in $(seq 100); do [ "$(fd_count '^<5>server: ready after')" -ge 2 ] && break; sleep 0.05; done
	[ "$(fd_count '^<5>server: ready after')" -eq 2 ]
	ctl_wait_state server ready
}

@test "server.lua: a server that never prints the ready line fails after ready_timeout" {
	ex server
	fd_conf <<'EOF2'
[task:server]
restart = no
param.cmd = sleep 30
param.ready_timeout = 0.3
EOF2
	ctl_start
	fd_wait_log '^<3>server: failed: .*server.lua:[0-9]+: not ready after 0.3s \(no line matching "\^listening"\)$'
	ctl_wait_state server failed
}

@test "pipeline.lua: seq | awk through the task, one-shot job that exits" {
	ex pipeline
	fd_conf <<'EOF2'
[task:pipeline]
param.n = 1000
EOF2
	ctl_start
	fd_wait_log '^<5>pipeline: sum of 1\.\.1000 = 500500 \(3893 bytes through the pipe\)$'
	ctl_wait_state pipeline exited
	[ "$(fd_count 'pipeline: sum')" -eq 1 ]
}

@test "linesrv.lua: per-connection scopes, upper-case replies, quit, idle, long lines, cancel" {
	ex linesrv
	fd_conf <<EOF2
[task:linesrv]
param.socket = $D/l.sock
param.idle = 0.5
EOF2
	ctl_start
	fd_wait_log "^<5>linesrv: listening on $D/l.sock\$"
	[ -S "$D/l.sock" ]
	[ "$(stat -c %a "$D/l.sock")" = 660 ]
	run bash -c "printf 'hello\nworld\nquit\nnot seen\n' | timeout 5 socat -t 3 - UNIX-CONNECT:$D/l.sock"
	[ "$status" -eq 0 ]
	[ "$output" = $'HELLO\nWORLD' ]
	fd_wait_log '^<6>linesrv: connection 1: ok closed$'
	# idle client: dropped with a goodbye
	run bash -c "(sleep 2) | timeout 5 socat -t 3 - UNIX-CONNECT:$D/l.sock"
	[ "$output" = 'bye (idle)' ]
	fd_wait_log '^<6>linesrv: connection 2: ok idle$'
	# a line over 4096 bytes fails that connection only
	run bash -c "head -c 5000 /dev/zero | tr '\\0' x | timeout 5 socat -t 3 - UNIX-CONNECT:$D/l.sock"
	fd_wait_log '^<6>linesrv: connection 3: failed .*line too long'
	# an open connection is a scope below the task; cancel hangs up
	(printf 'a\n'; sleep 3) | timeout 10 socat -t 5 - UNIX-CONNECT:"$D/l.sock" >"$D/c4.out" &
	for i in $(seq 100); do ctl status linesrv | grep -q 'conn-4' && break; sleep 0.05; done
	run ctl status linesrv
	[[ "$output" == *"conn-4 ["*"]: running"* ]]
	run ctl cancel linesrv/conn-4
	[ "$status" -eq 0 ]
	[[ "$output" == "linesrv/conn-4 ["*"]: cancelled (cancelled by fibersctl)" ]]
	fd_wait_log '^<6>linesrv: connection 4: cancelled cancelled by fibersctl$'
	run ctl status linesrv
	[[ "$output" != *conn-4* ]]
	ctl_wait_state linesrv ready
	run ctl stop linesrv
	[ "$status" -eq 0 ]
	[ ! -e "$D/l.sock" ]
}

@test "fifo.lua: lines written to the FIFO are commands; fail restarts, quit exits" {
	ex fifo
	fd_conf <<EOF2
[task:fifo]
restart_delay = 0.1
EOF2
	ctl_start
	fd_wait_log "^<5>fifo: watching $D/fifo-ctl\$"
	[ -p "$D/fifo-ctl" ]
	echo hello >"$D/fifo-ctl"
	fd_wait_log '^<5>fifo: hello to you too$'
	printf 'bogus\ncount\n' >"$D/fifo-ctl"
	fd_wait_log '^<4>fifo: unknown command "bogus"$'
	fd_wait_log '^<5>fifo: 3 lines so far$'
	echo fail >"$D/fifo-ctl"
	fd_wait_log '^<3>fifo: failed: .*fifo.lua:[0-9]+: asked to fail$'
	fd_wait_log '^<5>fifo: restarting in 0\.[0-9]+s \(restart 1\)$'
	for i in $(seq 100); do [ "$(fd_count "^<5>fifo: watching")" -ge 2 ] && break; sleep 0.05; done
	[ "$(fd_count "^<5>fifo: watching")" -eq 2 ]
	echo quit >"$D/fifo-ctl"
	fd_wait_log '^<5>fifo: quit after 1 lines$'
	ctl_wait_state fifo exited
	[ ! -e "$D/fifo-ctl" ]
}

@test "workers.lua: fan-out/fan-in sums; a bad job fails its batch fast and the next batch runs" {
	ex workers
	fd_conf <<'EOF2'
[task:workers]
param.every = 0.1
param.bad = 7
param.bad_batches = 2
EOF2
	ctl_start
	fd_wait_log '^<6>workers: batch 3: 10 jobs on 4 workers, sum of squares 385$'
	grep -qx '<6>workers: batch 1: 10 jobs on 4 workers, sum of squares 385' "$D/log"
	grep -qx '<4>workers: batch 2 failed: job 7: bad input (0 more errors)' "$D/log"
	[ "$(fd_count '^<6>workers: batch 2:')" -eq 0 ]
	run ctl status workers
	[[ "$output" == *"restarts 0"* ]]
}

@test "drain.lua: stop drains the queue in finalisers (LIFO) and stops" {
	ex drain
	fd_conf <<'EOF2'
[fibersd]
log_level = info
[task:drain]
param.rate = 0.02
param.cost = 0.1
param.drain_max = 3
EOF2
	ctl_start
	ctl_wait_state drain ready
	sleep 0.5 # let a backlog build up (items come 5x faster than handled)
	run ctl stop drain
	[ "$status" -eq 0 ]
	fd_wait_log '^<6>drain: stopped \(stop\)$'
	grep -n 'drain:' "$D/log" >"$D/d.out"
	drained=$(grep -n '^<5>drain: drained 3 queued items$' "$D/log" | cut -d: -f1)
	checkpoint=$(grep -En '^<5>drain: checkpoint: [0-9]+ items handled, [0-9]+ left \(scope cancelled: stop\)$' "$D/log" | cut -d: -f1)
	stopped=$(grep -n '^<6>drain: stopped (stop)$' "$D/log" | cut -d: -f1)
	[ -n "$drained" ] && [ -n "$checkpoint" ] && [ -n "$stopped" ]
	[ "$drained" -lt "$checkpoint" ] && [ "$checkpoint" -lt "$stopped" ]
}

@test "all examples with their defaults under one daemon (as ./dev.sh run), then a clean SIGTERM" {
	cp "$top_srcdir"/scripts/examples/*.lua "$D/t/"
	chmod 0644 "$D"/t/*.lua
	[ "$(ls "$D"/t/*.lua | wc -l)" -ge 10 ]
	fd_conf <<'EOF2'
[fibersd]
log_level = info
EOF2
	ctl_start
	for t in heartbeat subprocess periodic flaky server linesrv fifo workers drain; do
		ctl_wait_state "$t" ready
	done
	ctl_wait_state pipeline exited
	[ -S "$D/linesrv.sock" ] && [ -p "$D/fifo-ctl" ]
	run bash -c "printf 'hi\n' | timeout 5 socat -t 3 - UNIX-CONNECT:$D/linesrv.sock"
	[ "$output" = HI ]
	fd_wait_log '^<6>workers: batch 1: 10 jobs on 4 workers, sum of squares 385$'
	fd_wait_log '^<5>pipeline: sum of 1\.\.100000 = 5000050000 \(588895 bytes through the pipe\)$'
	kill -TERM "$FD_PID"
	fd_wait_dead "$FD_PID" 15
	wait "$FD_PID" || st=$?
	[ "${st:-0}" -eq 0 ]
	fd_wait_log '^<5>fibersd: stopped$' 1
	[ "$(grep '^<3>' "$D/log" | grep -vc '^<3>flaky: failed: ')" -eq 0 ]
	[ ! -e "$D/linesrv.sock" ] && [ ! -e "$D/fifo-ctl" ]
}
