#!/usr/bin/env bats
# 051-completion.bats - completion/fibersctl.bash: commands, options and
# per-command flags read from `fibersctl --help` (the method table), task
# names taken from `fibersctl --json status -d 0` (a stand-in fibersctl
# function passes --help to the real one and records the other calls).

setup() {
	source "$BATS_TEST_DIRNAME/../../completion/fibersctl.bash"
	CALLS=$(mktemp /tmp/comp.XXXXXX)
	FCTL="${top_builddir:-$BATS_TEST_DIRNAME/../..}/src/fibersctl/fibersctl"
	fibersctl() {
		if [ "$*" = --help ]; then
			"$FCTL" --help
			return
		fi
		echo "$*" >>"$CALLS"
		echo '{"version":"1","tasks":[{"children":[],"id":3,"name":"web"},{"file":"/t/db.lua","name":"db.main"}]}'
	}
}

teardown() { rm -f "$CALLS"; }

comp() {
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMPREPLY=()
	_fibersctl
	echo "${COMPREPLY[*]}"
}

@test "commands and global options" {
	[ "$(comp fibersctl st)" = "status start stop" ]
	[ "$(comp fibersctl re)" = "restart reload" ]
	[ "$(comp fibersctl --j)" = "--json" ]
	# every command of the table, in its order
	[ "$(comp fibersctl -S /x.sock "")" = "$("$FCTL" --help | sed -n 's/^  \([a-z]*\) .*/\1/p' | xargs)" ]
	[[ " $(comp fibersctl -S /x.sock "") " == *" status cancel start stop restart signal reload logs watch version "* ]]
	[ ! -s "$CALLS" ] # only --help was asked
}

@test "task names come from the daemon, with the same -S" {
	[ "$(comp fibersctl -S /x.sock stop "")" = "web db.main" ]
	[ "$(cat "$CALLS")" = "-S /x.sock -t 2 --json status -d 0" ]
	[ "$(comp fibersctl logs d)" = "db.main" ]
	[ "$(comp fibersctl status w)" = "web" ]
}

@test "per-command flags and signal names" {
	[ "$(comp fibersctl logs web -)" = "-n --lines -f --follow" ]
	[ "$(comp fibersctl status -)" = "-d --depth" ]
	[ "$(comp fibersctl logs -n 5 w)" = "web" ]
	[ "$(comp fibersctl cancel --)" = "--no-wait" ]
	[ "$(comp fibersctl signal web T)" = "TERM" ]
	[ "$(comp fibersctl logs web -n "")" = "" ]
	[ "$(comp fibersctl reload "")" = "" ]
}

@test "the man page, --help and the completion cover every row of the method table" {
	# the rows of src/fibersd/protocol.h's FIBERSD_METHODS
	rows=$(sed -n '/^#define FIBERSD_METHODS(X)/,/^$/s/^[[:space:]]*X(\([a-z_-]*\),.*/\1/p' \
		"$BATS_TEST_DIRNAME/../../src/fibersd/protocol.h")
	[ "$(echo "$rows" | wc -l)" -ge 10 ]
	run "$FCTL" --help
	[ "$status" -eq 0 ]
	cmds=$(printf '%s\n' "$output" | sed -n 's/^  \([a-z]*\) .*/\1/p' | grep -v '^$')
	[ "$cmds" = "$rows" ]
	[ "$(comp fibersctl "")" = "$(echo $rows)" ]
	man=${top_builddir:-.}/man/built/fibersctl.1
	for c in $rows; do
		grep -Eq "^\.(B|BR|BI) \"?$c( |\"|$)" "$man" || { echo "fibersctl(1) lacks $c" >&2; false; }
	done
}

@test "a method with no prose in fibersctl(1) gets its entry from the table's template and help line" {
	src=$BATS_TEST_DIRNAME/../../man/fibersctl.1
	# --help's shape: a documented method (status) and one without prose (ping)
	printf '%s\n' 'Usage: fibersctl COMMAND' '' 'Commands:' \
		'  status [SCOPE] [-d|--depth N]  show tasks, scopes and processes' \
		'  ping [-x|--extra N]         check that the daemon answers' '' \
		'Options:' '  -h, --help          show this help' >"$BATS_TEST_TMPDIR/help"
	run awk -f "$BATS_TEST_DIRNAME/../../man/method-entries.awk" "$BATS_TEST_TMPDIR/help" "$src"
	[ "$status" -eq 0 ]
	# the generated entry closes the COMMANDS section, before the next one
	entry=$(printf '%s\n' "$output" | sed -n '/^\.SH COMMANDS/,/^\.SH /p' | tail -4)
	[ "$entry" = "$(printf '%s\n' '.TP' '.B "ping [\-x|\-\-extra N]"' 'Check that the daemon answers.' '.SH SCOPE ADDRESSES')" ]
	# everything else, status's prose included, is the page as written
	[ "$(printf '%s\n' "$output" | grep -v -x -e '\.TP' -e '\.B "ping .*"' -e 'Check that the daemon answers\.')" = "$(grep -v -x '\.TP' "$src")" ]
	[ "$(printf '%s\n' "$output" | grep -c -x '\.TP')" -eq "$(($(grep -c -x '\.TP' "$src") + 1))" ]
}
