#!/usr/bin/env bats
# 010-cli-config.bats - the fibersd command line (doc/daemon.md §1) and the
# configuration file (§2): help, version, usage errors and their exit
# codes, --check on good and bad configurations and task scripts, flags
# overriding the file, package.path independent of the environment and of
# the working directory, and the control socket: a live one refuses a second
# daemon (exit 2), a stale one is replaced.

load helpers

setup() { fd_setup --bare; }
teardown() { fd_teardown; }

@test "-h prints the usage and exits 0" {
	run fibersd -h
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == "Usage: fibersd [-c FILE | -n] [-d DIR] [-S PATH] [-l LEVEL] [--check] [-V] [-h]" ]]
	for o in "-c, --config FILE" "-n, --no-config" "-d, --task-dir DIR" "-S, --socket PATH" \
		"-l, --log-level LEVEL" "--check" "-V, --version" "-h, --help"; do
		[[ $output == *"$o"* ]]
	done
	run fibersd --help
	[ "$status" -eq 0 ]
}

@test "-V prints the version and the detected features, exits 0" {
	run fibersd -V
	[ "$status" -eq 0 ]
	[[ ${lines[0]} =~ ^fibersd\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
	# the optional system features, detected once at startup
	[[ ${lines[1]} =~ ^features:\ libsystemd=(yes|no)\ service-manager=no\ cgroup2=(no|/.*)$ ]]
	[ "${#lines[@]}" -eq 2 ]
	NOTIFY_SOCKET=/nonexistent/notify run fibersd --version
	[ "$status" -eq 0 ]
	[[ ${lines[1]} == *" service-manager=yes "* ]]
	grep -q '^#define HAVE_SYSTEMD 1' "${top_builddir:-.}/config.h" && want=yes || want=no
	[[ ${lines[1]} == "features: libsystemd=$want "* ]]
}

@test "usage errors exit 1 with a message" {
	run fibersd --bogus
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "fibersd: unknown option '--bogus'" ]
	[ "${lines[1]}" = "Try 'fibersd -h' for more information." ]
	run fibersd -n extra
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "fibersd: unexpected argument 'extra'" ]
	run fibersd -c "$D/f.conf" -n
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "fibersd: -c and -n exclude each other" ]
	run fibersd -n -l loud
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "fibersd: unknown log level 'loud' (debug|info|notice|warning|err)" ]
	run fibersd -n -l crit
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "fibersd: unknown log level 'crit' (debug|info|notice|warning|err)" ]
	run fibersd -c
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "fibersd: option '-c' needs an argument" ]
}

@test "--check: a good config and good tasks exit 0 silently" {
	fd_conf <<'EOF2'
[fibersd]
control_mode = 0600
max_slice = 0.5
[defaults]
memory_limit = 16M
[task:web]
enabled = no
param.port = 8080
EOF2
	fd_task web <<'EOF2'
local scope, task = ...
return task.params.port
EOF2
	run fibersd -c "$D/f.conf" -d "$D/t" --check
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run fibersd -n -d "$D/t" --check
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "--check: every config problem as file:line: message, exit 1" {
	long=$(printf 'x%.0s' $(seq 300))
	fd_conf <<EOF2
[fibersd]
bogus = 1
max_slice = soon
; $long
[weird]
[defaults]
memory_limit = 12X
restart = sometimes
[empty]
EOF2
	run fibersd -c "$D/f.conf" -d "$D/t" --check
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "$D/f.conf:2: unknown key 'bogus' in [fibersd]" ]
	[ "${lines[1]}" = "$D/f.conf:3: bad value 'soon' for max_slice: expected a duration in seconds (a number >= 0)" ]
	[ "${lines[2]}" = "$D/f.conf:4: line too long" ]
	[ "${lines[3]}" = "$D/f.conf:5: unknown section [weird]" ]
	[ "${lines[4]}" = "$D/f.conf:7: bad value '12X' for memory_limit: expected a size (bytes, or a number with K, M or G)" ]
	[ "${lines[5]}" = "$D/f.conf:8: bad value 'sometimes' for restart: expected one of no|on-failure|always" ]
	[ "${lines[6]}" = "$D/f.conf:9: unknown section [empty]" ]
	[ "${#lines[@]}" -eq 7 ]
}

@test "a missing config file: file: message, exit 1" {
	run fibersd -c "$D/nope.conf" -d "$D/t" --check
	[ "$status" -eq 1 ]
	[ "$output" = "$D/nope.conf: the configuration file does not exist" ]
	# what systemctl status shows: the message itself and ENOENT, not EINVAL
	fd_notify_listen
	fd_start_raw -c "$D/nope.conf" -d "$D/t" -S "$D/c.sock"
	fd_wait_dead "$FD_PID" 10
	for i in $(seq 100); do grep -q '^ERRNO=' "$D/notify.log" && break; sleep 0.05; done
	grep -qxF "STATUS=bad configuration: $D/nope.conf: the configuration file does not exist" "$D/notify.log"
	grep -q '^ERRNO=2$' "$D/notify.log"
	# a file with bad contents: its first error, EINVAL
	printf '[fibersd]\nbogus = 1\n' >"$D/bad.conf"
	: >"$D/notify.log"
	fd_start_raw -c "$D/bad.conf" -d "$D/t" -S "$D/c.sock"
	fd_wait_dead "$FD_PID" 10
	for i in $(seq 100); do grep -q '^ERRNO=' "$D/notify.log" && break; sleep 0.05; done
	grep -qF "STATUS=bad configuration: $D/bad.conf:2: " "$D/notify.log"
	grep -q '^ERRNO=22$' "$D/notify.log"
}

@test "--check compiles task scripts: syntax errors as file:line: message, exit 1" {
	fd_task good <<'EOF2'
return 1
EOF2
	fd_task bad <<'EOF2'
local a = 1
local b = (
EOF2
	run fibersd -n -d "$D/t" --check
	[ "$status" -eq 1 ]
	[ "$output" = "$D/t/bad.lua:3: unexpected symbol near <eof>" ]
}

@test "a bad config at startup: exit 1 with file:line, nothing started" {
	printf '[fibersd]\nlog_level = chatty\n' >"$D/f.conf"
	fd_task t1 <<'EOF2'
print('should not run')
EOF2
	run fibersd -c "$D/f.conf" -d "$D/t" -S "$D/c.sock"
	[ "$status" -eq 1 ]
	[ "$output" = "$D/f.conf:2: bad value 'chatty' for log_level: expected one of debug|info|notice|warning|err" ]
	[ ! -e "$D/c.sock" ]
}

@test "-d and -S override the file; relative -d is taken from the working directory" {
	printf '[fibersd]\ntask_dir = /nonexistent/tasks\n' >"$D/f.conf"
	fd_task bad <<'EOF2'
x = = 1
EOF2
	run fibersd -c "$D/f.conf" -d "$D/t" --check
	[ "$status" -eq 1 ]
	[ "$output" = "$D/t/bad.lua:1: unexpected symbol near '='" ]
	cd "$D"
	run fibersd -c "$D/f.conf" -d t --check
	[ "$status" -eq 1 ]
	[ "$output" = "$D/t/bad.lua:1: unexpected symbol near '='" ]
}

@test "package.path ignores LUA_PATH, LUA_CPATH, LUA_INIT and the working directory" {
	mkdir -p "$D/fibersd" "$D/fibers"
	echo 'error("loaded from ./")' >"$D/fibersd/main.lua"
	echo 'error("loaded from ./")' >"$D/fibers.lua"
	fd_task ok <<'EOF2'
return 1
EOF2
	cd "$D"
	LUA_PATH="$D/?.lua;./?.lua" LUA_PATH_5_4="./?.lua" LUA_CPATH="./?.so" LUA_INIT='error("init")' \
		run fibersd -n -d "$D/t" --check
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "a live control socket refuses a second daemon (exit 2); SIGTERM stops with 0" {
	fd_task idle <<'EOF2'
require('fibers.sleep').sleep(1000)
EOF2
	fd_start_raw -n -d "$D/t" -S "$D/c.sock"
	fd_wait_file "$D/c.sock"
	run fibersd -n -d "$D/t" -S "$D/c.sock"
	[ "$status" -eq 2 ]
	[[ $output == *"$D/c.sock is in use"* ]]
	kill -TERM "$FD_PID"
	rc=0
	wait "$FD_PID" || rc=$?
	[ "$rc" -eq 0 ]
	[ ! -e "$D/c.sock" ]
}

@test "a stale socket left by a crash is replaced" {
	# socat SIGKILLed by timeout cannot remove its socket file
	timeout -s KILL 0.5 socat UNIX-LISTEN:"$D/c.sock" /dev/null 3>&- || true
	[ -S "$D/c.sock" ]
	run timeout 5 socat -u OPEN:/dev/null UNIX-CONNECT:"$D/c.sock"
	[ "$status" -ne 0 ]
	fd_task idle <<'EOF2'
require('fibers.sleep').sleep(1000)
EOF2
	fd_start_raw -n -d "$D/t" -S "$D/c.sock"
	for _ in $(seq 100); do
		timeout 5 socat -u OPEN:/dev/null UNIX-CONNECT:"$D/c.sock" 2>/dev/null && break
		sleep 0.05
	done
	timeout 5 socat -u OPEN:/dev/null UNIX-CONNECT:"$D/c.sock"
	! fd_dead "$FD_PID"
}

@test "a socket path that is not a socket is never removed (exit 2)" {
	echo data >"$D/c.sock"
	run fibersd -n -d "$D/t" -S "$D/c.sock"
	[ "$status" -eq 2 ]
	[[ $output == *"$D/c.sock exists and is not a socket"* ]]
	[ "$(cat "$D/c.sock")" = data ]
}
