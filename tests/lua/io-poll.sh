#!/bin/sh
# tests/lua/io-poll.sh - the io Lua tests (stream, file, socket, tcp) again with
# the poll(2) backend forced (FIBERS_POLLER=poll); one TAP line per test
# file, its output shown on failure.
n=0
fail=0
for f in stream file socket tcp; do
	n=$((n + 1))
	out=$(FIBERS_POLLER=poll "$LUA_RUNNER" "$top_srcdir/tests/lua/$f.lua" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q '^# poller backend: poll$'; then
		echo "ok $n - tests/lua/$f.lua with FIBERS_POLLER=poll"
	else
		fail=1
		echo "not ok $n - tests/lua/$f.lua with FIBERS_POLLER=poll (exit $rc)"
		printf '%s\n' "$out" | grep -v '^ok' | sed 's/^/# /'
	fi
done
echo "1..$n"
exit $fail
