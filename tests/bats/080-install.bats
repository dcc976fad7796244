#!/usr/bin/env bats
# 080-install.bats - `make install DESTDIR=...` of this build tree: exactly
# the layout of doc/daemon.md §9, the installed fibersd runs with the installed
# Lua modules (not the source tree's), the units pass `systemd-analyze
# verify` with their paths pointed into the staged install, an edited
# config survives a reinstall, and `make uninstall` leaves no file behind.
# One staged install per file (setup_file); each test reads it.

bats_require_minimum_version 1.5.0
load helpers

mk() { # make in the build tree, outside the calling make's jobserver
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
		timeout 300 make -s -C "$top_builddir" "$@"
}
# `make install` = `all` + install-exec + install-data.  Under `make check`
# everything is built already, and re-running `all` would redo its always-run
# steps (the fibers/core.so link) under the feet of concurrent tests.
mkinstall() { mk install-exec install-data "$@"; }

setup_file() {
	export S
	S=$(mktemp -d /tmp/inst.XXXXXX)
	mkinstall DESTDIR="$S" >"$S.log" 2>&1 || { cat "$S.log" >&2; return 1; }
	mk print-install-dirs >"$S.dirs"
}

teardown_file() { rm -rf "$S" "$S.log" "$S.dirs"; }

setup() {
	fd_setup
	# shellcheck disable=SC1090
	. "$S.dirs"
}
teardown() { fd_teardown; }

@test "make install DESTDIR produces exactly the expected tree" {
	{
		echo "$bindir/fibersctl"
		echo "$sbindir/fibersd"
		echo "$sysconfdir/fibersd.conf"
		echo "$luacmoddir/fibers/core.so"
		for f in "$top_srcdir"/lib/fibers.lua "$top_srcdir"/lib/fibers/*.lua "$top_srcdir"/lib/fibers/io/*.lua; do
			echo "$luadir/${f#"$top_srcdir"/lib/}"
		done
		for f in "$top_srcdir"/lib/fibersd/*.lua; do
			echo "$pkgdatadir/lua/fibersd/$(basename "$f")"
		done
		echo "$systemdsystemunitdir/fibersd.service"
		echo "$systemdsystemunitdir/fibersd.socket"
		echo "$sysusersdir/fibersd.conf"
		echo "$bashcompletiondir/fibersctl"
		echo "$docdir/hardening.conf"
		for f in README.md NEWS COPYING "$top_srcdir"/doc/*.md; do
			echo "$docdir/$(basename "$f")"
		done
		for f in "$top_srcdir"/scripts/examples/*.lua; do
			echo "$docdir/examples/$(basename "$f")"
		done
		echo "$mandir/man1/fibersctl.1"
		echo "$mandir/man5/fibersd.conf.5"
		echo "$mandir/man7/fibers.7"
		echo "$mandir/man8/fibersd.8"
	} | sort >"$D/expected"
	(cd "$S" && find . ! -type d | sed 's|^\.||' | sort) >"$D/got"
	diff -u "$D/expected" "$D/got"
	[ "$(wc -l <"$D/expected")" -ge 40 ]
	# the empty task directory; executables; no template markers left
	[ -d "$S$sysconfdir/fibers.d" ] && [ -z "$(ls -A "$S$sysconfdir/fibers.d")" ]
	[ -x "$S$sbindir/fibersd" ] && [ -x "$S$bindir/fibersctl" ]
	! grep -l '@[a-z]*@' "$S$systemdsystemunitdir"/* "$S$sysconfdir/fibersd.conf"
	grep -qx "ExecStart=$sbindir/fibersd -c $sysconfdir/fibersd.conf" "$S$systemdsystemunitdir/fibersd.service"
	grep -qx "ExecReload=$bindir/fibersctl -c $sysconfdir/fibersd.conf reload" "$S$systemdsystemunitdir/fibersd.service"
	# a bad configuration (exit 1) fails the unit at once, no restarts
	grep -qx 'RestartPreventExitStatus=1' "$S$systemdsystemunitdir/fibersd.service"
	grep -qx ";task_dir = $sysconfdir/fibers.d" "$S$sysconfdir/fibersd.conf"
	grep -qx 'g fibersd-admin -' "$S$sysusersdir/fibersd.conf"
}

@test "installed manual pages carry the configured paths; installed docs link nowhere outside" {
	for p in man1/fibersctl.1 man5/fibersd.conf.5 man7/fibers.7 man8/fibersd.8; do
		! grep -nE '(^|[^A-Z])(SYSCONFDIR|DOCDIR|LUADIR|LUACMODDIR|PKGDATADIR)([^A-Z]|$)' "$S$mandir/$p"
	done
	m8="$S$mandir/man8/fibersd.8"
	grep -qxF ".IR $sysconfdir /fibersd.conf);" "$m8"
	grep -qxF "# cp $docdir/examples/heartbeat.lua $sysconfdir/fibers.d/" "$m8"
	grep -qxF "    file: $sysconfdir/fibers.d/heartbeat.lua" "$m8"
	grep -qxF ".I $sysconfdir/fibersd.conf" "$S$mandir/man5/fibersd.conf.5"
	grep -qF ".BR task_dir \" = \\fI$sysconfdir\\fB/fibers.d\"" "$S$mandir/man5/fibersd.conf.5"
	# the README reads the same installed: no link out of the tree
	! grep -nE '\.\./|shared[/]' "$S$docdir/README.md"
	cmp "$top_srcdir/COPYING" "$S$docdir/COPYING"
}

@test "the installed fibersd runs an installed example with the installed Lua modules; fibersctl answers" {
	# The compiled-in module dirs point to the real prefix; on this stage the
	# modules come from lua_path.  Compiled-in dirs that exist on this machine
	# (a real install) are hidden with a private mount namespace.
	hide=""
	for d in "$luadir" "$pkgdatadir/lua"; do
		[ -e "$d" ] && hide="$hide mount -t tmpfs none '$d';"
	done
	wrap=()
	if [ -n "$hide" ]; then
		[ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null || skip "a real install in $luadir would shadow the staged one"
		wrap=(unshare -m sh -c "mount --make-rprivate /; $hide exec \"\$0\" \"\$@\"")
	fi
	cp "$S$docdir/examples/heartbeat.lua" "$D/t/"
	chmod 0644 "$D/t/heartbeat.lua"
	fd_task where <<'EOF2'
local fibersd = require 'fibersd'
fibersd.log.notice('fibers from %s', package.searchpath('fibers.scope', package.path))
fibersd.log.notice('fibersd from %s', package.searchpath('fibersd.main', package.path))
EOF2
	printf '[fibersd]\nlua_path = %s;%s\n[task:heartbeat]\nparam.interval = 0.2\n[task:where]\nrestart = no\n' \
		"$S$luadir" "$S$pkgdatadir/lua" >>"$D/f.conf"
	run "${wrap[@]}" "$S$sbindir/fibersd" -c "$D/f.conf" -d "$D/t" --check
	[ "$status" -eq 0 ]
	"${wrap[@]}" "$S$sbindir/fibersd" -c "$D/f.conf" -d "$D/t" -S "$D/c.sock" 3>&- </dev/null >>"$D/log" 2>&1 &
	FD_PID=$!
	fd_wait_log '^<6>heartbeat: beat 2 '
	grep -qx "<5>where: fibers from $S$luadir/fibers/scope.lua" "$D/log"
	grep -qx "<5>where: fibersd from $S$pkgdatadir/lua/fibersd/main.lua" "$D/log"
	run timeout 10 "$S$bindir/fibersctl" -S "$D/c.sock" status heartbeat
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "● heartbeat ["*"]: ready, up "* ]]
	run timeout 10 "$S$bindir/fibersctl" -S "$D/c.sock" version
	[ "$status" -eq 0 ]
	[[ "$output" == *0.1.0* ]]
}

@test "the installed units pass systemd-analyze verify (paths pointed into the stage); TimeoutStopSec > shutdown_timeout" {
	u="$S$systemdsystemunitdir"
	stop=$(sed -n 's/^TimeoutStopSec=//p' "$u/fibersd.service")
	timeout=$(sed -n 's/^;shutdown_timeout = //p' "$S$sysconfdir/fibersd.conf")
	[ -n "$stop" ] && [ -n "$timeout" ]
	[ "$stop" -gt "$timeout" ]
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
	mkdir "$D/units" "$D/units/fibersd.service.d"
	for f in fibersd.service fibersd.socket; do
		sed -e "s|=$sbindir/|=$S$sbindir/|" -e "s|=$bindir/|=$S$bindir/|" \
			-e "s| $sysconfdir/| $S$sysconfdir/|" "$u/$f" >"$D/units/$f"
	done
	grep -q "^ExecStart=$S" "$D/units/fibersd.service"
	# the Documentation= pages are looked up in the staged man dir
	run env MANPATH="$S$mandir" systemd-analyze verify "$D/units/fibersd.service" "$D/units/fibersd.socket"
	[ "$status" -eq 0 ] || { echo "$output" >&2; false; }
	[ -z "$output" ] || { echo "$output" >&2; false; }
	# with the optional stricter drop-in
	cp "$S$docdir/hardening.conf" "$D/units/fibersd.service.d/"
	run env MANPATH="$S$mandir" systemd-analyze verify "$D/units/fibersd.service"
	[ "$status" -eq 0 ] && [ -z "$output" ] || { echo "$output" >&2; false; }
}

@test "systemd-analyze security: the exposure levels reported in fibersd(8) are current" {
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
	v=$(systemd-analyze --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
	[ "$v" = 252 ] || skip "fibersd(8) reports systemd 252's ratings (this is $v)"
	mkdir -p "$D/units/fibersd.service.d"
	sed -e "s|=$sbindir/|=$S$sbindir/|" "$S$systemdsystemunitdir/fibersd.service" >"$D/units/fibersd.service"
	base=$(systemd-analyze security --offline=yes "$D/units/fibersd.service" | sed -n 's/.*Overall exposure level for fibersd.service: \([0-9.]*\).*/\1/p')
	cp "$S$docdir/hardening.conf" "$D/units/fibersd.service.d/"
	strict=$(systemd-analyze security --offline=yes "$D/units/fibersd.service" | sed -n 's/.*Overall exposure level for fibersd.service: \([0-9.]*\).*/\1/p')
	echo "# exposure: baseline $base, with hardening.conf $strict" >&3
	grep -Eq "^\.BR \"$base [A-Z]+\" ?\.?\$" "$top_srcdir/man/fibersd.8"
	grep -Eq "^\.BR \"$strict [A-Z]+\" ?\.?\$" "$top_srcdir/man/fibersd.8"
	grep -q "exposure $base" "$top_srcdir/README.md"
}

@test "reinstall keeps an edited config; make uninstall removes everything else" {
	I=$(mktemp -d /tmp/inst2.XXXXXX)
	mkinstall DESTDIR="$I" >/dev/null
	echo '; edited by the admin' >>"$I$sysconfdir/fibersd.conf"
	mkinstall DESTDIR="$I" >"$D/out"
	grep -q "keeping existing $I$sysconfdir/fibersd.conf" "$D/out"
	tail -1 "$I$sysconfdir/fibersd.conf" | grep -qx '; edited by the admin'
	mk uninstall DESTDIR="$I" >/dev/null
	run sh -c "cd '$I' && find . ! -type d"
	[ "$output" = "./${sysconfdir#/}/fibersd.conf" ]
	rm "$I$sysconfdir/fibersd.conf"
	# a pristine install uninstalls to no file at all
	mkinstall DESTDIR="$I" >/dev/null
	mk uninstall DESTDIR="$I" >/dev/null
	run sh -c "cd '$I' && find . ! -type d"
	[ -z "$output" ]
	rm -rf "$I"
}
