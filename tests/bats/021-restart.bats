#!/usr/bin/env bats
# 021-restart.bats - restart policy: backoff doubling with jitter bounds,
# the restart limit (state fatal with the last error), restart = always,
# the backoff reset after a long run, restart_delay = 0.

load helpers

setup() { fd_setup; }
teardown() { fd_teardown; }

# delays logged as "restarting in X s (restart N)", one per line
delays() { sed -n "s/^<5>$1: restarting in \([0-9.]*\)s (restart [0-9]*)$/\1/p" "$D/log"; }
# awk check: lo <= x <= hi
within() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'; }

@test "failures back off from restart_delay, doubling to restart_max_delay, then fatal" {
	fd_task crash <<'EOF2'
local fibers = require 'fibers'
require('fibersd').log.info('start %.3f', fibers.now())
error('boom at ' .. string.format('%.3f', fibers.now()), 0)
EOF2
	fd_conf <<'EOF2'
[defaults]
restart_delay = 0.2
restart_max_delay = 0.5
restart_limit = 4
restart_window = 60
EOF2
	fd_start
	fd_wait_log 'crash: more than 4 restarts within 60s: giving up \(fatal\); last error: boom at' 20
	mapfile -t d < <(delays crash)
	[ "${#d[@]}" -eq 4 ]
	within "${d[0]}" 0.16 0.24
	within "${d[1]}" 0.32 0.48
	within "${d[2]}" 0.40 0.60
	within "${d[3]}" 0.40 0.60
	[ "$(fd_count '^<6>crash: start')" -eq 5 ]
	# the gaps between starts are at least the logged delays (lower bound exact)
	mapfile -t s < <(sed -n 's/^<6>crash: start \([0-9.]*\)$/\1/p' "$D/log")
	for i in 0 1 2 3; do
		gap=$(awk -v a="${s[$i]}" -v b="${s[$((i + 1))]}" 'BEGIN { print b - a }')
		within "$gap" "$(awk -v x="${d[$i]}" 'BEGIN { print x - 0.002 }')" "$(awk -v x="${d[$i]}" 'BEGIN { print x + 2 }')"
	done
	# last error is the fifth failure's message
	last=$(sed -n 's/^<3>crash: failed: \(boom at .*\)$/\1/p' "$D/log" | tail -n 1)
	grep -qF "giving up (fatal); last error: $last" "$D/log"
	sleep 0.7
	[ "$(fd_count '^<6>crash: start')" -eq 5 ]
}

@test "restart = always restarts clean exits after restart_delay without doubling" {
	fd_task tick <<'EOF2'
require('fibersd').log.info('tick')
EOF2
	fd_conf <<'EOF2'
[task:tick]
restart = always
restart_delay = 0.1
restart_limit = 3
EOF2
	fd_start
	fd_wait_log 'tick: more than 3 restarts within 60s: giving up \(fatal\)' 10
	mapfile -t d < <(delays tick)
	[ "${#d[@]}" -eq 3 ]
	for x in "${d[@]}"; do within "$x" 0.08 0.12; done
	[ "$(fd_count '^<6>tick: tick$')" -eq 4 ]
	[ "$(fd_count '^<6>tick: exited$')" -eq 4 ]
}

@test "the backoff resets once a run lasted restart_window" {
	fd_task long <<EOF2
local sleep = require 'fibers.sleep'
local f = io.open('$D/count', 'a+'); local n = #f:read('a') + 1; f:write('x'); f:close()
if n == 3 then sleep.sleep(0.7) end
error('run ' .. n, 0)
EOF2
	fd_conf <<'EOF2'
[defaults]
restart_delay = 0.1
restart_window = 0.5
restart_limit = 10
EOF2
	fd_start
	fd_wait_log 'long: restarting in .* \(restart 3\)'
	mapfile -t d < <(delays long)
	within "${d[0]}" 0.08 0.12
	within "${d[1]}" 0.16 0.24
	within "${d[2]}" 0.08 0.12
}

@test "restart_delay = 0 restarts at once and a task on restart = no is left failed" {
	fd_task quick <<'EOF2'
local fibers = require 'fibers'
require('fibersd').log.info('start %.6f', fibers.now())
error('quick', 0)
EOF2
	fd_task once <<'EOF2'
error('once', 0)
EOF2
	fd_conf <<'EOF2'
[defaults]
restart_delay = 0
restart_limit = 3
[task:once]
restart = no
EOF2
	fd_start
	fd_wait_log 'quick: more than 3 restarts'
	fd_wait_log 'once: failed: once'
	[ "$(fd_count '^<6>quick: start')" -eq 4 ]
	! grep -q 'quick: restarting in' "$D/log"
	mapfile -t s < <(sed -n 's/^<6>quick: start \([0-9.]*\)$/\1/p' "$D/log")
	within "$(awk -v a="${s[0]}" -v b="${s[3]}" 'BEGIN { print b - a }')" 0 2
	[ "$(fd_count 'once: failed')" -eq 1 ]
}
