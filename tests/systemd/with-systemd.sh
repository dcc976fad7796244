#!/bin/bash
# tests/systemd/with-systemd.sh - boot a throw-away *real* systemd (PID 1,
# system manager, journald) in private namespaces on a host whose PID 1 is
# not systemd (a CI container, a build VM), install unit files / binaries
# into it, run a command inside, print its output, tear everything down.
# A generic tool: fibersd's real-systemd CI stage (tests/systemd/stage.sh)
# drives it, but it knows nothing about fibersd.  Needs root, util-linux
# (unshare, nsenter), systemd installed on the host, overlayfs and a cgroup2
# hierarchy (pure v2, or the "unified" part of a v1 hybrid layout).  No
# packages are installed.
#
# How: unshare mount/pid/uts/ipc/cgroup(/net) namespaces; root = overlayfs of
# the host "/" with a tmpfs upper layer (the host fs is never written); fresh
# /proc (with /proc/sys read-only, like systemd-nspawn), read-only /sys, a
# cgroup2 mount rooted at a private sub-cgroup, minimal /dev, tmpfs /run and
# /tmp; pivot_root; exec /lib/systemd/systemd as PID 1 with container=...;
# commands run through `nsenter --all`.
#
# Usage: with-systemd.sh [options] [--] COMMAND [ARG...]
#   -u, --unit FILE        install FILE as /etc/systemd/system/$(basename FILE)
#   -f, --file SRC[:DEST]  copy SRC (file or dir) to DEST in the guest
#                          (default DEST: /usr/local/bin/$(basename SRC))
#   -c, --command STRING   run STRING with `bash -c` instead of COMMAND
#   -t, --timeout SECS     bound for the whole run, boot+command+teardown (120)
#   -T, --target UNIT      unit to boot into (default with-systemd.target =
#                          sysinit.target + sockets.target; e.g. basic.target,
#                          multi-user.target to also start the host's services)
#   -j, --journal          print `journalctl -b` of the guest after the command
#   -v, --console          print the guest console (PID 1 boot/shutdown log) at exit
#       --host-net         share the host network namespace (default: private
#                          netns with only loopback; ports cannot clash)
#   -q, --quiet            no progress lines on stderr
#       --cleanup          only kill/remove what earlier runs left behind
#                          (a SIGKILLed runner leaves its guest up until then)
# Env: WITH_SYSTEMD_ARGS="--log-level=debug ..." extra arguments for the guest's
# systemd (see -v).
# Exit status: the command's; 124 if it ran into the timeout; 125 if the guest
# could not be brought up.  Runs are independent and can run concurrently;
# leftovers of a killed earlier run (cgroups, temp dirs) are swept at start.
set -euo pipefail

PROG=${0##*/}
SELF=$(readlink -f -- "$0")

# ---------------------------------------------------------------- stage 2 ---
# Runs as PID 1 of the new pid namespace, inside the private mount namespace.
# 2a: move into an empty cgroup and make it the root of a new cgroup namespace,
# so the guest systemd is alone in its (apparent) root cgroup.
if [[ ${1:-} == __stage2a ]]; then
  echo 0 > "$5/guest/cgroup.procs"
  exec unshare --cgroup -- bash "$0" __stage2 "$2" "$3" "$4"
fi
if [[ ${1:-} == __stage2 ]]; then
  W=$2 TARGET=$3 PRIVNET=$4
  R=$W/fs/root
  mkdir -p "$W/fs"
  mount -t tmpfs -o mode=0755 with-systemd "$W/fs"
  mkdir "$W/fs/upper" "$W/fs/work" "$R"
  mount -t overlay with-systemd -o "lowerdir=/,upperdir=$W/fs/upper,workdir=$W/fs/work" "$R"
  mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
  mount --bind "$R/proc/sys" "$R/proc/sys"            # no sysctl leaks to the host
  [[ $PRIVNET == 1 ]] && mount --bind "$R/proc/sys/net" "$R/proc/sys/net"  # netns-local
  mount -o remount,bind,ro "$R/proc/sys"
  if [[ -e $R/proc/sysrq-trigger ]]; then
    mount --bind "$R/proc/sysrq-trigger" "$R/proc/sysrq-trigger"
    mount -o remount,bind,ro "$R/proc/sysrq-trigger"
  fi
  mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
  mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup"
  mount -t tmpfs -o mode=0755,nosuid with-systemd "$R/dev"
  while read -r n maj min; do mknod -m 666 "$R/dev/$n" c "$maj" "$min"; done <<'EOF'
null 1 3
zero 1 5
full 1 7
random 1 8
urandom 1 9
tty 5 0
EOF
  mkdir -m 755 "$R/dev/pts" "$R/dev/mqueue"; mkdir -m 1777 "$R/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,nosuid,noexec devpts "$R/dev/pts"
  mount -t tmpfs -o mode=1777,nosuid,nodev with-systemd "$R/dev/shm"
  ln -s pts/ptmx "$R/dev/ptmx"; ln -s /proc/self/fd "$R/dev/fd"
  ln -s /proc/self/fd/0 "$R/dev/stdin"; ln -s /proc/self/fd/1 "$R/dev/stdout"
  ln -s /proc/self/fd/2 "$R/dev/stderr"
  # console: the pty that `script` gave us (logged to console.log), else /dev/null
  con=$(tty 2>/dev/null || true)
  [[ $con == /dev/pts/* ]] || con=/dev/null
  touch "$R/dev/console"; mount --bind "$con" "$R/dev/console"
  mount -t tmpfs -o mode=0755,nosuid,nodev with-systemd "$R/run"
  mount -t tmpfs -o mode=1777,nosuid,nodev with-systemd "$R/tmp"
  # guest identity and journald: volatile, never the host's /var/log/journal
  echo with-systemd > "$R/etc/hostname"
  tr -d '-' < /proc/sys/kernel/random/uuid > "$R/etc/machine-id"
  mkdir -p "$R/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\nRateLimitBurst=0\n' \
    > "$R/etc/systemd/journald.conf.d/50-with-systemd.conf"
  # default boot target: sysinit + sockets only (no timers, no host services)
  mkdir -p "$R/etc/systemd/system"
  printf '%s\n' '[Unit]' 'Description=with-systemd test target (sysinit + sockets)' \
    'Requires=sysinit.target sockets.target' 'After=sysinit.target sockets.target' \
    'AllowIsolate=yes' > "$R/etc/systemd/system/with-systemd.target"
  # host-global kernel interfaces the guest has no business mounting
  for u in sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount \
           sys-fs-fuse-connections.mount dev-hugepages.mount; do
    ln -sf /dev/null "$R/etc/systemd/system/$u"
  done
  # payload: NUL-separated SRC DEST pairs written by stage 1
  while IFS= read -r -d '' src && IFS= read -r -d '' dst; do
    mkdir -p "$R$(dirname -- "$dst")"
    cp -a -- "$src" "$R$dst"
  done < "$W/manifest"
  cd "$R"
  mkdir -p .with-systemd-oldroot
  pivot_root . .with-systemd-oldroot
  umount -l /.with-systemd-oldroot
  rmdir /.with-systemd-oldroot
  for sd in /lib/systemd/systemd /usr/lib/systemd/systemd; do [[ -x $sd ]] && break; done
  exec env -i container=with-systemd TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    "$sd" --system --unit="$TARGET" --show-status=yes ${WITH_SYSTEMD_ARGS:-}
fi

# ---------------------------------------------------------------- stage 1 ---
usage() { sed -n '/^# Usage:/,/^# Exit status/p' "$SELF" | sed 's/^# \{0,1\}//' >&2; exit 125; }
die() { echo "$PROG: $*" >&2; exit 125; }
say() { [[ $QUIET == 1 ]] || echo "$PROG: $*" >&2; }

TIMEOUT=120 TARGET=with-systemd.target JOURNAL=0 CONSOLE=0 PRIVNET=1 QUIET=0 CMDSTR='' CLEANUP_ONLY=0
UNITS=() FILES=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -u|--unit) UNITS+=("${2:?}"); shift 2 ;;
    -f|--file) FILES+=("${2:?}"); shift 2 ;;
    -c|--command) CMDSTR=${2?}; shift 2 ;;
    -t|--timeout) TIMEOUT=${2:?}; shift 2 ;;
    -T|--target) TARGET=${2:?}; shift 2 ;;
    -j|--journal) JOURNAL=1; shift ;;
    -v|--console) CONSOLE=1; shift ;;
    --host-net) PRIVNET=0; shift ;;
    -q|--quiet) QUIET=1; shift ;;
    --cleanup) CLEANUP_ONLY=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) echo "$PROG: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
if [[ -n $CMDSTR ]]; then CMD=(bash -c "$CMDSTR"); elif [[ $# -gt 0 ]]; then CMD=("$@");
else CMD=(systemctl status --no-pager); fi
[[ $TIMEOUT =~ ^[0-9]+$ && $TIMEOUT -ge 20 ]] || die "--timeout must be an integer >= 20"
[[ $(id -u) == 0 ]] || die "must run as root"
for t in unshare nsenter pivot_root mount timeout; do
  command -v "$t" >/dev/null || die "missing $t (util-linux/coreutils)"
done
[[ -x /lib/systemd/systemd || -x /usr/lib/systemd/systemd ]] || die "systemd is not installed"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || die "no overlayfs"

# cgroup2 hierarchy: pure v2 at /sys/fs/cgroup, or hybrid's /sys/fs/cgroup/unified
if [[ $(stat -fc %T /sys/fs/cgroup 2>/dev/null) == cgroup2fs ]]; then CG2=/sys/fs/cgroup
elif [[ $(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null) == cgroup2fs ]]; then CG2=/sys/fs/cgroup/unified
else die "no cgroup2 hierarchy mounted (need /sys/fs/cgroup or /sys/fs/cgroup/unified)"; fi
CGBASE=$CG2$(sed -n 's/^0:://p' /proc/self/cgroup); CGBASE=${CGBASE%/}
TMPROOT=${TMPDIR:-/tmp}

cg_kill_tree() {  # SIGKILL everything in a cgroup subtree
  [[ -d $1 ]] || return 0
  if [[ -e $1/cgroup.kill ]]; then echo 1 > "$1/cgroup.kill" 2>/dev/null || true
  else find "$1" -name cgroup.procs -exec cat {} + 2>/dev/null |
         while read -r p; do kill -9 "$p" 2>/dev/null || true; done; fi
}
cg_remove_tree() {  # rmdir a cgroup subtree once it is empty (bounded wait)
  [[ -d $1 ]] || return 0
  for _ in $(seq 50); do
    find "$1" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [[ -d $1 ]] || return 0
    sleep 0.1
  done
  echo "$PROG: warning: could not remove cgroup $1" >&2
}

# sweep leftovers of earlier runs whose launcher is gone (idempotence)
for d in "$CGBASE"/with-systemd.*; do
  [[ -d $d ]] || continue; p=${d##*.}
  [[ $p =~ ^[0-9]+$ ]] && ! kill -0 "$p" 2>/dev/null || continue
  say "removing stale $d"; cg_kill_tree "$d"; cg_remove_tree "$d"
done
for d in "$TMPROOT"/with-systemd.*.*; do
  [[ -d $d ]] || continue; p=${d#"$TMPROOT"/with-systemd.}; p=${p%%.*}
  [[ $p =~ ^[0-9]+$ ]] && ! kill -0 "$p" 2>/dev/null || continue
  rm -rf --one-file-system -- "$d"
done

[[ $CLEANUP_ONLY == 1 ]] && exit 0

T0=$SECONDS
CGDIR=$CGBASE/with-systemd.$$
WORK=$(mktemp -d "$TMPROOT/with-systemd.$$.XXXXXX")
UPID='' GPID='' CPID=''
children() { cat /proc/"$1"/task/*/children 2>/dev/null || true; }
cleanup() {
  local rc=$? _ n c
  trap - EXIT INT TERM HUP
  if [[ -n $CPID ]] && kill -0 "$CPID" 2>/dev/null; then
    # interrupted while the command runs: SIGKILL nsenter's child (in the guest)
    # so nsenter reaps it and exits; the rest is reparented to the guest's
    # PID 1 and ended by the power-off. (Were nsenter still around then, the
    # shutdown's SIGSTOP would freeze it with an unreaped child for 10s.)
    disown "$CPID" 2>/dev/null || true
    for n in $(children "$CPID"); do
      for c in $(children "$n"); do kill -KILL "$c" 2>/dev/null || true; done
    done
    for _ in $(seq 30); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.1; done
  fi
  if [[ -n $UPID ]] && kill -0 "$UPID" 2>/dev/null; then
    [[ -n $GPID ]] && kill -s SIGRTMIN+4 "$GPID" 2>/dev/null   # systemd: poweroff
    for _ in $(seq 100); do kill -0 "$UPID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$UPID" 2>/dev/null; then say "guest did not power off in 10s, killing"; cg_kill_tree "$CGDIR"; fi
    for _ in $(seq 50); do kill -0 "$UPID" 2>/dev/null || break; sleep 0.1; done
  fi
  [[ -n $UPID ]] && { wait "$UPID" 2>/dev/null || true; }
  cg_kill_tree "$CGDIR"; cg_remove_tree "$CGDIR"
  if [[ $CONSOLE == 1 ]]; then echo "----- guest console -----"; cat "$WORK/console.log"; fi
  rm -rf --one-file-system -- "$WORK"
  say "torn down after $((SECONDS - T0))s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP

# payload manifest (NUL-separated SRC DEST pairs), resolved on the host
: > "$WORK/manifest"; : > "$WORK/console.log"
add() { [[ -e $1 ]] || die "no such file: $1"; printf '%s\0%s\0' "$(readlink -f -- "$1")" "$2" >> "$WORK/manifest"; }
for u in "${UNITS[@]}"; do add "$u" "/etc/systemd/system/$(basename -- "$u")"; done
for f in "${FILES[@]}"; do
  if [[ $f == *:* ]]; then add "${f%%:*}" "${f#*:}"; else add "$f" "/usr/local/bin/$(basename -- "$f")"; fi
done

NS=(--mount --pid --fork --uts --ipc --propagation private)
[[ $PRIVNET == 1 ]] && NS+=(--net)
LAUNCH=(unshare "${NS[@]}" -- bash "$SELF" __stage2a "$WORK" "$TARGET" "$PRIVNET" "$CGDIR")
mkdir "$CGDIR" "$CGDIR/guest"
(
  echo "$BASHPID" > "$CGDIR/cgroup.procs"   # launcher here, guest in $CGDIR/guest
  if command -v script >/dev/null; then     # give the guest a pty console, logged
    exec script -qfec "exec $(printf '%q ' "${LAUNCH[@]}")" "$WORK/console.log" >/dev/null 2>&1
  fi
  exec "${LAUNCH[@]}" >> "$WORK/console.log" 2>&1
) < /dev/null &
UPID=$!
MYPIDNS=$(readlink /proc/self/ns/pid)
find_guest() {  # descendant of $UPID that is systemd in another pid namespace
  local todo=("$UPID") p c
  while [[ ${#todo[@]} -gt 0 ]]; do
    p=${todo[0]}; todo=("${todo[@]:1}")
    if [[ $(cat "/proc/$p/comm" 2>/dev/null) == systemd &&
          $(readlink "/proc/$p/ns/pid" 2>/dev/null) != "$MYPIDNS" ]]; then echo "$p"; return; fi
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do todo+=("$c"); done
  done
}

gx() { nsenter -t "$GPID" -a -r -w -- env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
         SYSTEMD_PAGER= SYSTEMD_COLORS=0 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
boot_fail() {
  echo "$PROG: $1; guest console log:" >&2; sed 's/^/  | /' "$WORK/console.log" >&2
  [[ -n $GPID ]] && gx journalctl -b --no-pager -n 60 2>/dev/null | sed 's/^/  J /' >&2
  exit 125
}
BOOT_LIMIT=$(( TIMEOUT / 2 < 30 ? TIMEOUT / 2 : 30 ))
state=
while (( SECONDS - T0 < BOOT_LIMIT )); do
  kill -0 "$UPID" 2>/dev/null || boot_fail "guest exited during boot"
  if [[ -z $GPID ]]; then
    GPID=$(find_guest)
    [[ -n $GPID ]] || { sleep 0.05; continue; }
  fi
  state=$(timeout 5 nsenter -t "$GPID" -a -r -w systemctl is-system-running 2>/dev/null) || true
  [[ $state == running || $state == degraded ]] && break
  [[ $state == maintenance ]] && boot_fail "guest fell into rescue/emergency mode"
  sleep 0.1
done
[[ $state == running || $state == degraded ]] || boot_fail "guest not up after ${BOOT_LIMIT}s (state '${state}')"
say "systemd up in $((SECONDS - T0))s (state $state, target $TARGET, guest pid $GPID)"
[[ $state == degraded ]] && gx systemctl --failed --no-pager --no-legend | sed "s/^/$PROG: failed unit: /" >&2

# The command's own timeout runs inside the guest, so that what it kills is
# reaped there (an orphan reparented to the host's init would hold up the
# guest's shutdown); the outer one is only a backstop.
LEFT=$(( TIMEOUT - (SECONDS - T0) - 16 )); (( LEFT > 0 )) || LEFT=1
# Run it in the background and `wait`, so a SIGTERM/SIGINT to us is handled at
# once (the teardown powers the guest off, which ends the command too).
set +e
timeout -k 2 $((LEFT + 6)) nsenter -t "$GPID" -a -r -w -- env -i HOME=/root TERM=dumb \
  LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  timeout -k 3 "$LEFT" "${CMD[@]}" <&0 &
CPID=$!
wait $CPID
rc=$?
CPID=
set -e
(( rc == 124 )) && echo "$PROG: command timed out after ${LEFT}s" >&2
if [[ $JOURNAL == 1 ]]; then
  echo "----- journalctl -b (guest) -----"; gx journalctl -b --no-pager -o short-monotonic || true
fi
exit "$rc"
