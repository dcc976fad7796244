#!/usr/bin/env bats
# 050-fibersctl-client.bats - fibersctl on its own, against a scripted fake
# control server (fixtures/control/fake-server.sh under socat): option and
# socket-path handling, the requests it sends, rendering, and every exit code.

FCTL="${top_builddir:-$BATS_TEST_DIRNAME/../..}/src/fibersctl/fibersctl"
FAKE="$BATS_TEST_DIRNAME/fixtures/control/fake-server.sh"

setup() {
	FAKE_DIR=$(mktemp -d /tmp/fctl.XXXXXX)
	export FAKE_DIR
	SOCK=$FAKE_DIR/s
	unset FIBERSD_SOCKET NO_COLOR
	socat UNIX-LISTEN:"$SOCK",fork EXEC:"$FAKE" 3>&- &
	SOCAT_PID=$!
	for _ in $(seq 100); do [[ -S $SOCK ]] && break; sleep 0.02; done
}

teardown() {
	kill "$SOCAT_PID" 2>/dev/null || true
	wait "$SOCAT_PID" 2>/dev/null || true
	rm -rf "$FAKE_DIR"
}

reply() { printf '%s\n' "$@" >"$FAKE_DIR/reply"; }
fctl() { timeout 20 "$FCTL" "$@"; }

@test "help lists every command and exits 0" {
	run fctl --help
	[ "$status" -eq 0 ]
	for c in status cancel start stop restart signal reload logs watch version; do
		[[ $output == *"  $c "* ]]
	done
	[[ $output == *"6 timeout"* ]]
}

@test "usage errors exit 2" {
	run fctl
	[ "$status" -eq 2 ]
	[[ $output == *"missing command"* ]]
	run fctl -S "$SOCK" frobnicate
	[ "$status" -eq 2 ]
	[[ $output == *"unknown command 'frobnicate'"* ]]
	run fctl -S "$SOCK" -t abc status
	[ "$status" -eq 2 ]
	run fctl -S "$SOCK" cancel
	[ "$status" -eq 2 ]
	[[ $output == *"missing SCOPE"* ]]
	run fctl -S "$SOCK" signal web
	[ "$status" -eq 2 ]
	run fctl -S "$SOCK" start a b
	[ "$status" -eq 2 ]
	[[ $output == *"too many arguments"* ]]
	run fctl -S "$SOCK" logs web -n x
	[ "$status" -eq 2 ]
	run fctl -S "$SOCK" status --bogus
	[ "$status" -eq 2 ]
	[[ $output == *"unknown option '--bogus'"* ]]
	[ ! -e "$FAKE_DIR/requests" ]
}

@test "daemon not running exits 5" {
	run fctl -S "$FAKE_DIR/nonexistent.sock" status
	[ "$status" -eq 5 ]
	[[ $output == *"cannot connect to $FAKE_DIR/nonexistent.sock"* ]]
	: >"$FAKE_DIR/plain"
	run fctl -S "$FAKE_DIR/plain" status
	[ "$status" -eq 5 ]
}

@test "socket path: -S over \$FIBERSD_SOCKET over -c config over default" {
	reply '{"id":1,"result":{"daemon":"fibersd","version":"9.9.9","protocol":1,"pid":42,"uptime":1}}'
	FIBERSD_SOCKET=$SOCK run fctl version
	[ "$status" -eq 0 ]
	[[ $output == *"fibersd 9.9.9 (protocol 1, pid 42"* ]]
	FIBERSD_SOCKET=$FAKE_DIR/nope run fctl -S "$SOCK" version
	[ "$status" -eq 0 ]
	printf '[fibersd]\ncontrol_socket = %s ; comment\n[defaults]\nrestart = no\n' "$SOCK" >"$FAKE_DIR/c.conf"
	run fctl -c "$FAKE_DIR/c.conf" version
	[ "$status" -eq 0 ]
	FIBERSD_SOCKET=$FAKE_DIR/nope run fctl -c "$FAKE_DIR/c.conf" version
	[ "$status" -eq 5 ]
	[[ $output == *"$FAKE_DIR/nope"* ]]
	run fctl -c "$FAKE_DIR/missing.conf" version
	[ "$status" -eq 2 ]
	[[ $output == *"cannot read config $FAKE_DIR/missing.conf"* ]]
	printf '[fibersd]\nlog_level = info\n' >"$FAKE_DIR/d.conf"
	run fctl -c "$FAKE_DIR/d.conf" version
	[ "$status" -eq 5 ]
	[[ $output == *"/run/fibersd/control.sock"* ]]
}

@test "status renders a tree and exits 1 when a task failed" {
	reply '{"id":1,"result":{"version":"9.9.9","pid":42,"uptime":3700,"counts":{"tasks":2,"running":1,"failed":1,"processes":2},"tasks":[{"name":"web","path":"web","id":17,"file":"/t/web.lua","state":"running","ready":true,"uptime":12.5,"restarts":0,"memory":123456,"fibers":2,"children":[{"name":"worker","path":"web/worker","id":18,"state":"running","fibers":1,"uptime":3,"children":[],"commands":[{"pid":1234,"argv":["sleep","100"],"state":"running","uptime":3}]}],"commands":[{"pid":1235,"argv":["sh","-c","x"],"state":"exited","exit":0}]},{"name":"db","path":"db","file":"/t/db.lua","state":"failed","restarts":3,"last_error":"db.lua:3: boom","extra_errors":["later"],"children":[],"commands":[]}]}}'
	run fctl -S "$SOCK" status
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "fibersd 9.9.9, pid 42, up 1h 1min; 2 tasks: 1 running, 1 failed; 2 processes" ]
	[ "${lines[1]}" = "● web [17]: running (ready), up 12s, restarts 0, memory 120.6K" ]
	[ "${lines[2]}" = "    file: /t/web.lua" ]
	[ "${lines[3]}" = "    ├─ worker [18]: running, 1 fiber, up 3.0s" ]
	[ "${lines[4]}" = "    │  └─ pid 1234: sleep 100 (running, up 3.0s)" ]
	[ "${lines[5]}" = "    └─ pid 1235: sh -c x (exited 0)" ]
	[ "${lines[6]}" = "× db: failed, restarts 3" ]
	[ "${lines[8]}" = "    last error: db.lua:3: boom" ]
	[ "${lines[9]}" = "    also: later" ]
	[[ $output != *$'\033'* ]]
	run fctl -S "$SOCK" --json status
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ ${lines[0]} == '{"version":"9.9.9","pid":42,"uptime":3700,"counts":'* ]]
	# the table asks for the brief form (a daemon that ignores it sends all)
	[ "$(head -1 "$FAKE_DIR/requests")" = '{"id":1,"method":"status","params":{"brief":true}}' ]
	[ "$(tail -1 "$FAKE_DIR/requests")" = '{"id":1,"method":"status","params":{}}' ]
}

@test "status of a healthy daemon exits 0; SCOPE and depth are sent" {
	reply '{"id":1,"result":{"path":"web/worker","id":18,"name":"worker","state":"running","fibers":1,"uptime":2,"children":[],"commands":[]}}'
	run fctl -S "$SOCK" status web/worker -d 2
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "● web/worker [18]: running, up 2.0s, 1 fiber" ]
	[ "$(cat "$FAKE_DIR/requests")" = '{"id":1,"method":"status","params":{"depth":2,"scope":"web/worker"}}' ]
}

@test "status exits 0 only when every task is running, ready, stopped, disabled or exited cleanly" {
	t() { printf '{"name":"%s","path":"%s","file":"/t/%s.lua","state":"%s"%s,"restarts":0}' "$1" "$1" "$1" "$2" "${3:-}"; }
	whole() { reply "{\"id\":1,\"result\":{\"version\":\"1\",\"pid\":1,\"uptime\":1,\"counts\":{},\"tasks\":[$1]}}"; }
	whole "$(t a running),$(t b ready),$(t c stopped),$(t d disabled),$(t e exited ',"last_exit":"exited"')"
	run fctl -S "$SOCK" status
	[ "$status" -eq 0 ]
	for bad in loading stopping backoff failed fatal; do
		whole "$(t a ready),$(t b "$bad")"
		run fctl -S "$SOCK" status
		[ "$status" -eq 1 ] || { echo "state $bad: exit $status" >&2; false; }
		run fctl -S "$SOCK" --json status
		[ "$status" -eq 1 ]
	done
	# an exit with an error
	whole "$(t a exited ',"last_exit":"exited: gave up"')"
	run fctl -S "$SOCK" status
	[ "$status" -eq 1 ]
	# one task, addressed: the same rule
	reply "{\"id\":1,\"result\":$(t web backoff ',"next_restart_in":1.5')}"
	run fctl -S "$SOCK" status web
	[ "$status" -eq 1 ]
	# without colour, backoff has its own symbol, and the state word
	[ "${lines[0]}" = "↻ web: backoff (restart in 1.5s), restarts 0" ]
	reply "{\"id\":1,\"result\":$(t web ready)}"
	run fctl -S "$SOCK" status web
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "● web: ready, restarts 0" ]
}

@test "global options are accepted anywhere on the command line" {
	reply '{"id":1,"result":{"task":"web","state":"stopped"}}'
	run fctl stop web -S "$SOCK" --json
	[ "$status" -eq 0 ]
	[ "$output" = '{"task":"web","state":"stopped"}' ]
	run fctl stop -t 5 web --socket="$SOCK"
	[ "$status" -eq 0 ]
	[ "$output" = "web: stopped" ]
	run fctl --json stop web -S "$SOCK"
	[ "$status" -eq 0 ]
	[ "$output" = '{"task":"web","state":"stopped"}' ]
	# after --, everything is an argument
	run fctl -S "$SOCK" stop -- --json
	[ "$status" -eq 0 ]
	mapfile -t req <"$FAKE_DIR/requests"
	[ "${req[0]}" = '{"id":1,"method":"stop","params":{"task":"web","timeout":9.0}}' ]
	[ "${req[1]}" = '{"id":1,"method":"stop","params":{"task":"web","timeout":4.5}}' ]
	[ "${req[3]}" = '{"id":1,"method":"stop","params":{"task":"--json","timeout":9.0}}' ]
	# a global option still needs its value
	run fctl stop web -S
	[ "$status" -eq 2 ]
	run fctl status -h
	[ "$status" -eq 0 ]
	[[ "$output" == Usage:* ]]
}

@test "logs -f asks for the last 10 lines, then follows; -n sets how many" {
	reply '{"id":1,"result":{"task":"web","lines":[]}}'
	run fctl -S "$SOCK" logs web -f
	run fctl -S "$SOCK" logs -n 3 web -f
	run fctl -S "$SOCK" logs web
	mapfile -t req <"$FAKE_DIR/requests"
	[ "${req[0]}" = '{"id":1,"method":"logs","params":{"follow":true,"task":"web","lines":10}}' ]
	[ "${req[1]}" = '{"id":1,"method":"logs","params":{"lines":3,"follow":true,"task":"web"}}' ]
	[ "${req[2]}" = '{"id":1,"method":"logs","params":{"task":"web"}}' ]
}

@test "requests carry the command's params" {
	reply '{"id":1,"result":{"task":"web","state":"stopped"}}'
	run fctl -S "$SOCK" -t 5 stop web
	[ "$status" -eq 0 ]
	[ "$output" = "web: stopped" ]
	run fctl -S "$SOCK" -t 5 cancel web/7 "because" --no-wait
	run fctl -S "$SOCK" signal web HUP
	run fctl -S "$SOCK" logs web -n 5 -f
	run fctl -S "$SOCK" reload
	mapfile -t req <"$FAKE_DIR/requests"
	[ "${req[0]}" = '{"id":1,"method":"stop","params":{"task":"web","timeout":4.5}}' ]
	[ "${req[1]}" = '{"id":1,"method":"cancel","params":{"wait":false,"scope":"web/7","reason":"because","timeout":4.5}}' ]
	[ "${req[2]}" = '{"id":1,"method":"signal","params":{"scope":"web","sig":"HUP"}}' ]
	[ "${req[3]}" = '{"id":1,"method":"logs","params":{"lines":5,"follow":true,"task":"web"}}' ]
	[ "${req[4]}" = '{"id":1,"method":"reload","params":{}}' ]
}

@test "error replies map to exit codes" {
	reply '{"id":1,"error":{"code":"not_found","message":"no scope '\''web/9'\''"}}'
	run fctl -S "$SOCK" status web/9
	[ "$status" -eq 3 ]
	[ "$output" = "fibersctl: no scope 'web/9' (not_found)" ]
	reply '{"id":1,"error":{"code":"permission_denied","message":"read-only peer"}}'
	run fctl -S "$SOCK" stop web
	[ "$status" -eq 4 ]
	reply '{"id":1,"error":{"code":"timeout","message":"still joining"}}'
	run fctl -S "$SOCK" cancel web
	[ "$status" -eq 6 ]
	reply '{"id":1,"error":{"code":"failed","message":"nope"}}'
	run fctl -S "$SOCK" start web
	[ "$status" -eq 1 ]
	reply '{"id":1,"error":{"code":"bad_request","message":"unknown signal '\''FOO'\''"}}'
	run fctl -S "$SOCK" signal web FOO
	[ "$status" -eq 2 ]
	reply '{"id":1,"error":{"code":"ambiguous","message":"two scopes","ids":[4,9]}}'
	run fctl -S "$SOCK" status web/x
	[ "$status" -eq 3 ]
	[ "${lines[1]}" = "fibersctl: candidates: 4 9" ]
}

@test "greeting: refusal, busy and protocol mismatch" {
	echo '{"error":{"code":"permission_denied","message":"peer uid 1000 is in neither group"}}' >"$FAKE_DIR/hello"
	run fctl -S "$SOCK" status
	[ "$status" -eq 4 ]
	[[ $output == *"neither group"* ]]
	echo '{"error":{"code":"busy","message":"too many clients"}}' >"$FAKE_DIR/hello"
	run fctl -S "$SOCK" status
	[ "$status" -eq 1 ]
	echo '{"hello":{"daemon":"fibersd","version":"9","protocol":2,"role":"admin"}}' >"$FAKE_DIR/hello"
	run fctl -S "$SOCK" status
	[ "$status" -eq 5 ]
	[ "$output" = "fibersctl: protocol mismatch: fibersd speaks protocol 2, this fibersctl speaks 1" ]
	echo 'SSH-2.0-OpenSSH' >"$FAKE_DIR/hello"
	run fctl -S "$SOCK" status
	[ "$status" -eq 1 ]
	[[ $output == *"bad reply from fibersd"* ]]
}

@test "no reply within -t exits 6; early close exits 5" {
	echo 5 >"$FAKE_DIR/hold"
	SECONDS=0
	run fctl -S "$SOCK" -t 0.5 status
	[ "$status" -eq 6 ]
	[ "$SECONDS" -le 3 ]
	rm "$FAKE_DIR/hold"
	: >"$FAKE_DIR/close-after-hello"
	run fctl -S "$SOCK" status
	[ "$status" -eq 5 ]
	[[ $output == *"connection closed by fibersd"* ]]
}

@test "streams: watch prints each record until the final reply" {
	reply '{"id":1,"result":{"event":"snapshot","t":1,"time":"T0","tasks":[{"name":"web","path":"web","id":3,"state":"running"}]},"continues":true}' \
		'{"id":9,"result":{"ignored":true}}' \
		'{"id":1,"result":{"event":"state","scope":"web","id":3,"from":"running","to":"backoff","reason":"boom","t":2,"time":"T1"},"continues":true}' \
		'{"id":1,"result":{"event":"end"}}'
	echo 2 >"$FAKE_DIR/hold"
	run fctl -S "$SOCK" -t 0.5 watch
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "T0 web [3]: running" ]
	[ "${lines[1]}" = "T1 web [3]: running -> backoff (boom)" ]
	run fctl -S "$SOCK" --json watch
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 3 ]
	[ "${lines[2]}" = '{"event":"end"}' ]
}

@test "logs render records; a stream cut by the daemon exits 5" {
	reply '{"id":1,"result":{"task":"web","lines":[{"t":1,"time":"T0","level":"info","task":"web","message":"hello"},{"t":2,"time":"T1","level":"notice","task":"web","pid":77,"stream":"stdout","message":"out"}]},"continues":true}'
	run fctl -S "$SOCK" logs web -f
	[ "$status" -eq 5 ]
	[ "${lines[0]}" = "T0 info web: hello" ]
	[ "${lines[1]}" = "T1 notice web[77 stdout]: out" ]
}

@test "a 4 MiB reply is accepted" {
	big=$(head -c 4194304 /dev/zero | tr '\0' 'x')
	printf '{"id":1,"result":{"task":"web","lines":[{"time":"T","level":"info","message":"%s"}]}}\n' "$big" >"$FAKE_DIR/reply"
	run fctl -S "$SOCK" logs web
	[ "$status" -eq 0 ]
	[ "${#output}" -gt 4194304 ]
}

@test "reload lists the diff and exits 1 on errors" {
	reply '{"id":1,"result":{"added":["a"],"removed":[],"changed":["b","c"],"unchanged":["d"],"warnings":["control_socket needs a daemon restart"],"errors":[{"task":"c","message":"c.lua:1: syntax"}]}}'
	run fctl -S "$SOCK" reload
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "added: a" ]
	[ "${lines[1]}" = "removed: -" ]
	[ "${lines[2]}" = "changed: b c" ]
	[ "${lines[4]}" = "warning: control_socket needs a daemon restart" ]
	[ "${lines[5]}" = "error: c.lua:1: syntax" ]
	run fctl -S "$SOCK" --json reload
	[ "$status" -eq 1 ]
}
