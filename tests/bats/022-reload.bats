#!/usr/bin/env bats
# 022-reload.bats - SIGHUP reload: the task dir is rediffed by content hash
# (added / removed / changed / unchanged / errors), a changed file that does
# not compile leaves the old version running, enabled = no disables, params
# count as a change, restart policy applies live, a bad config is kept out.

load helpers

setup() { fd_setup; }
teardown() { fd_teardown; }

forever() {
	fd_task "$1" <<EOF2
require('fibersd').log.info('$1 $2 start')
while true do require('fibers.sleep').sleep(10) end
EOF2
}

@test "reload starts new files, stops removed ones, replaces changed ones, keeps the rest" {
	forever keep v1
	forever change v1
	forever gone v1
	forever brokenchange v1
	fd_notify_listen
	fd_start
	fd_wait_ready
	fd_wait_log 'brokenchange v1 start'
	forever change v2
	rm "$D/t/gone.lua"
	forever added v1
	printf 'local x = = 1\n' >"$D/t/brokennew.lua"
	printf 'require("fibersd").log.info("v2")\nlocal y = = 2\n' >"$D/t/brokenchange.lua"
	touch "$D/t/keep.lua" # same content: not a change
	kill -HUP "$FD_PID"
	fd_wait_log 'reloaded: 2 added, 1 removed, 1 changed, 1 unchanged, 1 kept, 2 errors'
	fd_wait_log 'change v2 start'
	fd_wait_log 'added v1 start'
	fd_wait_log '^<6>gone: stopped \(reload\)$'
	grep -q '^<6>change: stopped (reload)$' "$D/log"
	grep -qF "<3>brokenchange: not reloaded, the old version keeps running: $D/t/brokenchange.lua:2: unexpected symbol near '='" "$D/log"
	grep -qF "<3>brokennew: $D/t/brokennew.lua:1: unexpected symbol near '='" "$D/log"
	[ "$(fd_count 'keep v1 start')" -eq 1 ]
	[ "$(fd_count 'brokenchange v1 start')" -eq 1 ]
	! grep -q 'brokenchange: stopped' "$D/log"
	# the old change stopped before the new one started
	[ "$(grep -n 'change: stopped (reload)' "$D/log" | cut -d: -f1)" -lt "$(grep -n 'change v2 start' "$D/log" | cut -d: -f1)" ]
	# RELOADING=1 with MONOTONIC_USEC, then READY=1 again
	grep -q '^RELOADING=1$' "$D/notify.log"
	grep -Eq '^MONOTONIC_USEC=[0-9]+' "$D/notify.log"
	[ "$(grep -c '^READY=1' "$D/notify.log")" -eq 2 ]
}

@test "reload: enabled = no disables, params changes restart, policy keys apply live" {
	forever off v1
	fd_task p <<'EOF2'
local _, task = ...
require('fibersd').log.info('colour %s', task.params.colour)
while true do require('fibers.sleep').sleep(10) end
EOF2
	fd_task crash <<'EOF2'
require('fibersd').log.info('crash run')
require('fibers.sleep').sleep(0.3)
error('crash', 0)
EOF2
	fd_conf <<'EOF2'
[task:p]
param.colour = red
[task:crash]
restart = on-failure
restart_delay = 0.1
restart_limit = 100
EOF2
	fd_start
	fd_wait_log 'colour red'
	fd_wait_log 'crash: restarting in'
	sed -i 's/param.colour = red/param.colour = green/; s/restart = on-failure/restart = no/' "$D/f.conf"
	printf '[task:off]\nenabled = no\n' >>"$D/f.conf"
	kill -HUP "$FD_PID"
	fd_wait_log 'reloaded: 0 added, 0 removed, 1 changed, 2 unchanged, 0 kept, 0 errors'
	fd_wait_log 'colour green'
	fd_wait_log '^<6>off: stopped \(reload\)$'
	# crash now fails once more and is not restarted (restart = no, live)
	n=$(fd_count 'crash run')
	# poll until the run in progress (if any) has ended: state failed
	for i in $(seq 200); do
		timeout 10 "$FIBERSCTL" -S "$D/c.sock" --json status crash 2>/dev/null | grep -q '"state":"failed"' && break
		sleep 0.05
	done
	timeout 10 "$FIBERSCTL" -S "$D/c.sock" --json status crash | grep -q '"state":"failed"'
	[ "$(fd_count 'crash run')" -le $((n + 1)) ]
	m=$(fd_count 'crash run')
	sleep 0.8
	[ "$(fd_count 'crash run')" -eq "$m" ]
	[ "$(fd_count 'off v1 start')" -eq 1 ]
}

@test "reload follows each key's rule in the key table: restarts the task, applies live, or waits for a daemon restart" {
	forever mem v1
	forever pol v1
	fd_conf <<'EOF2'
[task:mem]
memory_limit = 8M
[task:pol]
restart_delay = 1
EOF2
	sed -i 's/^log_level = debug$/log_level = debug\ncontrol_idle = 60/' "$D/f.conf"
	fd_start
	fd_wait_log 'mem v1 start'
	fd_wait_log 'pol v1 start'
	sed -i 's/^memory_limit = 8M$/memory_limit = 16M/; s/^restart_delay = 1$/restart_delay = 2/; s/^control_idle = 60$/control_idle = 30/' "$D/f.conf"
	run timeout 10 "$FIBERSCTL" -S "$D/c.sock" --json reload
	[ "$status" -eq 0 ]
	# memory_limit restarts its task, restart_delay applies live,
	# control_idle waits for a daemon restart (a warning in the reply)
	[[ "$output" == *'"changed":["mem"]'* ]]
	[[ "$output" == *'"unchanged":["pol"]'* ]]
	[[ "$output" == *'"warnings":["control_idle changed: takes effect when fibersd restarts"]'* ]]
	fd_wait_log '^<6>mem: stopped \(reload\)$'
	[ "$(fd_count 'mem v1 start')" -eq 2 ]
	[ "$(fd_count 'pol v1 start')" -eq 1 ]
	grep -q '^<4>fibersd: control_idle changed: takes effect when fibersd restarts$' "$D/log"
}

@test "reload with a broken config keeps the old one and reports file:line" {
	forever a v1
	fd_start
	fd_wait_log 'a v1 start'
	printf 'bogus_key = 1\n' >>"$D/f.conf"
	line=$(wc -l <"$D/f.conf")
	forever b v1
	kill -HUP "$FD_PID"
	fd_wait_log 'reloaded: 1 added'
	grep -qF "config: $D/f.conf:$line: " "$D/log"
	grep -q 'keeping the old configuration' "$D/log"
	fd_wait_log 'b v1 start'
	[ "$(fd_count 'a v1 start')" -eq 1 ]
}

# the RELOADING=1 / READY=1 datagrams of $D/notify.log, in order
reload_seq() { grep -oE '^(RELOADING|READY)=1' "$D/notify.log" | tr '\n' ' '; }

@test "every reload ends with READY=1 + MONOTONIC_USEC: fibersctl reload, a bad config, overlapping reloads" {
	forever a v1
	fd_notify_listen
	fd_start
	fd_wait_ready
	# through the control socket (ExecReload= of fibersd.service)
	run timeout 20 "$FIBERSCTL" -S "$D/c.sock" reload
	[ "$status" -eq 0 ]
	# a reload that fails (bad config): exit 1, and still READY=1
	cp "$D/f.conf" "$D/f.conf.good"
	printf 'bogus_key = 1\n' >>"$D/f.conf"
	run timeout 20 "$FIBERSCTL" -S "$D/c.sock" reload
	[ "$status" -eq 1 ]
	cp "$D/f.conf.good" "$D/f.conf"
	# two clients and a SIGHUP at once: serialised, each pair complete
	timeout 20 "$FIBERSCTL" -S "$D/c.sock" reload >/dev/null &
	p1=$!
	timeout 20 "$FIBERSCTL" -S "$D/c.sock" reload >/dev/null &
	p2=$!
	kill -HUP "$FD_PID"
	wait "$p1"
	wait "$p2"
	for i in $(seq 200); do [ "$(fd_count 'reloaded: ')" -eq 5 ] && [ "$(grep -c '^READY=1' "$D/notify.log")" -eq 6 ] && break; sleep 0.05; done
	[ "$(fd_count 'reloaded: ')" -eq 5 ]
	r='RELOADING=1 READY=1 '
	[ "$(reload_seq)" = "READY=1 $r$r$r$r$r" ]
	# each RELOADING=1 and each READY=1 after it carries MONOTONIC_USEC
	[ "$(grep -A1 -E '^(RELOADING|READY)=1' "$D/notify.log" | grep -cE '^MONOTONIC_USEC=[0-9]+')" -eq 10 ]
	[ "$(fd_count 'a v1 start')" -eq 1 ]
}

@test "a [task:NAME] section without a task file: a warning with file:line at start and reload, an error in --check" {
	forever a v1
	fd_conf <<'EOF2'
[task:a]
restart = always
[task:typo]
restart = always
EOF2
	line=$(grep -n '^\[task:typo\]$' "$D/f.conf" | cut -d: -f1)
	msg="$D/f.conf:$line: [task:typo] has no task file $D/t/typo.lua: the section does nothing"
	run fibersd -c "$D/f.conf" -d "$D/t" --check
	[ "$status" -eq 1 ]
	[ "$output" = "$msg" ]
	fd_start
	fd_wait_log 'a v1 start'
	fd_wait_log "^<4>fibersd: $(printf '%s' "$msg" | sed 's/[][\.*^$]/\\&/g')\$"
	run timeout 20 "$FIBERSCTL" -S "$D/c.sock" reload
	[ "$status" -eq 0 ]
	[[ "$output" == *"warning: $msg"* ]]
	# once the file exists the section applies, silently
	forever typo v1
	run timeout 20 "$FIBERSCTL" -S "$D/c.sock" reload
	[ "$status" -eq 0 ]
	[[ "$output" != *warning* ]]
	run fibersd -c "$D/f.conf" -d "$D/t" --check
	[ "$status" -eq 0 ]
}
