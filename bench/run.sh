#!/bin/sh
# bench/run.sh - runs the library benchmarks (quality.md §2) and prints
# their machine-readable lines, then a summary table with the targets.
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

cases=${BENCH_ONLY:-"pingpong spawn parked timers choice sleep1ms performs spawn_proc pipe"}
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
	if ! "$lua" "$src/bench/$c.lua" | tee -a "$out"; then
		echo "# bench $c FAILED" >&2
		status=1
	fi
done

# Summary: target per case (quality.md §2); "ok" when met.
awk '
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
	else if (name == "choice") { tgt = "<= 1 us/iter"; met = (v <= 1) }
	else if (name == "sleep1ms_mean") { tgt = "<= ref + 20 us"; met = (v <= r + 20) }
	else if (name == "sleep1ms_p99") { tgt = "<= ref + 100 us"; met = (v <= r + 100) }
	else if (name ~ /^spawn_proc_(seq|conc50)$/) { tgt = ">= 90% of ref"; met = (r > 0 && v >= 0.9 * r) }
	else if (name == "spawn_proc_mem") { tgt = "bounded (< 256 KiB)"; met = (v < 256) }
	else if (name == "pipe") { tgt = ">= 0.9x ref (dd | cat)"; met = (v >= 0.9 * r) }
	else if (name == "performs_rss") { tgt = "growth <= 1024 KiB (" v - r ")"; met = (v - r <= 1024) }
	if (met != "-") met = met ? "yes" : "NO"
	printf "%-14s %9s %12s %12s %9s  %-32s %s\n", name, n, v " " u, r, ratio, tgt, met
}' "$out"
exit $status
