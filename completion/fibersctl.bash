# fibersctl.bash - bash completion for fibersctl(1): commands, options, and
# task names asked from the running daemon (`fibersctl --json status`).  The
# commands and their options are read from `fibersctl --help`, which prints
# the method table (src/fibersd/protocol.h): nothing here lists them.
# Install into bash-completion's completionsdir (or source it).

# "NAME ARGS..." lines of the commands, from fibersctl --help (once): each
# is "  NAME ARGS  help", two blanks before the help.
_fibersctl_table() {
	if [[ -z ${_fibersctl_cmds-} ]]; then
		_fibersctl_cmds=$(fibersctl --help 2>/dev/null |
			sed -n '/^Commands:/,/^$/{s/^  //; s/  .*//; /^[a-z]/p}')
	fi
	printf '%s\n' "$_fibersctl_cmds"
}

# The valued options of command $1 ("-n|--lines N" -> -n --lines).
_fibersctl_cmd_valued() {
	_fibersctl_table | awk -v c="$1" '$1 == c {
		for (i = 2; i < NF; i++) if ($i ~ /^\[-/ && $(i + 1) ~ /^[A-Z]+\]$/) {
			w = $i; gsub(/\[/, "", w); n = split(w, a, "|"); for (j = 1; j <= n; j++) print a[j] } }'
}

# The option words of command $1 ("-n|--lines N" -> -n --lines).
_fibersctl_cmd_opts() {
	_fibersctl_table | awk -v c="$1" '$1 == c {
		for (i = 2; i <= NF; i++) if ($i ~ /^\[-/) {
			w = $i; gsub(/[][]/, "", w); n = split(w, a, "|"); for (j = 1; j <= n; j++) print a[j] } }'
}

# The positional words of command $1, in order (SCOPE, TASK, SIG, ...).
_fibersctl_cmd_args() {
	_fibersctl_table | awk -v c="$1" '$1 == c {
		for (i = 2; i <= NF; i++) { w = $i; if (w ~ /^\[?[A-Z]+\]?$/) { gsub(/[][]/, "", w); print w } } }'
}

_fibersctl_tasks() {
	local -a opts=()
	local i
	# Reuse -S/-c given on the command line being completed.
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-S | --socket | -c | --config) opts+=("${COMP_WORDS[i]}" "${COMP_WORDS[i + 1]}") ;;
		esac
	done
	# With depth 0 the only "name" fields are the tasks' own.
	fibersctl "${opts[@]}" -t 2 --json status -d 0 2>/dev/null |
		grep -o '"name":"[A-Za-z0-9_.-]*"' | sed -e 's/^"name":"\(.*\)"$/\1/'
}

_fibersctl() {
	local cur prev words cword
	if declare -F _init_completion >/dev/null; then
		_init_completion || return
	else
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD - 1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	fi
	local commands
	commands=$(_fibersctl_table | cut -d' ' -f1)
	local options="-S --socket -c --config -j --json -t --timeout -V --version -h --help"

	case $prev in
	-S | --socket | -c | --config)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	-t | --timeout)
		return
		;;
	esac

	# Find the command word (the first non-option after the global options).
	local i cmd="" cmdpos=0
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-S | --socket | -c | --config | -t | --timeout) ((i++)) ;;
		-*) ;;
		*)
			cmd=${words[i]}
			cmdpos=$i
			break
			;;
		esac
	done

	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$options" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		fi
		return
	fi

	# after a valued option of the command: its number, nothing to offer
	local valued
	valued=" $(_fibersctl_cmd_valued "$cmd" | tr '\n' ' ') "
	if [[ $prev == -* && $valued == *" $prev "* ]]; then
		return
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_fibersctl_cmd_opts "$cmd")" -- "$cur"))
		return
	fi
	# which positional word is being completed (options and their values skipped)
	local argn=0 j
	for ((j = cmdpos + 1; j < cword; j++)); do
		if [[ ${words[j]} == -* ]]; then
			[[ $valued == *" ${words[j]} "* ]] && ((j++))
			continue
		fi
		argn=$((argn + 1))
	done
	local what
	what=$(_fibersctl_cmd_args "$cmd" | sed -n "$((argn + 1))p")
	case $what in
	SCOPE | TASK)
		COMPREPLY=($(compgen -W "$(_fibersctl_tasks)" -- "$cur"))
		;;
	SIG)
		COMPREPLY=($(compgen -W "HUP INT QUIT KILL USR1 USR2 TERM CONT STOP" -- "$cur"))
		;;
	esac
}

complete -F _fibersctl fibersctl
