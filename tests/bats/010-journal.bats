#!/usr/bin/env bats
# 010-journal.bats - where fibersd's log records go (doc/daemon.md §6): the
# journal (sd_journal_send with PRIORITY, SYSLOG_IDENTIFIER, FIBERS_TASK,
# FIBERS_SCOPE) when stderr is the journal ($JOURNAL_STREAM matches) or
# log_target = journal; stderr lines with <N> prefixes otherwise, readable
# lines on a terminal; the stderr fallback when the journal cannot be
# written; the level filter.  The journal is a datagram listener bound at
# /run/systemd/journal/socket inside a private mount namespace.

load helpers

setup() {
	fd_setup --bare
	fd_task t1 <<'EOF2'
local fibersd = require 'fibersd'
fibersd.log.info('hello %d', 42)
fibersd.log.warning('careful')
fibersd.log.debug('details')
EOF2
}
teardown() { fd_teardown; }

# Built --without-systemd: logging goes to stderr only.
need_journal() {
	grep -q '^#define HAVE_SYSTEMD 1' "${top_builddir:-.}/config.h" ||
		skip "built without libsystemd"
}

# Run fibersd in a private mount namespace with a fake journal socket
# (unless $NOJOURNAL is set); the datagrams land in $D/journal, stderr in
# $D/log.  Extra arguments go to fibersd.  The daemon is stopped once task t1
# has logged its warning.
in_ns() {
	cat >"$D/ns.sh" <<EOF2
set -e
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/journal
if [ -z "\${NOJOURNAL:-}" ]; then
	socat -u UNIX-RECV:/run/systemd/journal/socket OPEN:"$D/journal",creat,append &
	sp=\$!
	for i in \$(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
fi
exec 2>>"$D/log"
if [ -n "\${WITH_STREAM:-}" ]; then
	export JOURNAL_STREAM=\$(stat -L -c '%d:%i' /proc/self/fd/2)
fi
"$FIBERSD" "\$@" -d "$D/t" -S "$D/c.sock" 3>&- </dev/null &
fp=\$!
for i in \$(seq 200); do
	grep -q 'careful' "$D/log" "$D/journal" 2>/dev/null && break
	sleep 0.05
done
sleep 0.2
kill -TERM \$fp
wait \$fp || true
[ -n "\${sp:-}" ] && kill \$sp || true
EOF2
	: >"$D/journal"
	timeout 30 unshare -m sh "$D/ns.sh" "$@"
}

@test "stderr is the journal: records go to the journal with fields" {
	need_journal
	WITH_STREAM=1 in_ns -n
	grep -qa '^MESSAGE=t1: hello 42$' "$D/journal"
	grep -qa '^PRIORITY=6$' "$D/journal"
	grep -qa '^PRIORITY=4$' "$D/journal"
	grep -qa '^SYSLOG_IDENTIFIER=fibersd$' "$D/journal"
	grep -qa '^FIBERS_TASK=t1$' "$D/journal"
	grep -qa '^FIBERS_SCOPE=' "$D/journal"
	! grep -qa 'details' "$D/journal"
	! grep -q 'hello' "$D/log"
}

@test "not a terminal, no journal stream: <N> prefixed lines on stderr" {
	in_ns -n
	grep -qx '<6>t1: hello 42' "$D/log"
	grep -qx '<4>t1: careful' "$D/log"
	! grep -q 'details' "$D/log"
	[ ! -s "$D/journal" ]
}

@test "-l sets the level: debug shows more, warning less" {
	in_ns -n -l debug
	grep -qx '<7>t1: details' "$D/log"
	: >"$D/log"
	in_ns -n -l warning
	grep -qx '<4>t1: careful' "$D/log"
	! grep -q 'hello' "$D/log"
}

@test "log_target = journal without a JOURNAL_STREAM" {
	need_journal
	printf '[fibersd]\nlog_target = journal\n' >"$D/f.conf"
	in_ns -c "$D/f.conf"
	grep -qa '^MESSAGE=t1: hello 42$' "$D/journal"
	! grep -q 'hello' "$D/log"
}

@test "the journal cannot be written: nothing is lost, lines go to stderr" {
	printf '[fibersd]\nlog_target = journal\n' >"$D/f.conf"
	NOJOURNAL=1 in_ns -c "$D/f.conf"
	grep -qx '<6>t1: hello 42' "$D/log"
}

@test "log_target = stderr wins over a journal stream" {
	printf '[fibersd]\nlog_target = stderr\n' >"$D/f.conf"
	WITH_STREAM=1 in_ns -c "$D/f.conf"
	grep -qx '<6>t1: hello 42' "$D/log"
	! grep -qa 'hello' "$D/journal"
}

@test "on a terminal: time level task: message" {
	TERM=dumb timeout 30 script -qec "$FIBERSD -n -d $D/t -S $D/c.sock & echo \$! >$D/pid; wait" \
		/dev/null >"$D/tty.out" 3>&- </dev/null &
	sp=$!
	for _ in $(seq 200); do
		grep -q 'careful' "$D/tty.out" 2>/dev/null && break
		sleep 0.05
	done
	kill -TERM "$(cat "$D/pid")"
	wait "$sp" || true
	grep -Eq '^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} info t1: hello 42' "$D/tty.out"
	grep -Eq '^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} warning t1: careful' "$D/tty.out"
}
