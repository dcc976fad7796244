#!/usr/bin/env bats
# 091-attacks.bats - one task must never take the daemon down: C buffers
# charged to memory_limit, the task sandbox (require, package.loaded,
# debug.getregistry, file handles), the runaway guard, memory released
# after a failed run, trust of everything that runs as root, start-up with
# few fds and signals, control clients that never read.  The daemon must
# stay up and answer `fibersctl status` within a generous bound throughout.
# (The item -> test map is doc/faults.md.)

load helpers

setup() { fd_setup; }
teardown() { fd_teardown; }

ctl() { timeout 20 "$FIBERSCTL" -S "$D/c.sock" "$@"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# status answers within 1 s (generous: the bound of the acceptance is 1 s)
status_answers() {
	local t0 t1 rc=0
	t0=$(date +%s%N)
	timeout 5 "$FIBERSCTL" -S "$D/c.sock" status >/dev/null || rc=$?
	t1=$(date +%s%N)
	[ "$rc" -le 1 ] || return 1
	[ $(( (t1 - t0) / 1000000 )) -lt 1000 ]
}

@test "stream buffers count against memory_limit: output_op on yes and a line without newline fail the task, not the daemon" {
	fd_task yesout <<'EOF2'
local fibers, exec = require 'fibers', require 'fibers.exec'
local out, st, code, sig, err = fibers.perform(exec.command('yes'):output_op({ max = math.huge }))
require('fibersd').log.info('yesout returned %s %s', tostring(out and #out), tostring(err))
EOF2
	fd_task noline <<'EOF2'
local fibers, exec = require 'fibers', require 'fibers.exec'
local cmd = exec.command('sh', '-c', 'while :; do printf xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done')
cmd:set_stdout('pipe')
local out = cmd:stdout_stream()
local line, err = fibers.perform(out:read_line_op({ max = math.huge }))
require('fibersd').log.info('noline returned %s %s', tostring(line and #line), tostring(err))
EOF2
	fd_conf <<'EOF2'
[defaults]
restart = no
memory_limit = 8M
EOF2
	fd_start
	fd_wait_log '^<3>yesout: failed: not enough memory \(stream buffers past memory_limit\)$' 20
	fd_wait_log '^<3>noline: failed: not enough memory \(stream buffers past memory_limit\)$' 20
	status_answers
	# within 2 x memory_limit + 50 MB
	[ "$(rss_kb "$FD_PID")" -lt $(( 2 * 8 * 1024 + 50 * 1024 )) ]
	run ctl --json status yesout
	[[ "$output" == *'"state":"failed"'* ]]
	[[ "$output" == *'"last_error":"not enough memory (stream buffers past memory_limit)"'* ]]
}
