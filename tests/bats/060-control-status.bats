#!/usr/bin/env bats
# 060-control-status.bats - `fibersctl status` and `version` against a real
# fibersd: the tree of tasks, child scopes and processes, JSON output, exit 1
# on a failed task, scope addressing (name path, id, task/id, reserved and
# internal scopes, ambiguity) and exit 3 for unknown scopes.

load fixtures/control/ctl

setup() { fd_setup; }
teardown() { fd_teardown; }

tree_task() {
	fd_task "$1" <<'EOF2'
local sleep = require 'fibers.sleep'
local exec = require 'fibers.exec'
local fibers = require 'fibers'
local s = ...
local w = assert(s:child()); w:set_name('worker')
w:spawn(function() fibers.perform(exec.command('sleep', '1000'):run_op()) end)
local a = assert(w:child()); a:set_name('dup')
a:spawn(function() sleep.sleep(1000) end)
local b = assert(w:child()); b:set_name('dup')
b:spawn(function() sleep.sleep(1000) end)
require('fibersd').ready()
sleep.sleep(1000)
EOF2
}

@test "status shows tasks, child scopes and processes; exit 0 when healthy" {
	tree_task web
	ctl_start
	ctl_wait_state web ready
	run ctl status
	[ "$status" -eq 0 ]
	[[ ${lines[0]} =~ ^fibersd\ [0-9.]+,\ pid\ $FD_PID,\ up\ .*\;\ 1\ task:\ 1\ ready\;\ 1\ process$ ]]
	[[ ${lines[1]} =~ ^●\ web\ \[[0-9]+\]:\ ready,\ up\ .*,\ restarts\ 0,\ memory\ [0-9.]+[KM]$ ]]
	[ "${lines[2]}" = "    file: $D/t/web.lua" ]
	[[ ${lines[3]} =~ ^\ \ \ \ └─\ worker\ \[[0-9]+\]:\ running,\ 1\ fiber,\ up ]]
	[[ ${lines[4]} =~ ^\ \ \ \ \ \ \ ├─\ dup\ \[[0-9]+\]:\ running,\ 1\ fiber ]]
	[[ ${lines[6]} =~ ^\ \ \ \ \ \ \ └─\ pid\ [0-9]+:\ sleep\ 1000\ \(running,\ up ]]
	run ctl --json status
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output =~ ^\{\"counts\":\{\"processes\":1,\"ready\":1,\"tasks\":1\},\"daemon\":\"fibersd\",\"features\":\{[^}]*\},\"pid\":$FD_PID,\"protocol\":1, ]]
	# the optional system features detected at startup, as fibersd -V says
	features=$("$FIBERSD" -V | sed -n 's/^features: //p')
	[[ $output =~ \"features\":\{\"cgroup\":(false|\"/[^\"]*\"),\"cgroup_writable\":(true|false),\"libsystemd\":(true|false),\"service_manager\":false\} ]]
	[[ $features == "libsystemd=$([[ $output == *'"libsystemd":true'* ]] && echo yes || echo no) "* ]]
	[[ $output == *'"argv":["sleep","1000"]'* ]]
	[[ $output =~ \"time\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z\" ]]
	[[ $output =~ \"t\":[0-9.]+ ]]
}

@test "a failed task shows its error and status exits 1" {
	fd_task bad <<'EOF2'
error('broken on purpose')
EOF2
	fd_conf <<'EOF2'
[defaults]
restart = no
EOF2
	ctl_start
	ctl_wait_state bad failed
	run ctl status
	[ "$status" -eq 1 ]
	[ "${lines[1]}" = "× bad: failed, restarts 0, memory 0B" ]
	[ "${lines[3]}" = "    last error: $D/t/bad.lua:1: broken on purpose" ]
	run ctl --json status bad
	[ "$status" -eq 1 ]
	[[ $output == *"\"last_error\":\"$D/t/bad.lua:1: broken on purpose\""* ]]
}

@test "addresses: name path, id, task/id; unknown, reserved and internal scopes exit 3" {
	tree_task web
	ctl_start
	ctl_wait_state web ready
	run ctl --json status web/worker
	[ "$status" -eq 0 ]
	[[ $output == '{"children":[{'*'"path":"web/worker/dup"'*'"path":"web/worker"'* ]]
	run ctl --json status web/worker -d 0
	[ "$status" -eq 0 ]
	wid=$(ctl_json_field id)
	[[ $output == '{"children":[],"commands":[{'* ]]
	run ctl --json status "$wid"
	[ "$status" -eq 0 ]
	[[ $output == *'"name":"worker","path":"web/worker"'* ]]
	run ctl --json status "web/$wid"
	[ "$status" -eq 0 ]
	[[ $output == *'"path":"web/worker"'* ]]
	run ctl status web/worker -d 0
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	[[ ${lines[0]} =~ ^●\ web/worker\ \[$wid\]:\ running,\ up\ .*,\ 1\ fiber$ ]]
	[[ ${lines[1]} =~ ^\ \ \ \ └─\ pid\ [0-9]+:\ sleep\ 1000 ]]
	run ctl status web/9999
	[ "$status" -eq 3 ]
	[ "$output" = "fibersctl: no scope 'web/9999' (not_found)" ]
	run ctl status nope
	[ "$status" -eq 3 ]
	[ "$output" = "fibersctl: no task 'nope' (not_found)" ]
	run ctl status control
	[ "$status" -eq 3 ]
	run ctl status fibersd
	[ "$status" -eq 3 ]
	# ids outside task subtrees (root = 1, the daemon's own scopes) are not addressable
	for id in 1 2 3 4 5; do
		[ "$id" = "$wid" ] && continue
		run ctl --json status "$id"
		if [ "$status" -eq 0 ]; then [[ $output == *'"path":"web'* ]]; else [ "$status" -eq 3 ]; fi
	done
	run ctl status web/worker/dup
	[ "$status" -eq 3 ]
	[[ ${lines[0]} == "fibersctl: 'web/worker/dup' names 2 scopes: use an id (ambiguous)" ]]
	[[ ${lines[1]} =~ ^fibersctl:\ candidates:\ [0-9]+\ [0-9]+$ ]]
}

@test "version reports both sides; daemon gone exits 5" {
	fd_task idle <<'EOF2'
require('fibers.sleep').sleep(1000)
EOF2
	ctl_start
	run ctl version
	[ "$status" -eq 0 ]
	[[ ${lines[0]} =~ ^fibersctl\ [0-9.]+\ \(protocol\ 1\)$ ]]
	[[ ${lines[1]} =~ ^fibersd\ [0-9.]+\ \(protocol\ 1,\ pid\ $FD_PID,\ up ]]
	kill -TERM "$FD_PID"
	fd_wait_dead "$FD_PID"
	run ctl status
	[ "$status" -eq 5 ]
}

@test "brief status (fibersctl's table) leaves out what the table does not show; same table" {
	tree_task web
	fd_task bad <<'EOF2'
error('broken on purpose')
EOF2
	fd_task flaky <<'EOF2'
error('flaky on purpose')
EOF2
	fd_conf <<'EOF2'
[task:bad]
restart = no
[task:flaky]
restart_delay = 30
EOF2
	ctl_start
	ctl_wait_state web ready
	ctl_wait_state bad failed
	ctl_wait_state flaky backoff
	run ctl_raw '{"id":1,"method":"status","params":{"brief":true}}' '{"id":2,"method":"status","params":{}}'
	[ "$status" -eq 0 ]
	brief=${lines[1]} full=${lines[2]}
	[[ $brief == '{"id":1,"result":{"counts":{"backoff":1,"failed":1,"processes":1,"ready":1,"tasks":3},'* ]]
	# a task without a scope: no id, no empty children/commands, no fibers,
	# name, ready, reason, since; uptime in milliseconds
	[[ $brief =~ \{\"file\":\"$D/t/bad.lua\",\"last_error\":\"$D/t/bad.lua:1:\ broken\ on\ purpose\",\"last_exit\":\"failed\",\"memory\":0,\"path\":\"bad\",\"restarts\":0,\"state\":\"failed\",\"uptime\":[0-9]+(\.[0-9]{1,3})?\} ]]
	[[ $brief =~ \"last_exit\":\"failed\",\"memory\":0,\"next_restart_in\":[0-9.]+,\"path\":\"flaky\",\"restarts\":1,\"state\":\"backoff\", ]]
	# a live task: its subtree as usual, then the task's own fields
	[[ $brief =~ \{\"children\":\[\{.*\"path\":\"web/worker\".*\],\"file\":\"$D/t/web.lua\",\"id\":[0-9]+,\"memory\":[0-9]+,\"path\":\"web\",\"restarts\":0,\"state\":\"ready\",\"uptime\":[0-9.]+\}\],\"time\" ]]
	# the full reply keeps every field
	[[ $full =~ \{\"children\":\[\],\"commands\":\[\],\"fibers\":0,\"file\":\"$D/t/bad.lua\",\"last_error\":\"[^\"]*\",\"last_exit\":\"failed\",\"memory\":0,\"name\":\"bad\",\"path\":\"bad\",\"ready\":false,\"reason\":\"[^\"]*\",\"restarts\":0,\"since\":[0-9.]+,\"state\":\"failed\",\"uptime\":[0-9.]+\} ]]
	[[ $full =~ \"fibers\":1,\"file\":\"$D/t/web.lua\",\"id\":[0-9]+,\"memory\":[0-9]+,\"name\":\"web\",\"path\":\"web\",\"ready\":true,\"restarts\":0,\"since\":[0-9.]+,\"state\":\"ready\",\"uptime\" ]]
	# fibersctl's table from the brief reply == the table from the full one
	# (served by a stand-in, as an older fibersd would answer)
	run ctl status
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 13 ]
	[[ ${lines[4]} =~ ^↻\ flaky:\ backoff\ \(restart\ in\ [0-9]+s\),\ restarts\ 1,\ memory\ 0B$ ]]
	[[ ${lines[9]} =~ ^\ \ \ \ └─\ worker\ \[[0-9]+\]:\ running,\ 1\ fiber,\ up ]]
	printf '%s\n' "$output" | sed -E 's/(up|in) [0-9][^,)]*/\1 T/g; s/memory [0-9.]+[BKM]/memory M/' >"$D/brief.txt"
	printf '%s\n' "${full/\"id\":2,/\"id\":1,}" >"$D/full.reply"
	printf '#!/bin/sh\necho %s\nread -r line\ncat %s\n' \
		"'{\"hello\":{\"daemon\":\"fibersd\",\"version\":\"0\",\"protocol\":1,\"role\":\"admin\"}}'" "$D/full.reply" >"$D/fake.sh"
	chmod 0755 "$D/fake.sh"
	timeout 30 socat UNIX-LISTEN:"$D/fake.sock" EXEC:"$D/fake.sh" 3>&- &
	local i
	for i in $(seq 100); do [ -S "$D/fake.sock" ] && break; sleep 0.02; done
	run timeout 20 "$FIBERSCTL" -S "$D/fake.sock" status
	[ "$status" -eq 1 ]
	printf '%s\n' "$output" | sed -E 's/(up|in) [0-9][^,)]*/\1 T/g; s/memory [0-9.]+[BKM]/memory M/' >"$D/full.txt"
	diff "$D/brief.txt" "$D/full.txt"
}
