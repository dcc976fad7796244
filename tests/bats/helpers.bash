# helpers.bash - shared helpers of the fibersd bats tests (tests/bats/010-*):
# one short temp dir per test (UNIX socket paths are limited to 108 bytes),
# the daemon started in the background with fd 3 closed (bats keeps it open
# otherwise and waits for it), every external command under `timeout`, and
# the daemon's log printed only when a test fails.
#
#   h_setup                 $D = mktemp -d /tmp/fdh.XXXXXX, task dir $D/t
#   h_conf <<EOF            write the config file $D/f.conf from stdin
#   h_task NAME <<EOF       write task $D/t/NAME.lua from stdin
#   fibersd ARGS...         run the built fibersd under `timeout 20`
#   h_start ARGS...         start fibersd in the background ($H_PID, log $D/log)
#   h_wait_file PATH [S]    wait until PATH exists (default 10 s)
#   h_wait_log RE [S]       wait until $D/log matches the extended RE
#   h_dead PID              true when PID is gone or a zombie
#   h_teardown              stop the daemon, print its log on failure, clean up

FIBERSD_BIN="${top_builddir:-$BATS_TEST_DIRNAME/../..}/src/fibersd/fibersd"

h_setup() {
	D=$(mktemp -d /tmp/fdh.XXXXXX)
	chmod 0755 "$D"
	mkdir -m 0755 "$D/t"
	: >"$D/log"
	H_PID=
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

h_conf() { cat >"$D/f.conf"; }

h_task() {
	cat >"$D/t/$1.lua"
	chmod 0644 "$D/t/$1.lua"
}

fibersd() { timeout 20 "$FIBERSD_BIN" "$@" 3>&-; }

# The daemon itself is not wrapped in timeout so that $H_PID is its pid;
# h_teardown always stops it.
h_start() {
	"$FIBERSD_BIN" "$@" 3>&- </dev/null >>"$D/log" 2>&1 &
	H_PID=$!
}

h_wait_file() {
	local i
	for i in $(seq $((${2:-10} * 20))); do
		[ -e "$1" ] && return 0
		sleep 0.05
	done
	echo "timed out waiting for $1" >&2
	return 1
}

h_wait_log() {
	local i
	for i in $(seq $((${2:-10} * 20))); do
		grep -Eq -- "$1" "$D/log" && return 0
		sleep 0.05
	done
	echo "timed out waiting for log /$1/" >&2
	return 1
}

h_dead() {
	[ ! -e "/proc/$1" ] && return 0
	local st
	st=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null)
	[ -z "$st" ] || [ "$st" = Z ]
}

h_wait_dead() {
	local i
	for i in $(seq $((${2:-10} * 20))); do
		h_dead "$1" && return 0
		sleep 0.05
	done
	return 1
}

h_teardown() {
	if [ -n "${H_PID:-}" ] && ! h_dead "$H_PID"; then
		kill -TERM "$H_PID" 2>/dev/null || true
		h_wait_dead "$H_PID" 5 || kill -KILL "$H_PID" 2>/dev/null || true
	fi
	if [ -z "${BATS_TEST_COMPLETED:-}" ] && [ -n "${D:-}" ] && [ -s "$D/log" ]; then
		echo "---- fibersd log ($D/log) ----" >&2
		cat "$D/log" >&2 || true
	fi
	[ -n "${D:-}" ] && rm -rf "$D"
	return 0
}
