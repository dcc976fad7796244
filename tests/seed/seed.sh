#!/bin/sh
# tests/seed/seed.sh - TAP: the seed document's examples, copied verbatim
# into tests/seed/exampleN.lua, run under $LUA_RUNNER (lua5.4, or the
# sanitizer host flua) with stdout and stderr captured separately and
# checked byte for byte against what the seed's text says they print.
# Environment (from AM_TESTS_ENVIRONMENT): LUA_RUNNER, LUA_PATH, LUA_CPATH,
# top_srcdir.  Each example is one block below; example 3 (exec) is added by
# the exec work in the marked slot.
set -u
srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
runner=${LUA_RUNNER:-lua5.4}
# Run the interpreter by its basename (through PATH) so that its error
# prefix is "<basename>: ", as when a user types `lua5.4 example1.lua`.
rbase=$(basename "$runner")
case "$runner" in
*/*) rpath="$(cd "$(dirname "$runner")" && pwd):$PATH" ;;
*) rpath=$PATH ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0

ok() { # ok STATUS NAME
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
	fi
}

diag_file() { # diag_file LABEL FILE
	echo "# $1:"
	sed 's/^/#   /' "$2"
}

now() { date +%s.%N; }

# run_example NAME: runs tests/seed/NAME.lua; sets rc and elapsed, leaves
# $tmp/NAME.out and $tmp/NAME.err.
run_example() {
	t0=$(now)
	(cd "$tmp" && timeout 30 env PATH="$rpath" "$rbase" "$srcdir/tests/seed/$1.lua" \
		>"$tmp/$1.out" 2>"$tmp/$1.err")
	rc=$?
	t1=$(now)
	elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
}

# ---- example 1: fail fast on error --------------------------------------
run_example example1
printf 'main scope status:\tok\tnil\n' >"$tmp/exp1"
cmp -s "$tmp/exp1" "$tmp/example1.out"
st=$?
ok $st "example 1: stdout is exactly 'main scope status:<TAB>ok<TAB>nil'"
[ $st -eq 0 ] || diag_file stdout "$tmp/example1.out"
! grep -q 'first: finished ok' "$tmp/example1.out" "$tmp/example1.err"
ok $? "example 1: 'first: finished ok' never appears"
head -n 1 "$tmp/example1.err" >"$tmp/err1"
grep -Eq "^$(printf '%s' "$rbase" | sed 's/[.[\*^$]/\\&/g'): .*:[0-9]+: second: something went wrong\$" "$tmp/err1"
st=$?
ok $st "example 1: stderr starts with '$rbase: <file>:<line>: second: something went wrong'"
[ $st -eq 0 ] || diag_file stderr "$tmp/example1.err"
[ "$rc" -eq 1 ]
ok $? "example 1: exit status 1 (got $rc)"
awk -v e="$elapsed" 'BEGIN { exit !(e >= 0.2 && e < 5) }'
ok $? "example 1: takes >= 0.2 s and < 5 s (took $elapsed s)"

# ---- example 2: channels and timeouts ----------------------------------
run_example example2
printf 'result:\ttrue\thello\n' >"$tmp/exp2"
cmp -s "$tmp/exp2" "$tmp/example2.out"
st=$?
ok $st "example 2: stdout is exactly 'result:<TAB>true<TAB>hello'"
[ $st -eq 0 ] || diag_file stdout "$tmp/example2.out"
[ "$rc" -eq 0 ]
st=$?
ok $st "example 2: exit status 0 (got $rc)"
[ $st -eq 0 ] || diag_file stderr "$tmp/example2.err"
[ ! -s "$tmp/example2.err" ]
ok $? "example 2: nothing on stderr"

# ---- example 3: subprocess bound to a scope (slot for the exec work) ----
# Runs in a directory of its own (so its output file is not in the listing);
# expected: `ls -l` run directly there, plus the newline print() adds.
mkdir "$tmp/ex3" && echo data >"$tmp/ex3/a-file" && mkdir "$tmp/ex3/a-dir"
(cd "$tmp/ex3" && timeout 30 env PATH="$rpath" "$rbase" "$srcdir/tests/seed/example3.lua" \
	>"$tmp/example3.out" 2>"$tmp/example3.err")
rc=$?
(cd "$tmp/ex3" && ls -l && echo) >"$tmp/exp3"
cmp -s "$tmp/exp3" "$tmp/example3.out"
st=$?
ok $st "example 3: stdout is exactly the output of 'ls -l' in the same cwd, plus a newline"
[ $st -eq 0 ] || { diag_file expected "$tmp/exp3"; diag_file stdout "$tmp/example3.out"; }
[ "$rc" -eq 0 ]
st=$?
ok $st "example 3: exit status 0 (got $rc)"
[ ! -s "$tmp/example3.err" ]
st=$?
ok $st "example 3: nothing on stderr"
[ $st -eq 0 ] || diag_file stderr "$tmp/example3.err"

echo "1..$n"
