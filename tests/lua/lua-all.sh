#!/bin/sh
# tests/lua/lua-all.sh - portability runner behind `make check-lua-all` and
# `make check-backends` (tests/lua/lua.mk).
#
# For each Lua version in $LUA_ALL_VERSIONS (5.1 5.2 5.3 5.4 luajit) whose
# interpreter and pkg-config module are installed, it compiles the same C
# core + binding sources against that version's headers into
#   $top_builddir/lua-all/<ver>/fibers/core.so
# (not linked with liblua: the interpreter provides the API, as for any Lua
# C module), then runs every Lua test and the seed examples under that
# interpreter with LUA_CPATH pointing there, through Automake's own TAP
# driver.  Logs: $top_builddir/lua-all/<ver><suffix>/logs/.
#
# Environment (set by the make rule):
#   top_srcdir, top_builddir   absolute paths
#   CC, LUA_ALL_CFLAGS         compiler and flags (no sanitizers)
#   LUA_ALL_SOURCES            C sources, relative to top_srcdir
#   LUA_ALL_TESTS              tests (*.lua run by the interpreter, *.sh by
#                              $SHELL with LUA_RUNNER set), relative to srcdir
#   LUA_ALL_VERSIONS           versions to try (default: all five)
#   LUA_ALL_REQUIRE=yes        fail if a version is not installed (CI)
#   LUA_ALL_SUFFIX             log directory suffix (e.g. -poll-sigchld); the
#                              caller's FIBERS_POLLER / FIBERS_PROC pass through
#   LUA_ALL_JOBS               parallel compiles and tests (default 2)
#   LUA_ALL_BUILD_ONLY=yes     build the modules, run no test (install-lua-all)
#   LUA_ALL_PREBUILT=DIR       build nothing: run the tests once with
#                              $LUA_ALL_RUNNER and DIR/fibers/core.so (the
#                              main build; used by `make check-backends`)
set -u
: "${top_srcdir:?}" "${top_builddir:?}" "${LUA_ALL_SOURCES:?}" "${LUA_ALL_TESTS:?}"
CC=${CC:-cc}
SHELL=${SHELL:-/bin/sh}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
jobs=${LUA_ALL_JOBS:-2}
versions=${LUA_ALL_VERSIONS:-5.1 5.2 5.3 5.4 luajit}
suffix=${LUA_ALL_SUFFIX:-}
AM_TAP_AWK=${AM_TAP_AWK:-awk}
export AM_TAP_AWK SHELL

say() { printf '%s\n' "lua-all: $*"; }

# build VER PCNAME: compile every source in parallel, link core.so.
build() {
	dir=$top_builddir/lua-all/$1
	mkdir -p "$dir/obj" "$dir/fibers" || return 1
	rm -f "$dir"/obj/*.o "$dir"/obj/*.err
	cflags=$($PKG_CONFIG --cflags "$2") || return 1
	for src in $LUA_ALL_SOURCES; do
		echo "$src"
	done | xargs -P "$jobs" -I{} sh -c '
		o="$1/obj/$(echo "$2" | tr / _).o"
		# shellcheck disable=SC2086
		$CC $LUA_ALL_CFLAGS $3 -fPIC -c -o "$o" "$4/$2" 2>"$o.err" || { cat "$o.err" >&2; exit 1; }
		cat "$o.err" >&2' sh "$dir" {} "$cflags" "$top_srcdir" || return 1
	# shellcheck disable=SC2086
	$CC -shared -o "$dir/fibers/core.so" "$dir"/obj/*.o -lm -pthread
}

# run_tests VER INTERP: every test through tap-driver.sh; prints a summary.
run_tests() {
	logs=$top_builddir/lua-all/$1$suffix/logs
	rm -rf "$logs"
	mkdir -p "$logs"
	LUA_PATH="$top_srcdir/lib/?.lua;$top_srcdir/lib/?/init.lua;$top_srcdir/tests/lua/lib/?.lua"
	LUA_CPATH="${3:-$top_builddir/lua-all/$1}/?.so"
	LUA_RUNNER=$2
	export LUA_PATH LUA_CPATH LUA_RUNNER top_srcdir top_builddir
	# The backends this interpreter + module pick (forced ones must win).
	be=$("$2" -e "io.write(require('fibers.runtime').current_scheduler:backend(), '/',
		require('fibers.exec').backend)" 2>&1) || { say "$2: cannot load fibers: $be"; return 1; }
	case $be in
	${FIBERS_POLLER:-*}/${FIBERS_PROC:-*}) ;;
	*) say "$2: backends $be, wanted ${FIBERS_POLLER:-any}/${FIBERS_PROC:-any}"; return 1 ;;
	esac
	for t in $LUA_ALL_TESTS; do
		echo "$t"
	done | xargs -P "$jobs" -I{} sh -c '
		t=$1 logs=$2
		base=$logs/$(echo "$t" | tr / _)
		case $t in
		*.lua) set -- "$LUA_RUNNER" "$top_srcdir/$t" ;;
		*) set -- "$SHELL" "$top_srcdir/$t" ;;
		esac
		"$SHELL" "$top_srcdir/build-aux/tap-driver.sh" --test-name "$t" \
			--log-file "$base.log" --trs-file "$base.trs" --color-tests no \
			--enable-hard-errors yes --expect-failure no -- "$@" >/dev/null 2>&1
		exit 0' sh {} "$logs"
	pass=$(cat "$logs"/*.trs | grep -c '^:test-result: PASS')
	skip=$(cat "$logs"/*.trs | grep -c '^:test-result: SKIP')
	bad=$(cat "$logs"/*.trs | grep -c '^:test-result: \(FAIL\|XPASS\|ERROR\)')
	files=$(ls "$logs"/*.trs | wc -l)
	nt=$(echo $LUA_ALL_TESTS | wc -w)
	say "$2 [$be]: $files/$nt test files, $pass passed, $skip skipped, $bad failed"
	if [ "$bad" -ne 0 ] || [ "$files" -ne "$nt" ]; then
		for trs in "$logs"/*.trs; do
			grep -q '^:global-test-result: PASS\|^:global-test-result: SKIP' "$trs" && continue
			log=${trs%.trs}.log
			say "---- $log"
			grep -v '^ok \|^PASS: ' "$log" | head -40
		done
		return 1
	fi
	return 0
}

status=0
ran=""
if [ -n "${LUA_ALL_PREBUILT:-}" ]; then
	# The runner may be the ASan test host of a sanitizer build (as make check).
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	export ASAN_OPTIONS UBSAN_OPTIONS
	run_tests main "${LUA_ALL_RUNNER:?}" "$LUA_ALL_PREBUILT"
	exit $?
fi
for v in $versions; do
	case $v in
	luajit) pc=luajit interp=luajit ;;
	*) pc=lua$v interp=lua$v ;;
	esac
	if ! command -v "$interp" >/dev/null 2>&1 || ! $PKG_CONFIG --exists "$pc"; then
		if [ "${LUA_ALL_REQUIRE:-no}" = yes ]; then
			say "Lua $v: $interp or pkg-config $pc missing (LUA_ALL_REQUIRE=yes)"
			status=1
		else
			say "SKIP Lua $v: $interp or pkg-config $pc not installed"
		fi
		continue
	fi
	if ! build "$v" "$pc"; then
		say "Lua $v: building fibers/core.so failed"
		status=1
		continue
	fi
	[ "${LUA_ALL_BUILD_ONLY:-no}" = yes ] || run_tests "$v" "$interp" || status=1
	ran="$ran $v"
done
[ -n "$ran" ] || { say "no Lua version was tested"; status=1; }
exit $status
