#!/bin/sh
# tests/seed/run-examples.sh - `./dev.sh run` until fibersd exists: runs the
# seed document's examples (tests/seed/exampleN.lua, verbatim) from an
# in-tree build, printing a header per example, its output and its exit
# status.  Called from the source directory after `make`:
#   LUA_PATH = $PWD/lib/?.lua;$PWD/lib/?/init.lua   LUA_CPATH = $PWD/?.so
# The interpreter is $LUA (default lua5.4).
set -u
top=$(pwd)
[ -f "$top/tests/seed/example1.lua" ] || {
	echo "run-examples.sh: run me from the source directory" >&2
	exit 2
}
[ -f "$top/fibers/core.so" ] || {
	echo "run-examples.sh: $top/fibers/core.so is missing: build first (./dev.sh build)" >&2
	exit 2
}
LUA_PATH="$top/lib/?.lua;$top/lib/?/init.lua"
LUA_CPATH="$top/?.so"
export LUA_PATH LUA_CPATH
lua=${LUA:-lua5.4}

note() {
	case "$1" in
	example1) echo "(expected: prints 'main scope status: ok nil', then fibers.run re-raises" \
		"the second task's error: exit status 1)" ;;
	example2) echo "(expected: 'result: true hello', exit status 0)" ;;
	example3) echo "(expected: the output of 'ls -l', exit status 0)" ;;
	esac
}

worst=0
for f in "$top"/tests/seed/example[0-9]*.lua; do
	name=$(basename "$f" .lua)
	echo "==== $name: $lua tests/seed/$name.lua"
	note "$name"
	"$lua" "$f" 2>&1
	rc=$?
	echo "==== $name: exit status $rc"
	case "$name:$rc" in
	example1:1) echo "     (as the seed says: the failure of the second task is re-raised)" ;;
	*:0) ;;
	*) worst=1 ;;
	esac
	echo
done
exit $worst
