# helpers.bash - the shared helpers of every fibersd bats test that runs a
# real daemon (tests/bats/010-*, 02x, 08x, 090 and fixtures/control/ctl.bash):
# one fibersd per test in its own short temp dir (UNIX socket paths are
# limited to 108 bytes), started in the background with fd 3 closed (bats
# keeps it open otherwise and waits for it), a fake NOTIFY_SOCKET (socat
# datagram listener), readiness and log lines by polling, process liveness
# through /proc, every external command under `timeout`, and the daemon's
# log printed only when a test fails.
#
#   fd_setup [--bare]   make $D (temp dir), $D/t (task dir) and the default
#                       config $D/f.conf (--bare: no config file; the test
#                       writes its own or runs with -n)
#   fd_task NAME <<EOF  write task $D/t/NAME.lua from stdin
#   fd_conf <<EOF       append config lines to $D/f.conf (after the default
#                       [defaults] section: start with a section header, e.g.
#                       "[fibersd]" to add keys; after --bare: the whole file)
#   fibersd ARGS...     run the built fibersd in the foreground (timeout 20)
#   fd_notify_listen    start the fake notify socket ($D/notify, log $D/notify.log)
#   fd_start [ARGS]     start the daemon in the background with -c $D/f.conf
#                       -d $D/t -S $D/c.sock ARGS ($FD_PID, log $D/log)
#   fd_start_raw ARGS   the same with exactly ARGS on the command line
#   fd_wait_file PATH [S]  wait until PATH exists, default 10 s
#   fd_wait_log RE [S]  wait until the log matches RE (grep -E), default 10 s
#   fd_wait_ready       wait for READY=1 on the notify socket
#   fd_count RE         number of log lines matching RE
#   fd_dead PID         true when PID is gone or a zombie
#   fd_wait_dead PID [S]
#   fd_teardown         stop the daemon and the listener, print the logs on
#                       failure, remove $D

FIBERSD="${top_builddir:-.}/src/fibersd/fibersd"
FIBERSCTL="${top_builddir:-.}/src/fibersctl/fibersctl"

fd_setup() {
	D=$(mktemp -d /tmp/fd.XXXXXX)
	chmod 0755 "$D"
	mkdir -m 0755 "$D/t"
	: >"$D/log"
	if [ "${1:-}" != --bare ]; then
		# short grace so teardown is quick; tests append their own sections
		printf '[fibersd]\ncontrol_group = 0\nadmin_group = 0\nlog_level = debug\n[defaults]\nshutdown_grace = 0.5\n' >"$D/f.conf"
	fi
	FD_PID=
	FD_SOCAT=
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

fd_task() {
	cat >"$D/t/$1.lua"
	chmod 0644 "$D/t/$1.lua"
}

fd_conf() {
	cat >>"$D/f.conf"
}

fibersd() { timeout 20 "$FIBERSD" "$@" 3>&-; }

fd_notify_listen() {
	: >"$D/notify.log"
	timeout 120 socat -u -v UNIX-RECV:"$D/notify" /dev/null 2>"$D/notify.log" &
	FD_SOCAT=$!
	local i
	for i in $(seq 100); do
		[ -S "$D/notify" ] && return 0
		sleep 0.05
	done
	echo "notify listener did not start" >&2
	return 1
}

# (The daemon itself is not wrapped in timeout, so $FD_PID is its pid;
# fd_teardown always stops it.)
fd_start_raw() {
	if [ -n "$FD_SOCAT" ]; then
		NOTIFY_SOCKET="$D/notify" "$FIBERSD" "$@" 3>&- </dev/null >>"$D/log" 2>&1 &
	else
		"$FIBERSD" "$@" 3>&- </dev/null >>"$D/log" 2>&1 &
	fi
	FD_PID=$!
}

fd_start() {
	fd_start_raw -c "$D/f.conf" -d "$D/t" -S "$D/c.sock" "$@"
}

fd_wait_file() {
	local i
	for i in $(seq $((${2:-10} * 20))); do
		[ -e "$1" ] && return 0
		sleep 0.05
	done
	echo "timed out waiting for $1" >&2
	return 1
}

fd_wait_log() {
	local re="$1" secs="${2:-10}" i
	for i in $(seq $((secs * 20))); do
		grep -Eq -- "$re" "$D/log" && return 0
		sleep 0.05
	done
	echo "timed out waiting for log /$re/" >&2
	return 1
}

fd_wait_ready() {
	local i
	for i in $(seq 200); do
		grep -q '^READY=1' "$D/notify.log" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "timed out waiting for READY=1" >&2
	return 1
}

fd_count() {
	grep -Ec -- "$1" "$D/log" || true
}

fd_dead() {
	[ ! -e "/proc/$1" ] && return 0
	local st
	st=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null)
	[ -z "$st" ] || [ "$st" = Z ]
}

fd_wait_dead() {
	local pid="$1" secs="${2:-10}" i
	for i in $(seq $((secs * 20))); do
		fd_dead "$pid" && return 0
		sleep 0.05
	done
	return 1
}

fd_teardown() {
	if [ -n "${FD_PID:-}" ] && ! fd_dead "$FD_PID"; then
		kill -TERM "$FD_PID" 2>/dev/null || true
		fd_wait_dead "$FD_PID" 5 || kill -KILL "$FD_PID" 2>/dev/null || true
	fi
	[ -n "${FD_SOCAT:-}" ] && kill "$FD_SOCAT" 2>/dev/null || true
	if [ -z "${BATS_TEST_COMPLETED:-}" ] && [ -n "${D:-}" ]; then
		if [ -s "$D/log" ]; then
			echo "---- fibersd log ($D/log) ----" >&2
			cat "$D/log" >&2 || true
		fi
		[ -s "$D/notify.log" ] && { echo "---- notify ----" >&2; cat "$D/notify.log" >&2; }
	fi
	[ -n "${D:-}" ] && rm -rf "$D"
	return 0
}
