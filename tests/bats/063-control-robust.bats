#!/usr/bin/env bats
# 063-control-robust.bats - control socket faults (doc/quality.md §3): bad JSON,
# unknown method, missing params, a 1 MiB line, binary garbage, a client that
# disconnects mid-request, 200 clients at once (64 served, the rest `busy`),
# a client that never reads its replies, a stream nobody reads — the daemon
# keeps answering everyone else.

load fixtures/control/ctl

CLIENTS="$BATS_TEST_DIRNAME/fixtures/control/clients.lua"

setup() {
	fd_setup
	fd_task svc <<'EOF2'
require('fibersd').ready()
require('fibers.sleep').sleep(1000)
EOF2
}
teardown() {
	[ -n "${BG:-}" ] && kill "$BG" 2>/dev/null
	fd_teardown
}

lua_run() { timeout 60 "${LUA_RUNNER:-lua5.4}" "$@"; }

@test "bad JSON, unknown method and bad params get error replies on the same connection" {
	ctl_start
	run ctl_raw '{"id":1,"method":' '{"id":2,"method":"frob"}' '[1,2]' '{"id":3,"method":"cancel"}' \
		'{"id":4,"method":"stop","params":[]}' '{"id":5,"method":"status","params":{"depth":-1}}' \
		'{"id":6,"method":"logs","params":{"task":true}}' '{"id":"x","method":"version","extra":1}'
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == '{"hello":{"daemon":"fibersd","protocol":1,"role":"admin","version":"'* ]]
	[[ ${lines[1]} == '{"error":{"code":"bad_request","message":"bad JSON: '* ]]
	[ "${lines[2]}" = '{"error":{"code":"unknown_method","message":"unknown method '\''frob'\''"},"id":2}' ]
	[ "${lines[3]}" = '{"error":{"code":"bad_request","message":"a request must be a JSON object"}}' ]
	[ "${lines[4]}" = '{"error":{"code":"bad_request","message":"missing scope"},"id":3}' ]
	[ "${lines[5]}" = '{"error":{"code":"bad_request","message":"params must be a JSON object"},"id":4}' ]
	[[ ${lines[6]} == '{"error":{"code":"bad_request","message":"depth must be a number in [0, '*'"id":5}' ]]
	[ "${lines[7]}" = '{"error":{"code":"bad_request","message":"task must be a string"},"id":6}' ]
	[[ ${lines[8]} == '{"id":"x","result":{"daemon":"fibersd",'* ]]
	run ctl status
	[ "$status" -eq 0 ]
}

@test "a 1 MiB line gets an error and the connection is closed; garbage and half requests do no harm" {
	ctl_start
	run lua_run "$CLIENTS" "$D/c.sock" long 1048576
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	[ "${lines[1]}" = '{"error":{"code":"bad_request","message":"request line longer than 65536 bytes"}}' ]
	head -c 200000 /dev/urandom | timeout 10 socat -t 2 - UNIX-CONNECT:"$D/c.sock" >/dev/null || true
	printf '{"id":1,"meth' | timeout 10 socat -t 0.2 - UNIX-CONNECT:"$D/c.sock" >/dev/null || true
	run ctl status
	[ "$status" -eq 0 ]
	! fd_dead "$FD_PID"
}

@test "200 clients at once: 64 are served, the others get busy; then all is normal" {
	ctl_start
	run lua_run "$CLIENTS" "$D/c.sock" many 200
	[ "$status" -eq 0 ]
	[ "$output" = "hello=64 busy=136 other=0" ]
	run ctl status
	[ "$status" -eq 0 ]
}

@test "8 slots stay reserved for admin peers" {
	sed -i -e 's/^control_group = 0$/control_group = 4242/' -e 's/^admin_group = 0$/admin_group = 4343/' \
		-e 's/^\[fibersd\]$/[fibersd]\ncontrol_mode = 0666/' "$D/f.conf"
	ctl_start
	run timeout 60 setpriv --reuid=1000 --regid=1000 --groups=4242 \
		env LUA_PATH="$LUA_PATH" LUA_CPATH="$LUA_CPATH" "${LUA_RUNNER:-lua5.4}" "$CLIENTS" "$D/c.sock" many 60
	[ "$status" -eq 0 ]
	[ "$output" = "hello=56 busy=4 other=0" ]
}

@test "a client that never reads does not delay anyone else" {
	ctl_start
	lua_run "$CLIENTS" "$D/c.sock" flood 100000 >"$D/flood.out" 2>&1 3>&- &
	BG=$!
	for i in $(seq 100); do grep -q flooding "$D/flood.out" && break; sleep 0.05; done
	grep -q flooding "$D/flood.out"
	SECONDS=0
	for i in 1 2 3; do
		run ctl -t 3 status
		[ "$status" -eq 0 ]
	done
	[ "$SECONDS" -le 5 ] # milliseconds each when nobody is delayed; 2 s of slack
	run ctl stop svc
	[ "$status" -eq 0 ]
}

@test "a stream whose reader is stuck is dropped past 1 MiB unsent" {
	fd_task chatty <<'EOF2'
local sleep = require 'fibers.sleep'
local line = string.rep('y', 1000)
while true do
  for _ = 1, 200 do print(line) end
  sleep.sleep(0.01)
end
EOF2
	ctl_start
	# follow the logs, never read a byte
	lua_run "$CLIENTS" "$D/c.sock" stuck '{"id":1,"method":"logs","params":{"task":"chatty","follow":true}}' \
		>"$D/stuck.out" 2>&1 3>&- &
	BG=$!
	fd_wait_log 'control: dropped stream of pid [0-9]+: more than 1048576 bytes unsent' 20
	run ctl status svc
	[ "$status" -eq 0 ]
}

@test "idle connections are closed after control_idle; watch streams are not" {
	sed -i 's/^\[fibersd\]$/[fibersd]\ncontrol_idle = 0.5/' "$D/f.conf"
	ctl_start
	timeout 20 "$FIBERSCTL" -S "$D/c.sock" watch >"$D/watch.out" 2>&1 3>&- &
	BG=$!
	run lua_run "$CLIENTS" "$D/c.sock" idle
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == '{"hello":'* ]]
	ms=${lines[1]#closed after }
	ms=${ms% ms}
	[ "$ms" -ge 500 ]
	[ "$ms" -lt 3000 ]
	kill -0 "$BG"
	run ctl stop svc
	[ "$status" -eq 0 ]
	for i in $(seq 100); do grep -q 'stopping -> stopped' "$D/watch.out" && break; sleep 0.05; done
	grep -q 'svc: stopping -> stopped (stop)' "$D/watch.out"
}

@test "fd exhaustion: accept reports it once, does not spin, and recovers" {
	# the daemon raises its soft limit to the hard one: lower the hard limit
	( ulimit -n 48 && ctl_start )
	FD_PID=$(pgrep -n -f -- "-S $D/c.sock")
	cpu0=$(awk '{print $14+$15}' "/proc/$FD_PID/stat")
	run lua_run "$CLIENTS" "$D/c.sock" hold 60 2
	[ "$status" -eq 0 ]
	h=${output#hello=}
	[ "$h" -gt 0 ]
	[ "$h" -lt 60 ]
	cpu1=$(awk '{print $14+$15}' "/proc/$FD_PID/stat")
	[ $((cpu1 - cpu0)) -lt 100 ] # under 1 s of CPU in those 2 s: no spinning
	[ "$(fd_count 'control: accept failed: .*[Tt]oo many open files')" -eq 1 ]
	run ctl status
	[ "$status" -eq 0 ]
}
