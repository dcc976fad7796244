#!/usr/bin/env bats
# 027-systemd.bats - systemd integration without systemd: socket activation
# through systemd-socket-activate, journald fields against a fake journal
# socket in a private mount namespace, the children's scrubbed environment.

load helpers

setup() { fd_setup; }
teardown() {
	[ -n "${ACT_PID:-}" ] && kill -TERM "$ACT_PID" 2>/dev/null
	fd_teardown
}

@test "socket activation: the passed control socket is adopted, none is bound" {
	fd_task beat <<'EOF2'
require('fibersd').ready()
while true do require('fibers.sleep').sleep(10) end
EOF2
	systemd-socket-activate -l "$D/act.sock" --fdname=control \
		"$FIBERSD" -c "$D/f.conf" -d "$D/t" -S "$D/c.sock" 3>&- </dev/null >>"$D/log" 2>&1 &
	ACT_PID=$!
	for i in $(seq 100); do [ -S "$D/act.sock" ] && break; sleep 0.05; done
	run timeout 10 "$FIBERSCTL" -S "$D/act.sock" version
	[ "$status" -eq 0 ]
	fd_wait_log 'adopted control socket \(fd 3, control\)'
	run timeout 10 "$FIBERSCTL" -S "$D/act.sock" --json status beat
	[ "$status" -eq 0 ]
	[[ "$output" == *'"state":"ready"'* ]]
	[ ! -e "$D/c.sock" ]
	kill -TERM "$ACT_PID"
	fd_wait_dead "$ACT_PID" 10
	ACT_PID=
	# an adopted socket is not ours to remove
	[ -S "$D/act.sock" ]
}

# the datagram (socat -v record) holding the line $1
record() {
	awk -v m="$1" '/^> / { if (hit) { printf "%s", r; exit } r = ""; next }
		{ r = r $0 "\n"; if ($0 == m) hit = 1 } END { if (hit) printf "%s", r }'
}

@test "journal: records carry PRIORITY, SYSLOG_IDENTIFIER, FIBERS_TASK, CHILD_PID" {
	fd_task beat <<'EOF2'
require('fibersd').log.notice('hello journal')
local exec = require 'fibers.exec'
require('fibers').perform(exec.command{ 'sh', '-c', 'echo child says hi' }:run_op())
EOF2
	cat >"$D/inner.sh" <<EOF2
set -eu
mkdir -p /run/systemd/journal
mount -t tmpfs tmpfs /run/systemd/journal
socat -u -v UNIX-RECV:/run/systemd/journal/socket /dev/null 2>"$D/journal.log" &
s=\$!
for i in \$(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
exec 2>"$D/stderr"
export JOURNAL_STREAM=\$(stat -L -c '%d:%i' /proc/self/fd/2)
"$FIBERSD" -c "$D/f.conf" -d "$D/t" -S "$D/c.sock" 3>&- </dev/null &
f=\$!
for i in \$(seq 100); do grep -q 'child says hi' "$D/journal.log" 2>/dev/null && break; sleep 0.05; done
kill -TERM \$f; wait \$f || true
kill \$s
EOF2
	run timeout 30 unshare -m bash "$D/inner.sh"
	[ "$status" -eq 0 ]
	j=$(tr -d '\r' <"$D/journal.log")
	# a task's MESSAGE starts with its name, as on stderr
	grep -q '^MESSAGE=beat: hello journal$' <<<"$j"
	# the fields of that record
	rec=$(record 'MESSAGE=beat: hello journal' <<<"$j")
	grep -qx 'PRIORITY=5' <<<"$rec"
	grep -qx 'SYSLOG_IDENTIFIER=fibersd' <<<"$rec"
	grep -qx 'FIBERS_TASK=beat' <<<"$rec"
	grep -qx 'FIBERS_SCOPE=beat' <<<"$rec"
	cmsg=$(grep -E '^MESSAGE=beat\[[0-9]+\]: child says hi$' <<<"$j")
	crec=$(record "$cmsg" <<<"$j")
	grep -qx 'FIBERS_TASK=beat' <<<"$crec"
	grep -qx 'FIBERS_STREAM=stdout' <<<"$crec"
	grep -Eqx 'CHILD_PID=[0-9]+' <<<"$crec"
	# nothing went to stderr as text
	! grep -q 'hello journal' "$D/stderr"
}

@test "children never see NOTIFY_SOCKET, WATCHDOG_*, LISTEN_*, JOURNAL_STREAM, INVOCATION_ID" {
	fd_task envdump <<EOF2
local exec = require 'fibers.exec'
require('fibers').perform(exec.command{ 'sh', '-c', 'env > $D/env; ulimit -Sn > $D/nofile' }:run_op())
EOF2
	fd_notify_listen
	INVOCATION_ID=abc WATCHDOG_USEC=0 JOURNAL_STREAM=1:1 FOO_KEEP=1 fd_start
	fd_wait_log 'envdump: exited'
	grep -q '^FOO_KEEP=1$' "$D/env"
	! grep -Eq '^(NOTIFY_SOCKET|WATCHDOG_|LISTEN_|JOURNAL_STREAM|INVOCATION_ID)' "$D/env"
	[ "$(cat "$D/nofile")" = 1024 ]
}

# datagrams in a socat -v log whose data starts with READY=1 or STATUS=
# (a header "> DATE HH:MM:SS.uuuuuu length=N" then the data, which has no
# newline, so the next header follows it on the same line)
status_datagrams() {
	awk '{ if (hdr && $0 ~ /^(READY=1|STATUS=)/) n++; hdr = ($0 ~ /> [0-9]+\/[0-9]+\/[0-9]+ [0-9:.]+ +length=/) }
		END { print n + 0 }' "$1"
}

@test "systemd watchdog: WATCHDOG=1 every half period; STATUS= at most every 100 ms" {
	fd_task churn <<'EOF2'
-- many state changes in a short time: restarts every few ms
error('churn', 0)
EOF2
	fd_conf <<'EOF2'
[task:churn]
restart_delay = 0.01
restart_max_delay = 0.01
restart_limit = 1000
EOF2
	fd_notify_listen
	# counts over a window measured by us: every datagram in the snapshot was
	# sent inside [t0, t1], so the throttles give exact upper bounds on the
	# counts however late the receiver or the daemon ran (loaded machine)
	t0=$(date +%s.%N)
	WATCHDOG_USEC=400000 fd_start
	fd_wait_ready
	local i
	for i in $(seq 400); do
		[ "$(grep -c '^WATCHDOG=1' "$D/notify.log")" -ge 6 ] &&
			[ "$(status_datagrams "$D/notify.log")" -ge 6 ] && break
		sleep 0.05
	done
	cp "$D/notify.log" "$D/snap"
	t1=$(date +%s.%N)
	pings=$(grep -c '^WATCHDOG=1' "$D/snap")
	nstat=$(status_datagrams "$D/snap")
	echo "window $t0 .. $t1: $pings pings, $nstat status datagrams"
	# pings and STATUS= keep coming (the churn changes the status all the time)
	[ "$pings" -ge 6 ] && [ "$nstat" -ge 6 ]
	# one ping per 0.2 s (+1 at start, +1 for sleep granularity); one STATUS=
	# per 0.1 s (+1 READY, +1): unthrottled, the churn would send hundreds
	awk -v a="$t0" -v b="$t1" -v p="$pings" -v s="$nstat" \
		'BEGIN { w = b - a; exit !(p <= int(w / 0.2) + 2 && s <= int(w / 0.1) + 2) }'
	grep -Eq '^STATUS=0 tasks running, 1 (in backoff|failed), 0 processes' "$D/snap"
}

@test "orphans adopted as subreaper are reaped and logged at notice" {
	fd_task orphaner <<EOF2
local exec = require 'fibers.exec'
require('fibers').perform(exec.command{ 'sh', '-c', '(sleep 0.3; exit 7) & echo \$! > $D/orphan.pid' }:run_op())
require('fibers.sleep').sleep(100)
EOF2
	fd_start
	for i in $(seq 100); do [ -s "$D/orphan.pid" ] && break; sleep 0.05; done
	pid=$(cat "$D/orphan.pid")
	fd_wait_log "^<5>fibersd\\[$pid\\]: reaped orphan pid $pid \\(exited 7\\)$"
}
