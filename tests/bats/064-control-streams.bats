#!/usr/bin/env bats
# 064-control-streams.bats - the streaming methods: `watch` (snapshot first,
# then state changes: it sees a restart), `logs` (-n) and `logs -f`
# (follows new lines), every record with t and an RFC 3339 time.

load fixtures/control/ctl

setup() {
	fd_setup
	fd_task svc <<'EOF2'
local fibersd = require 'fibersd'
fibersd.log.info('svc started')
fibersd.ready()
local i = 0
while true do
  i = i + 1
  fibersd.log.info('tick %d', i)
  require('fibers.sleep').sleep(0.1)
end
EOF2
}
teardown() {
	[ -n "${BG:-}" ] && kill "$BG" 2>/dev/null
	fd_teardown
}

@test "watch: snapshot first, then the states of a restart" {
	ctl_start
	ctl_wait_state svc ready
	timeout 20 "$FIBERSCTL" -S "$D/c.sock" --json watch >"$D/watch.out" 2>&1 3>&- &
	BG=$!
	for i in $(seq 100); do [ -s "$D/watch.out" ] && break; sleep 0.05; done
	run ctl restart svc
	[ "$status" -eq 0 ]
	for i in $(seq 100); do grep -q '"from":"loading","reason":null' "$D/watch.out" && break; grep -q '"from":"loading"' "$D/watch.out" && break; sleep 0.05; done
	kill "$BG"
	BG=
	mapfile -t ev <"$D/watch.out"
	[[ ${ev[0]} == '{"event":"snapshot","t":'*'"tasks":[{"id":'*'"name":"svc","path":"svc"'*'"state":"ready"}],"time":"'* ]]
	[[ ${ev[1]} == '{"event":"state","from":"ready","id":'*'"reason":"restart","scope":"svc","t":'*'"to":"stopping"'* ]]
	[[ ${ev[2]} == *'"from":"stopping",'*'"to":"stopped"'* ]]
	[[ ${ev[3]} == *'"from":"stopped",'*'"to":"loading"'* ]]
	[[ ${ev[4]} == *'"from":"loading",'*'"to":"'* ]]
	[[ ${ev[1]} =~ \"time\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\" ]]
}

@test "watch in human form" {
	ctl_start
	ctl_wait_state svc ready
	timeout 20 "$FIBERSCTL" -S "$D/c.sock" watch >"$D/watch.out" 2>&1 3>&- &
	BG=$!
	for i in $(seq 100); do [ -s "$D/watch.out" ] && break; sleep 0.05; done
	run ctl stop svc
	for i in $(seq 100); do grep -q 'stopped' "$D/watch.out" && break; sleep 0.05; done
	mapfile -t ev <"$D/watch.out"
	[[ ${ev[0]} =~ ^[0-9T:.Z-]+\ svc\ \[[0-9]+\]:\ ready$ ]]
	[[ ${ev[1]} =~ ^[0-9T:.Z-]+\ svc\ \[[0-9]+\]:\ ready\ -\>\ stopping\ \(stop\)$ ]]
	[[ ${ev[2]} =~ ^[0-9T:.Z-]+\ svc:\ stopping\ -\>\ stopped\ \(stop\)$ ]]
}

@test "logs -n N shows the last lines; logs -f follows new ones; unknown task exits 3" {
	ctl_start
	fd_wait_log 'svc: tick 5'
	run ctl logs svc -n 2
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	[[ ${lines[0]} =~ ^[0-9T:.Z-]+\ info\ svc:\ tick\ [0-9]+$ ]]
	run ctl logs svc
	[ "$status" -eq 0 ]
	[[ ${lines[0]} =~ ^[0-9T:.Z-]+\ info\ svc:\ svc\ started$ ]]
	run ctl --json logs svc -n 1
	[[ $output == '{"lines":[{"level":"info","message":"tick '*'","t":'*',"task":"svc","time":"'*'"}],"t":'*',"task":"svc","time":"'* ]]
	timeout 20 "$FIBERSCTL" -S "$D/c.sock" logs svc -n 0 -f >"$D/follow.out" 2>&1 3>&- &
	BG=$!
	for i in $(seq 200); do grep -q tick "$D/follow.out" && break; sleep 0.05; done
	n1=$(grep -c tick "$D/follow.out" || true)
	for i in $(seq 200); do [ "$(grep -c tick "$D/follow.out")" -gt "$n1" ] && break; sleep 0.05; done
	n2=$(grep -c tick "$D/follow.out" || true)
	[ "$n1" -ge 1 ]
	[ "$n2" -gt "$n1" ]
	run ctl logs nope
	[ "$status" -eq 3 ]
	run ctl logs fibersd
	[ "$status" -eq 0 ]
	[[ $output == *"fibersd: fibersd "*" ready: 1 tasks"* ]]
}

@test "watch reports the scopes inside a task too" {
	fd_task job <<'EOF2'
local s = ...
local w = assert(s:child()); w:set_name('worker')
w:spawn(function() require('fibers.sleep').sleep(1000) end)
require('fibersd').ready()
require('fibers.sleep').sleep(1000)
EOF2
	ctl_start
	ctl_wait_state job ready
	timeout 20 "$FIBERSCTL" -S "$D/c.sock" watch >"$D/watch.out" 2>&1 3>&- &
	BG=$!
	for i in $(seq 100); do [ -s "$D/watch.out" ] && break; sleep 0.05; done
	run ctl cancel job/worker because
	[ "$status" -eq 0 ]
	for i in $(seq 100); do grep -q 'job/worker' "$D/watch.out" && break; sleep 0.05; done
	grep -Eq '^[0-9T:.Z-]+ job/worker \[[0-9]+\]: running -> cancelled \(because\)$' "$D/watch.out"
}
