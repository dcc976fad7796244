#!/usr/bin/env bats
# 025-guards.bats - the runaway guard (max_slice) and the per-task memory
# limit: the offending task fails (also when it pcalls), the daemon and a
# heartbeat task keep running; the per-task watchdog_sec fails a hung task.

load helpers

setup() { fd_setup; }
teardown() { fd_teardown; }

heartbeat() {
	fd_task heartbeat <<'EOF2'
local sleep = require 'fibers.sleep'
local n = 0
while true do n = n + 1; require('fibersd').log.info('beat %d', n); sleep.sleep(0.1) end
EOF2
}

# beats logged after the line matching $1
beats_after() { awk -v re="$1" 'found && /^<6>heartbeat: beat/ { n++ } $0 ~ re { found = 1 } END { print n + 0 }' "$D/log"; }
# wait until at least $2 beats followed the line matching $1
wait_beats_after() {
	local i
	for i in $(seq 200); do [ "$(beats_after "$1")" -ge "$2" ] && return 0; sleep 0.05; done
	return 1
}

@test "a task that never yields fails with the max_slice error, even through pcall" {
	heartbeat
	fd_task spin <<'EOF2'
local ok, err = pcall(function() while true do end end)
require('fibersd').log.info('swallowed? %s', tostring(err))
while true do end
EOF2
	fd_conf <<'EOF2'
[fibersd]
max_slice = 0.3
[defaults]
restart = no
EOF2
	fd_start
	fd_wait_log '^<3>spin: failed: task exceeded max_slice of 0.3s without yielding$'
	wait_beats_after 'spin: failed' 5
	# whatever the pcall saw, the task failed (once: restart = no)
	[ "$(fd_count 'spin: failed')" -eq 1 ]
}

@test "a pcall loop around a runaway cannot outrun the guard: the task fails" {
	heartbeat
	fd_task spin <<'EOF2'
while true do pcall(function() while true do end end) end
EOF2
	fd_conf <<'EOF2'
[fibersd]
max_slice = 0.3
[defaults]
restart = no
EOF2
	fd_start
	fd_wait_log '^<3>spin: failed: task exceeded max_slice of 0.3s without yielding$'
	wait_beats_after 'spin: failed' 3
	[ "$(fd_count 'spin: failed')" -eq 1 ]
}

@test "a doomed task unwinds by itself: failed promptly, finalisers run, no escaped error, not forced" {
	fd_task spin <<'EOF2'
local s = ...
local log = require('fibersd').log
local sleep = require 'fibers.sleep'
s:finally(function() log.info('finaliser ran') end)
s:spawn(function() sleep.sleep(1000) end)
sleep.sleep(0.05)
while true do pcall(function() while true do end end) end
EOF2
	fd_conf <<'EOF2'
[fibersd]
max_slice = 0.3
[defaults]
restart = no
stop_timeout = 60
EOF2
	fd_start
	fd_wait_log '^<3>spin: failed: task exceeded max_slice of 0.3s without yielding$'
	# the scope joined on its own (stop_timeout is 60 s: nothing was forced)
	fd_wait_log '^<6>spin: finaliser ran$' 5
	run timeout 10 "$FIBERSCTL" -S "$D/c.sock" status spin
	echo "$output"
	[ "$status" -eq 1 ]  # "a task is failed"
	[[ "$output" == *failed* ]]
	[[ "$output" == *"task exceeded max_slice of 0.3s without yielding"* ]]
	[[ "$output" != *forced* ]]
	[ "$(fd_count 'uncaught error')" -eq 0 ]
	[ "$(fd_count 'forced')" -eq 0 ]
	[ "$(fd_count 'spin: failed')" -eq 1 ]
}

@test "a memory bomb fails with 'not enough memory' at memory_limit, also through pcall" {
	heartbeat
	fd_task bomb <<'EOF2'
local t, i = {}, 0
while true do i = i + 1; t[i] = string.rep('x', 1000) .. i end
EOF2
	fd_task pbomb <<'EOF2'
local sleep = require 'fibers.sleep'
local ok, err = pcall(function()
  local t, i = {}, 0
  while true do i = i + 1; t[i] = string.rep('y', 1000) .. i; if i % 100 == 0 then sleep.sleep(0) end end
end)
require('fibersd').log.info('caught %s', tostring(err))
while true do sleep.sleep(0.01); local s = string.rep('z', 10000) end
EOF2
	fd_conf <<'EOF2'
[defaults]
restart = no
memory_limit = 4M
EOF2
	fd_start
	fd_wait_log '^<3>bomb: failed: not enough memory$'
	fd_wait_log '^<3>pbomb: failed: not enough memory$'
	grep -q '^<6>pbomb: caught not enough memory$' "$D/log"
	wait_beats_after 'pbomb: failed' 5
}

@test "watchdog_sec fails a task that stops calling fibersd.watchdog()" {
	fd_task hung <<'EOF2'
local fibersd = require 'fibersd'
local sleep = require 'fibers.sleep'
for i = 1, 5 do fibersd.watchdog(); sleep.sleep(0.1) end
fibersd.log.info('hanging now')
sleep.sleep(1000)
EOF2
	fd_conf <<'EOF2'
[defaults]
restart = no
watchdog_sec = 0.4
EOF2
	fd_start
	fd_wait_log '^<3>hung: failed: watchdog timeout$'
	grep -q 'hung: watchdog timeout (no fibersd.watchdog() for 0.4s)' "$D/log"
	# it was not killed while it still called watchdog() (5 x 0.1 s > 0.4 s)
	grep -q 'hung: hanging now' "$D/log"
}
