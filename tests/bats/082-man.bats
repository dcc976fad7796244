#!/usr/bin/env bats
# 082-man.bats - the manual pages in man/: they render without warnings and
# say what the code does (keys and defaults from the running daemon's key
# table, every library module, the seed's examples, every option).

load helpers

M="$top_srcdir/man"
PAGES="fibersd.8 fibersctl.1 fibersd.conf.5 fibers.7"

setup() { fd_setup; }
teardown() { fd_teardown; }

@test "every page renders with groff -ww and man --warnings without a warning" {
	command -v groff >/dev/null || skip "groff is not installed"
	for p in $PAGES; do
		run groff -ww -z -man "$M/$p"
		[ "$status" -eq 0 ]
		[ -z "$output" ] || { echo "$p: $output" >&2; false; }
		if command -v man >/dev/null; then
			out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$M/$p" 2>&1 >/dev/null)
			[ -z "$out" ] || { echo "$p: $out" >&2; false; }
		fi
	done
}

@test "fibersd.conf(5) documents every key of the daemon's key table, with its default, and no other" {
	# The table itself, from the daemon: fibersd.config_keys().
	fd_task keys <<'EOF2'
local fibersd = require 'fibersd'
for _, k in ipairs(fibersd.config_keys()) do
  fibersd.log.notice('key %s %s =%s', k.section, k.name, k.default and (' ' .. k.default) or '')
end
EOF2
	fd_conf <<'EOF2'
[task:keys]
restart = no
EOF2
	fd_start
	fd_wait_log '^<6>keys: exited$'
	# the page with roff escapes undone and SYSCONFDIR as compiled in
	sc=$("$FIBERSD" -h | sed -n 's|.*(default \(.*\)/fibersd.conf)$|\1|p')
	[ -n "$sc" ]
	sed -e 's/\\-/-/g' -e "s|\\\\fISYSCONFDIR\\\\fB|$sc|g" "$M/fibersd.conf.5" >"$D/conf.5"
	n=0
	while read -r section name rest; do
		n=$((n + 1))
		# the entry: .BR name " = default" (or " =" when empty)
		grep -qxF ".BR $name \"$(printf ' %s' "$rest")\"" "$D/conf.5" ||
			{ echo "missing or wrong: $section $name $rest" >&2; false; }
		case $section in
		fibersd) sec='^\.SH "\[fibersd\] SECTION"' ;;
		defaults) sec='^\.SH "\[defaults\] SECTION"' ;;
		task) sec='^\.SH "\[task:NAME\] SECTIONS"' ;;
		esac
		# ... in the right section: the nearest .SH above it
		got=$(awk -v key=".BR $name \"" '/^\.SH/ {sh=$0} index($0, key) == 1 {print sh; exit}' "$M/fibersd.conf.5")
		[[ "$got" =~ $sec ]] || { echo "$name under '$got'" >&2; false; }
	done < <(sed -n 's/^<5>keys: key //p' "$D/log")
	[ "$n" -ge 20 ]
	# no entry for a key that does not exist
	[ "$(grep -Ec '^\.BR [a-z_]+ " =' "$M/fibersd.conf.5")" -eq "$n" ]
	grep -q '^\.BI param\. KEY' "$M/fibersd.conf.5"
}

@test "fibers(7) describes every module of lib/fibers" {
	for f in "$top_srcdir"/lib/fibers.lua "$top_srcdir"/lib/fibers/*.lua "$top_srcdir"/lib/fibers/io/*.lua; do
		m=${f#"$top_srcdir"/lib/}
		m=${m%.lua}
		m=${m//\//.}
		grep -Eq "^\.SH \"(INTERNAL )?MODULES? (.*[ ,])?$m(,.*)?\"$" "$M/fibers.7" ||
			head -3 "$f" | grep -Eqi 'private|internal' ||
			{ [ "$m" = fibers.io.exec ] && grep -q '^\.BR fibers.io.exec )' "$M/fibers.7"; } ||
			{ echo "module $m is not described" >&2; false; }
	done
}

@test "fibers(7) carries the seed's three examples verbatim" {
	# the .EX blocks that start with require 'fibers', roff escapes undone
	awk '/^\.EX/ {b++; f = sprintf("%s/ex%d.lua", dir, b); next} /^\.EE/ {f = ""; next} f {print > f}' \
		dir="$D" "$M/fibers.7"
	n=0
	for i in 1 2 3; do
		for f in "$D"/ex*.lua; do
			sed -e 's/\\-/-/g' -e 's/\\\[u2019\]/’/g' -e 's/\\e/\\/g' "$f" >"$f.txt"
			if cmp -s "$f.txt" "$top_srcdir/tests/seed/example$i.lua"; then
				n=$((n + 1))
				break
			fi
		done
	done
	[ "$n" -eq 3 ]
}

@test "fibersd(8) lists every option of fibersd -h and every example script" {
	run "$FIBERSD" -h
	[ "$status" -eq 0 ]
	opts=$(printf '%s\n' "$output" | grep -Eo -- '--[a-z-]+' | sort -u)
	[ -n "$opts" ]
	for o in $opts; do
		grep -qF -- "${o//-/\\-}" "$M/fibersd.8" || { echo "option $o missing" >&2; false; }
	done
	for f in "$top_srcdir"/scripts/examples/*.lua; do
		grep -qx "\.B $(basename "$f")" "$M/fibersd.8" || { echo "example $(basename "$f") missing" >&2; false; }
	done
}
