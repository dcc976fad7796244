# fibersctl.bash - bash completion for fibersctl(1): commands, options, and
# task names asked from the running daemon (`fibersctl --json status`).
# Install into bash-completion's completionsdir (or source it).

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
	local commands="status cancel start stop restart signal reload logs watch version"
	local options="-S --socket -c --config -j --json -t --timeout -V --version -h --help"

	case $prev in
	-S | --socket | -c | --config)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	-t | --timeout | -n | --lines | -d | --depth)
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

	local argn=$((cword - cmdpos))
	case $cmd in
	status | cancel | start | stop | restart | logs)
		if [[ $cur == -* ]]; then
			case $cmd in
			logs) COMPREPLY=($(compgen -W "-n -f --lines --follow" -- "$cur")) ;;
			status) COMPREPLY=($(compgen -W "-d --depth" -- "$cur")) ;;
			cancel) COMPREPLY=($(compgen -W "--no-wait" -- "$cur")) ;;
			esac
		elif ((argn == 1)); then
			COMPREPLY=($(compgen -W "$(_fibersctl_tasks)" -- "$cur"))
		fi
		;;
	signal)
		if ((argn == 1)); then
			COMPREPLY=($(compgen -W "$(_fibersctl_tasks)" -- "$cur"))
		elif ((argn == 2)); then
			COMPREPLY=($(compgen -W "HUP INT QUIT KILL USR1 USR2 TERM CONT STOP" -- "$cur"))
		fi
		;;
	esac
}

complete -F _fibersctl fibersctl
