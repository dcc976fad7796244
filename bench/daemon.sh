#!/bin/bash
# bench/daemon.sh - the fibersd rows of doc/quality.md §2, measured from outside
# (NOTIFY_SOCKET datagrams timestamped by `socat -v`, /proc, fibersctl) or
# from the daemon's own `t` stamps on watch events.  Prints one line per
# case in the format of the library benchmarks:
#   bench=NAME n=N value=X unit=U ref=R ratio=X/R
# Usage: bench/daemon.sh BUILDDIR   (needs socat; run by bench/run.sh)
# Cases (BENCH_SCALE shrinks the task counts, never below 10):
#   fibersd_ready        1000 tasks (ready(), then sleep): launch -> READY=1
#   fibersd_rss          VmRSS of that daemon after READY (KiB)
#   fibersd_status       `fibersctl status` with those 1000 tasks, ms per
#                        whole command; ref = a `fibersctl version` round trip
#   fibersd_status_cpu   the same commands' CPU, ms per command: value = the
#                        daemon's (/proc/PID/stat), ref = fibersctl's (less
#                        noisy than wall time on a shared machine)
#   fibersd_ready_spawn  1000 tasks each starting one `sleep` child -> READY=1
#   fibersd_ready_spawn_cg  the same with one cgroup per task (root and a
#                        writable cgroup v2 hierarchy; in a private cgroup)
#   fibersd_idle         100 sleeping tasks: scheduler wake-ups in 10 s
#                        (/proc/PID/task/*/schedstat run counts)
#   fibersd_restart      a failing task with restart_delay = 0: ms from the
#                        `failed` event to the next `running` (median)
#   fibersd_stop         SIGTERM with 100 tasks holding TERM-ignoring
#                        children (+ grandchildren), shutdown_grace = 1:
#                        s until the daemon exited; ref = grace
#   fibersd_stop_left    processes of those trees still alive afterwards
#   fibersd_kill9_left   10 tasks' children alive 2 s after SIGKILL of fibersd
set -u
build=$1
FIBERSD=$build/src/fibersd/fibersd
FIBERSCTL=$build/src/fibersctl/fibersctl
scale=${BENCH_SCALE:-1}
if ! command -v socat >/dev/null 2>&1; then
	echo "# daemon benchmarks skipped: socat not installed" >&2
	exit 0
fi
W=$(mktemp -d /tmp/fdbench.XXXXXX)
U=$$   # marks our sleep children: sleep 100N.$U
chmod 0755 "$W"
DPID= SPID=
cleanup() {
	[ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null
	[ -n "$SPID" ] && kill "$SPID" 2>/dev/null
	pkill -KILL -f "sleep 100[0-9]\.$U" 2>/dev/null
	if [ -n "${BCG:-}" ] && [ -d "$BCG" ]; then
		local d
		for d in $(find "$BCG" -mindepth 1 -type d | sort -r) "$BCG"; do
			echo 1 >"$d/cgroup.kill" 2>/dev/null
			for _ in $(seq 100); do rmdir "$d" 2>/dev/null && break; sleep 0.05; done
		done
	fi
	rm -rf "$W"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

scaled() { awk -v n="$1" -v s="$scale" 'BEGIN { v = int(n * s + 0.5); if (v < 10) v = 10; print v }'; }
now() { date +%s.%N; }
report() { # NAME N VALUE UNIT REF
	awk -v b="$1" -v n="$2" -v v="$3" -v u="$4" -v r="$5" 'BEGIN {
		printf "bench=%s n=%d value=%.4g unit=%s ref=%.4g ratio=%.3f\n", b, n, v, u, r, (r != 0) ? v / r : 0 }'
}

# tasks DIR N BODY: N task scripts DIR/tNNN.lua with BODY
tasks() {
	rm -rf "$1"
	mkdir -m 0755 "$1"
	local i
	for i in $(seq "$2"); do printf '%s\n' "$3" >"$1/t$i.lua"; done
}

# start NAME [CONF-LINES...]: start fibersd on $W/NAME (task dir $W/NAME.d)
# with a NOTIFY_SOCKET recorder; sets DPID, T0 (launch time, epoch s)
start() {
	local n=$1
	shift
	{
		echo "[fibersd]"
		echo "log_level = notice"
		echo "log_target = stderr"
		echo "[defaults]"
		printf '%s\n' "$@"
	} >"$W/$n.conf"
	rm -f "$W/notify.sock" "$W/notify.log"
	socat -u -v UNIX-RECV:"$W/notify.sock" /dev/null 2>"$W/notify.log" &
	SPID=$!
	local i
	for i in $(seq 100); do [ -S "$W/notify.sock" ] && break; sleep 0.02; done
	T0=$(now)
	# in $START_CG (a cgroup of its own) when set
	NOTIFY_SOCKET=$W/notify.sock sh -c 'if [ -n "$1" ]; then echo $$ >"$1/cgroup.procs" || exit 1; fi
		shift; exec "$@"' sh "${START_CG:-}" "$FIBERSD" -c "$W/$n.conf" -d "$W/$n.d" -S "$W/c.sock" \
		</dev/null >>"$W/$n.log" 2>&1 3>&- &
	DPID=$!
}

# ready_time: wait (60 s max) for READY=1; print seconds since launch
ready_time() {
	local i
	for i in $(seq 1200); do
		grep -q '^READY=1' "$W/notify.log" 2>/dev/null && break
		sleep 0.05
	done
	local stamp
	# socat -v stamps are "YYYY/MM/DD HH:MM:SS.000uuuuuu" (microseconds
	# printed in nine digits), so keep the last six digits
	stamp=$(awk '/^> / { s = $2 " " $3 } /^READY=1/ { print s; exit }' "$W/notify.log" |
		sed -e 's|/|-|g' -e 's/\.[0-9]*\([0-9]\{6\}\)$/.\1/')
	[ -n "$stamp" ] || { echo 0; return 1; }
	awk -v a="$(date -d "$stamp" +%s.%N)" -v b="$T0" 'BEGIN { printf "%.4f\n", a - b }'
}

stop() { # stop the daemon (TERM, then KILL after 20 s) and the recorder
	if [ -n "$DPID" ]; then
		kill -TERM "$DPID" 2>/dev/null
		local i
		for i in $(seq 400); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.05; done
		kill -KILL "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
	fi
	[ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
	DPID= SPID=
}

# ms per command, mean of K runs of "$@"
per_cmd_ms() {
	local k=$1 i
	shift
	"$@" >/dev/null 2>&1
	local t0 t1
	t0=$(now)
	for i in $(seq "$k"); do "$@" >/dev/null 2>&1; done
	t1=$(now)
	awk -v a="$t0" -v b="$t1" -v k="$k" 'BEGIN { printf "%.3f\n", (b - a) * 1000 / k }'
}

N=$(scaled 1000)
# --- 1000 sleeping tasks: READY, RSS, status -------------------------------
tasks "$W/a.d" "$N" "require('fibersd').ready(); require('fibers.sleep').sleep(1e6)"
start a
r=$(ready_time)
report fibersd_ready "$N" "$r" s 1
sleep 0.5
rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$DPID/status")
report fibersd_rss "$N" "$rss" KiB 25600
ref=$(per_cmd_ms 20 "$FIBERSCTL" -S "$W/c.sock" version)
dcpu0=$(awk '{ print $14 + $15 }' "/proc/$DPID/stat")
ccpu0=$(awk '{ print $16 + $17 }' /proc/$$/stat)
st=$(per_cmd_ms 20 "$FIBERSCTL" -S "$W/c.sock" status)
dcpu1=$(awk '{ print $14 + $15 }' "/proc/$DPID/stat")
ccpu1=$(awk '{ print $16 + $17 }' /proc/$$/stat)
report fibersd_status "$N" "$st" ms "$ref"
# clock ticks of 21 commands (per_cmd_ms runs one more first); the
# children's ticks (cutime + cstime of this shell) are fibersctl's
tck=$(getconf CLK_TCK)
report fibersd_status_cpu "$N" "$(awk -v a="$dcpu0" -v b="$dcpu1" -v t="$tck" 'BEGIN { print (b - a) * 1000 / t / 21 }')" \
	ms "$(awk -v a="$ccpu0" -v b="$ccpu1" -v t="$tck" 'BEGIN { print (b - a) * 1000 / t / 21 }')"
stop

# --- 1000 tasks each starting one sleep child: READY -----------------------
tasks "$W/b.d" "$N" "local fibers = require 'fibers'
require('fibersd').ready()
fibers.perform(require('fibers.exec').command('sleep', '1000.$U'):run_op())"
start b
r=$(ready_time)
report fibersd_ready_spawn "$N" "$r" s 2
stop

# --- the same, one cgroup per task --------------------------------------------
CGM=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' \
	/proc/self/mountinfo | head -n 1)
if [ "$(id -u)" -eq 0 ] && [ -n "$CGM" ] && mkdir "$CGM/fdbench-$$" 2>/dev/null; then
	BCG=$CGM/fdbench-$$
	START_CG=$BCG start b
	r=$(ready_time)
	[ -d "$BCG/supervisor" ] || echo "# fibersd_ready_spawn_cg: fibersd did not take the cgroup" >&2
	report fibersd_ready_spawn_cg "$N" "$r" s 2
	stop
else
	echo "# fibersd_ready_spawn_cg skipped: needs root and a writable cgroup v2 hierarchy" >&2
fi

# --- idle: 100 sleeping tasks, wake-ups over 10 s ---------------------------
tasks "$W/c.d" 100 "require('fibersd').ready(); require('fibers.sleep').sleep(1e6)"
start c
ready_time >/dev/null
sleep 1
runs() { cat /proc/"$DPID"/task/*/schedstat 2>/dev/null | awk '{ s += $3 } END { print s + 0 }'; }
w0=$(runs)
sleep "${BENCH_IDLE_SECONDS:-10}"
w1=$(runs)
report fibersd_idle 100 $((w1 - w0)) wakeups 0
stop

# --- restart latency with restart_delay = 0 ---------------------------------
tasks "$W/d.d" 1 "require('fibers.sleep').sleep(0.02); error('bench failure')"
start d "restart_delay = 0" "restart_limit = 1000" "restart_window = 60"
ready_time >/dev/null
timeout 2 "$FIBERSCTL" -S "$W/c.sock" --json watch >"$W/watch.log" 2>/dev/null
# failure = the running -> stopping event (the error), restart = the next
# -> running event; both stamped by the daemon ("t", monotonic)
gaps=$(grep '"event":"state"' "$W/watch.log" |
	sed -n -e 's/.*"from":"\([a-z]*\)".*"t":\([0-9.]*\).*"to":"\([a-z]*\)".*/\1 \3 \2/p' |
	awk '$1 == "running" && $2 == "stopping" { f = $3; next }
		$2 == "running" && f != "" { printf "%.3f\n", ($3 - f) * 1000; f = "" }' |
	sort -n)
cnt=$(printf '%s\n' "$gaps" | grep -c .)
med=$(printf '%s\n' "$gaps" | awk 'NF { a[++n] = $1 } END { print n ? a[int((n + 1) / 2)] : -1 }')
report fibersd_restart "$cnt" "$med" ms 5
stop

# --- parallel stop of 100 tasks with TERM-ignoring children -----------------
tasks "$W/e.d" 100 "local fibers = require 'fibers'
require('fibersd').ready()
fibers.perform(require('fibers.exec').command('sh', '-c', 'trap \"\" TERM; sleep 1001.$U & exec sleep 1001.$U'):run_op())"
start e "shutdown_grace = 1"
ready_time >/dev/null
for i in $(seq 200); do
	[ "$(pgrep -c -f "sleep 1001.$U")" -ge 200 ] && break
	sleep 0.05
done
t0=$(now)
kill -TERM "$DPID"
wait "$DPID" 2>/dev/null
t1=$(now)
DPID=
report fibersd_stop 100 "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" s 1
sleep 0.2
report fibersd_stop_left 200 "$(pgrep -c -f "sleep 1001.$U")" procs 0
stop

# --- SIGKILL of the daemon: children alive 2 s later ------------------------
tasks "$W/f.d" 10 "local fibers = require 'fibers'
require('fibersd').ready()
fibers.perform(require('fibers.exec').command('sleep', '1002.$U'):run_op())"
start f
ready_time >/dev/null
for i in $(seq 200); do
	[ "$(pgrep -c -f "sleep 1002.$U")" -ge 10 ] && break
	sleep 0.05
done
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null
DPID=
sleep 2
report fibersd_kill9_left 10 "$(pgrep -c -f "sleep 1002.$U")" procs 0
stop
exit 0
