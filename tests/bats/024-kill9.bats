#!/usr/bin/env bats
# 024-kill9.bats - `kill -9` of fibersd leaves no child running (children
# carry a parent-death SIGKILL), and the next fibersd replaces the stale
# control socket.  Runs under a PID-namespace reaper, as the test machine's
# PID 1 does not reap orphans.

load helpers

setup() { fd_setup; }
teardown() { fd_teardown; }

@test "kill -9 of fibersd: none of its children is alive 2 s later" {
	for i in 1 2 3 4; do
		fd_task "c$i" <<EOF2
local exec = require 'fibers.exec'
local cmd = exec.command{ 'sh', '-c', 'trap "" TERM; echo \$\$ > $D/c$i.pid; exec sleep 1000' }
require('fibers').perform(cmd:run_op())
EOF2
	done
	cat >"$D/inner.sh" <<EOF2
set -u
"$FIBERSD" -c "$D/f.conf" -d "$D/t" -S "$D/c.sock" 3>&- </dev/null >>"$D/log" 2>&1 &
fd=\$!
for i in \$(seq 200); do [ \$(cat $D/c*.pid 2>/dev/null | wc -l) -eq 4 ] && break; sleep 0.05; done
pids=\$(cat $D/c*.pid)
[ \$(echo \$pids | wc -w) -eq 4 ] || { echo "children did not start"; exit 2; }
for p in \$pids; do kill -0 \$p || { echo "child \$p not running"; exit 3; }; done
kill -9 \$fd; wait \$fd 2>/dev/null
# the bar is "none alive 2 s later": poll for up to 2 s + 2 s of slack
for i in \$(seq 80); do
	alive=0
	for p in \$pids; do
		if [ -e /proc/\$p ] && [ "\$(awk '/^State:/ {print \$2}' /proc/\$p/status)" != Z ]; then alive=\$((alive + 1)); fi
	done
	[ \$alive -eq 0 ] && break
	sleep 0.05
done
echo "alive=\$alive"
EOF2
	run timeout 30 unshare --fork --pid --mount-proc bash "$D/inner.sh"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "alive=0" ]
	# a new daemon takes over the stale socket file
	[ -S "$D/c.sock" ]
	fd_start
	fd_wait_log 'fibersd .* ready:'
	! grep -q 'in use' "$D/log"
}
