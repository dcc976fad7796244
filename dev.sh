#!/bin/sh
# dev.sh - the README's quick start.  On a fresh Debian 12 machine:
#   ./dev.sh run     install missing build deps, build, run the main job
#   ./dev.sh check   install missing build deps, build, run the whole test suite
#   ./dev.sh deps    only install missing Debian packages ($EXTRA_PKGS too;
#                    ./dev.sh portability-deps adds the other Lua versions)
#   ./dev.sh build   deps + autogen/configure/make
# Extra configure flags come from $CONFIGURE_FLAGS (e.g. --enable-werror).
set -eu
cd "$(dirname "$0")"

# Debian packages needed to build and test (by name; nothing is downloaded
# from anywhere else).
PKGS="build-essential autoconf automake libtool pkg-config
liblua5.4-dev lua5.4 libinih-dev libjansson-dev libsystemd-dev
bats bats-support bats-assert socat util-linux procps systemd man-db"
# Extra packages for a stage: EXTRA_PKGS="..." ./dev.sh deps.  The other Lua
# interpreters for `make check-lua-all`: ./dev.sh portability-deps (.ci/run).
PORTABILITY_PKGS="lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev
luajit libluajit-5.1-dev"
# Optional hardening tools (make fuzz / fuzz-smoke, make lint, make
# check-valgrind): ./dev.sh hardening-deps.
HARDENING_PKGS="clang libclang-rt-14-dev cppcheck clang-tidy valgrind"
PKGS="$PKGS ${EXTRA_PKGS:-}"

say() { printf '%s\n' "dev.sh: $*" >&2; }

deps() {
	missing=""
	for p in $PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	say "installing missing Debian packages:$missing"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
}

build() {
	deps
	flags="${CONFIGURE_FLAGS:-}"
	if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ] ||
		[ -n "$(find . -name '*.mk' -newer configure -print -quit 2>/dev/null)" ]; then
		./autogen.sh
	fi
	if [ ! -f config.status ] || [ "$(cat .configure-flags 2>/dev/null)" != "$flags" ] ||
		[ configure -nt config.status ]; then
		# shellcheck disable=SC2086
		./configure $flags
		printf '%s' "$flags" > .configure-flags
	fi
	make -j"$(nproc)"
}

case "${1:-}" in
deps) deps ;;
portability-deps)
	PKGS="$PKGS $PORTABILITY_PKGS"
	deps
	;;
hardening-deps)
	PKGS="$PKGS $HARDENING_PKGS"
	deps
	;;
build) build ;;
check)
	build
	make -j"$(nproc)" check
	;;
run)
	build
	# fibersd in the foreground on scripts/examples/, staged into a temporary
	# directory (root-owned and 0755 when run as root, so the trust check of
	# task files passes even from a user's checkout); control socket in ./run.
	stage=$(mktemp -d /tmp/fibersd-examples.XXXXXX)
	trap 'rm -rf "$stage"' EXIT
	trap : INT TERM
	chmod 0755 "$stage"
	mkdir -m 0755 "$stage/tasks"
	cp scripts/examples/*.lua "$stage/tasks/"
	chmod 0644 "$stage"/tasks/*.lua
	printf '[fibersd]\ncontrol_group = %s\nadmin_group = %s\n' "$(id -g)" "$(id -g)" >"$stage/fibersd.conf"
	mkdir -p run
	say "fibersd on $stage/tasks; in another terminal: ./src/fibersctl/fibersctl -S run/control.sock status"
	say "Ctrl-C stops it (the seed examples run in 'make check' and ./tests/seed/run-examples.sh)"
	./src/fibersd/fibersd -c "$stage/fibersd.conf" -d "$stage/tasks" -S "$PWD/run/control.sock" || exit $?
	;;
*)
	echo "usage: $0 run|check|build|deps|portability-deps|hardening-deps" >&2
	exit 2
	;;
esac
