#!/bin/bash
# tests/systemd/stage.sh - the real-systemd stage of CI: fibersd as a system
# service under a real systemd (PID 1), installed the way a packager does.
#
#  1. builds a packager's tree from the working tree (every tracked file, as
#     it is now): ./configure --prefix=/usr/local --sysconfdir=/etc, make,
#     make install DESTDIR=<stage>/root;
#  2. boots a throw-away systemd with tests/systemd/with-systemd.sh (needs
#     root), copies the staged tree in (not under /tmp: the unit's
#     sandboxing may hide it) and runs tests/systemd/guest.sh there, which
#     installs it into / and checks, printing one line per check:
#     start -> active with READY after every task loaded; fibersctl status
#     as root and as a member of each group; three `systemctl reload`s (a
#     task file added, changed, removed), each active again within 5 s; the
#     journal's MESSAGE lines carry the task name and FIBERS_TASK= selects
#     them; the watchdog holds 2 x WatchdogSec under load; socket activation
#     through fibersd.socket; one cgroup per task (a setsid daemon that
#     ignores SIGTERM is listed as a stray and ends with `fibersctl stop`);
#     `systemctl stop` leaves no task process and no
#     "Killing process" line; a config error fails the unit once, with the
#     error in the journal, without restarts.
#
# It never skips: if systemd cannot be booted (not root, no systemd, no
# cgroup2...) it fails with exit status 1 and says why.
#
# Usage: tests/systemd/stage.sh [--destdir DIR]
#   --destdir DIR  use an existing `make install DESTDIR=DIR` tree of such a
#                  build instead of building one
# Env: SYSTEMD_STAGE_DIR  work directory (default: .ci-systemd in the tree)
#      SYSTEMD_STAGE_JOURNAL=1  print the guest's whole journal at the end
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
W=${SYSTEMD_STAGE_DIR:-$TOP/.ci-systemd}
DESTDIR=
T0=$SECONDS

say() { echo "systemd stage: $*"; }
die() {
	echo "systemd stage: FAILED: $*" >&2
	exit 1
}

while [[ $# -gt 0 ]]; do
	case $1 in
	--destdir) DESTDIR=$(cd "${2:?--destdir needs a directory}" && pwd); shift 2 ;;
	*) die "unknown argument '$1' (usage: $0 [--destdir DIR])" ;;
	esac
done

[[ $(id -u) == 0 ]] || die "must run as root to boot systemd (CI runs as root)"

if [[ -z $DESTDIR ]]; then
	say "building a packager's tree (--prefix=/usr/local --sysconfdir=/etc) in $W"
	rm -rf "$W"
	mkdir -p "$W/src"
	if git -C "$TOP" rev-parse --git-dir >/dev/null 2>&1; then
		(cd "$TOP" && git ls-files -z | tar --null -T - -c) | tar -C "$W/src" -x
	else # an unpacked tarball: the tree minus what a build left
		tar -C "$TOP" --exclude=./.ci-systemd -c . | tar -C "$W/src" -x
		if [[ -f $W/src/Makefile ]]; then make -C "$W/src" distclean >/dev/null 2>&1 || true; fi
	fi
	log=$W/build.log
	if ! (cd "$W/src" && { [[ -x configure ]] || ./autogen.sh; } && ./configure --prefix=/usr/local --sysconfdir=/etc --disable-dependency-tracking &&
		make -j"$(nproc)" && make install DESTDIR="$W/root") >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		die "the packager's build failed (log: $log)"
	fi
	DESTDIR=$W/root
	say "built and staged in $((SECONDS - T0))s"
fi
[[ -x $DESTDIR/usr/local/sbin/fibersd ]] || die "no usr/local/sbin/fibersd in $DESTDIR"

say "booting systemd ($(systemctl --version 2>/dev/null | head -n 1 || echo 'systemd ?'))"
set +e
"$HERE/with-systemd.sh" -t 240 ${SYSTEMD_STAGE_JOURNAL:+-j} \
	-f "$DESTDIR:/var/lib/fibersd-stage/root" \
	-f "$HERE/guest.sh:/var/lib/fibersd-stage/guest.sh" \
	-- bash /var/lib/fibersd-stage/guest.sh /var/lib/fibersd-stage
rc=$?
set -e
case $rc in
0) say "passed in $((SECONDS - T0))s" ;;
124) die "timed out (rc 124)" ;;
125) die "could not boot systemd (with-systemd.sh rc 125; see its messages above)" ;;
*) die "a check failed (rc $rc)" ;;
esac
