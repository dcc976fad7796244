#!/bin/sh
# bench/run.sh - runs the benchmarks of doc/quality.md §2 (library scripts
# bench/*.lua, fibersd rows bench/daemon.sh) and prints their
# machine-readable lines, then a summary table with the targets, also
# written as Markdown to bench/results.md.
# Usage (what `make bench` does, from the build directory):
#   bench/run.sh SRCDIR BUILDDIR [LUA]
# LUA defaults to lua5.4 (the scripts also run under luajit given a
# matching fibers/core.so).  BENCH_SCALE=0.1 shrinks every n; BENCH_ONLY
# names a subset ("pingpong spawn").
set -u
src=$1
build=$2
lua=${3:-lua5.4}
LUA_PATH="$src/bench/?.lua;$src/lib/?.lua;$src/lib/?/init.lua"
LUA_CPATH="$build/?.so"
export LUA_PATH LUA_CPATH
out=$(mktemp)
trap 'rm -f "$out"' EXIT

cases=${BENCH_ONLY:-"pingpong spawn parked timers choice sleep1ms performs spawn_proc pipe tcp daemon"}
load0=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
echo "# fibers benchmarks: $("$lua" -v 2>&1 | head -n 1), scale ${BENCH_SCALE:-1}"
if [ -x "$build/bench/nanosleep" ]; then
	NANOSLEEP_REF=$("$build/bench/nanosleep" 1000)
	export NANOSLEEP_REF
fi
if [ -x "$build/bench/spawn_ref" ]; then
	SPAWN_REF="$build/bench/spawn_ref"
	export SPAWN_REF
fi
status=0
for c in $cases; do
	if [ "$c" = daemon ]; then
		# the fibersd rows (bench/daemon.sh, bash + socat)
		if ! bash "$src/bench/daemon.sh" "$build" | tee -a "$out"; then
			echo "# bench $c FAILED" >&2
			status=1
		fi
		continue
	fi
	if ! "$lua" "$src/bench/$c.lua" | tee -a "$out"; then
		echo "# bench $c FAILED" >&2
		status=1
	fi
done

# Summary: target per case (doc/quality.md §2); "yes" when met.  Printed as
# text, and as Markdown into $BENCH_RESULTS (default SRCDIR/bench/results.md
# for a full run; set BENCH_RESULTS=/dev/null to skip).
load1=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
results=${BENCH_RESULTS:-}
if [ -z "$results" ]; then
	if [ -z "${BENCH_ONLY:-}" ] && [ -z "${BENCH_SCALE:-}" ]; then
		results=$src/bench/results.md
	else
		results=/dev/null
	fi
fi
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
{
	echo "# Benchmark results"
	echo
	echo "Written by \`make bench\` (bench/run.sh); see bench/README.md for the cases."
	echo
	echo "* date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "* machine: $(uname -srm), $(nproc 2>/dev/null || echo ?) CPUs, ${cpu:-unknown CPU}"
	echo "* load average (1/5/15 min) before: ${load0:-?}; after: ${load1:-?}"
	echo "* Lua: $("$lua" -v 2>&1 | head -n 1), scale ${BENCH_SCALE:-1}"
	echo
	echo "| bench | n | value | reference | ratio | target | met? |"
	echo "| --- | ---: | ---: | ---: | ---: | --- | --- |"
} >"$results"
awk -v md="$results" '
function field(k,   i, a) {
	for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == k) return a[2] }
	return ""
}
BEGIN {
	printf "\n%-14s %9s %12s %12s %9s  %-32s %s\n", "bench", "n", "value", "ref", "ratio", "target", "met"
}
/^bench=/ {
	name = field("bench"); n = field("n"); v = field("value") + 0; u = field("unit")
	r = field("ref") + 0; ratio = field("ratio")
	tgt = "-"; met = "-"
	if (name == "pingpong") { tgt = "<= 0.4 us and <= 3x ref"; met = (v <= 0.4 && v <= 3 * r) }
	else if (name == "spawn") { tgt = "<= 1 us/fiber"; met = (v <= 1) }
	else if (name == "parked") { tgt = "<= 1600 B and <= 1.5x ref"; met = (v <= 1600 && v <= 1.5 * r) }
	else if (name == "timers") { tgt = "<= 0.15 s wall"; met = (v <= 0.15) }
	else if (name == "timers_floor") { tgt = "info: bare coroutines + 0.1 s" }
	else if (name == "choice") { tgt = "<= 1 us/iter"; met = (v <= 1) }
	else if (name == "sleep1ms_mean") { tgt = "<= ref + 20 us"; met = (v <= r + 20) }
	else if (name == "sleep1ms_p99") { tgt = "<= ref + 100 us"; met = (v <= r + 100) }
	else if (name ~ /^spawn_proc_(cg_)?(seq|conc50)$/) { tgt = ">= 90% of ref"; met = (r > 0 && v >= 0.9 * r) }
	else if (name == "spawn_proc_mem") { tgt = "bounded (< 256 KiB)"; met = (v < 256) }
	else if (name == "pipe") { tgt = ">= 0.9x ref (dd | cat)"; met = (v >= 0.9 * r) }
	else if (name == "tcp") { tgt = ">= 0.9x ref (dd | socat over TCP)"; met = (v >= 0.9 * r) }
	else if (name == "performs_rss") { tgt = "growth <= 1024 KiB (" v - r ")"; met = (v - r <= 1024) }
	else if (name == "fibersd_ready") { tgt = "<= 1 s"; met = (v > 0 && v <= 1) }
	else if (name ~ /^fibersd_ready_spawn(_cg)?$/) { tgt = "<= 2 s"; met = (v > 0 && v <= 2) }
	else if (name == "fibersd_rss") { tgt = "<= 25600 KiB"; met = (v <= 25600) }
	else if (name == "fibersd_status") { tgt = "<= 20 ms whole command"; met = (v <= 20) }
	else if (name == "fibersd_idle") { tgt = "0 wake-ups in 10 s (<= 1)"; met = (v <= 1) }
	else if (name == "fibersd_restart") { tgt = "<= 5 ms after the failure"; met = (n > 0 && v >= 0 && v <= 5) }
	else if (name == "fibersd_stop") { tgt = "<= grace + 0.5 s"; met = (v <= r + 0.5) }
	else if (name ~ /^fibersd_(stop|kill9)_left$/) { tgt = "none alive"; met = (v == 0) }
	if (met != "-") met = met ? "yes" : "NO"
	printf "%-14s %9s %12s %12s %9s  %-32s %s\n", name, n, v " " u, r, ratio, tgt, met
	mdt = tgt; gsub(/\|/, "\\|", mdt)
	printf "| %s | %s | %s %s | %s | %s | %s | %s |\n", name, n, v, u, r, ratio, mdt, met >> md
}' "$out"
exit $status
