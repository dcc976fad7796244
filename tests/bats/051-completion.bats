#!/usr/bin/env bats
# 051-completion.bats - completion/fibersctl.bash: commands, options, per-command
# flags and task names taken from `fibersctl --json status -d 0` (a stand-in
# fibersctl function records how it was called).

setup() {
	source "$BATS_TEST_DIRNAME/../../completion/fibersctl.bash"
	CALLS=$(mktemp /tmp/comp.XXXXXX)
	fibersctl() {
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
	[ "$(comp fibersctl -S /x.sock "")" = "status cancel start stop restart signal reload logs watch version" ]
	[ ! -s "$CALLS" ]
}

@test "task names come from the daemon, with the same -S" {
	[ "$(comp fibersctl -S /x.sock stop "")" = "web db.main" ]
	[ "$(cat "$CALLS")" = "-S /x.sock -t 2 --json status -d 0" ]
	[ "$(comp fibersctl logs d)" = "db.main" ]
	[ "$(comp fibersctl status w)" = "web" ]
}

@test "per-command flags and signal names" {
	[ "$(comp fibersctl logs web -)" = "-n -f --lines --follow" ]
	[ "$(comp fibersctl cancel --)" = "--no-wait" ]
	[ "$(comp fibersctl signal web T)" = "TERM" ]
	[ "$(comp fibersctl logs web -n "")" = "" ]
	[ "$(comp fibersctl reload "")" = "" ]
}

@test "the man page and --help list every command of the table" {
	FCTL="${top_builddir:-$BATS_TEST_DIRNAME/../..}/src/fibersctl/fibersctl"
	run "$FCTL" --help
	[ "$status" -eq 0 ]
	cmds=$(printf '%s\n' "$output" | sed -n 's/^  \([a-z]*\) .*/\1/p' | grep -v '^$')
	[ "$(echo "$cmds" | wc -l)" -eq 10 ]
	man=$BATS_TEST_DIRNAME/../../man/fibersctl.1
	for c in $cmds; do
		grep -Eq "^\.(B|BR|BI) \"?$c( |\"|$)" "$man"
		[[ " $(sed -n 's/^[[:space:]]*local commands="\(.*\)"/\1/p' "$BATS_TEST_DIRNAME/../../completion/fibersctl.bash") " == *" $c "* ]]
	done
}
