#!/bin/bash
# tests/systemd/guest.sh - the checks of the real-systemd stage, run INSIDE
# the throw-away systemd that tests/systemd/stage.sh boots.  The staged
# packager's tree (make install DESTDIR=...) is at $STAGE/root; it is
# installed into the guest's / first, then fibersd runs as the system
# service, exactly as an operator would run it.  Every check prints one
# "ok N - ..." line; the first failure prints "not ok", the unit's journal
# and exits 1.
set -uo pipefail

STAGE=${1:?usage: guest.sh STAGE_DIR}
N=0
T0=$SECONDS
ok() { N=$((N + 1)); printf 'ok %d - %s (%ds)\n' "$N" "$1" "$((SECONDS - T0))"; }
fail() {
	N=$((N + 1))
	printf 'not ok %d - %s\n' "$N" "$1"
	echo "----- systemctl status fibersd -----"
	systemctl status fibersd --no-pager -l 2>&1 | sed 's/^/  | /'
	echo "----- what systemd said about fibersd (last 30) -----"
	journalctl -u fibersd -u fibersd.socket _PID=1 --no-pager -n 30 -o short-monotonic 2>&1 | sed 's/^/  S /'
	echo "----- journalctl -u fibersd -u fibersd.socket (last 80) -----"
	journalctl -u fibersd -u fibersd.socket --no-pager -n 80 -o short-monotonic 2>&1 | sed 's/^/  J /'
	exit 1
}
# check DESCRIPTION COMMAND...: ok when COMMAND succeeds
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}
# wait_for SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds
wait_for() {
	local end=$((SECONDS + $1))
	shift
	while ! "$@"; do
		((SECONDS < end)) || return 1
		sleep 0.1
	done
}
prop() { systemctl show -P "$1" fibersd; }
is_active() { [[ $(systemctl is-active fibersd) == active ]]; }
ctl() { timeout 20 fibersctl "$@" >/dev/null; }
as() { local u=$1; shift; timeout 20 runuser -u "$u" -- "$@" >/dev/null; }
# the processes of the service's cgroup (and its sub-cgroups: fibersd may
# give each task its own) other than fibersd itself
task_pids() {
	local cg main
	cg=$(prop ControlGroup)
	main=$(prop MainPID)
	[[ -n $cg && -d /sys/fs/cgroup$cg ]] || return 0
	find "/sys/fs/cgroup$cg" -name cgroup.procs -exec cat {} + | grep -vx "$main" || true
}
journal_msgs() { journalctl -u fibersd --no-pager -o cat "$@"; }

# ---- install the packager's tree, as an operator would -------------------
tar -C "$STAGE/root" -c . | tar -C / -x --keep-directory-symlink || fail "install the staged tree into /"
SYSUSERS=$(find "$STAGE/root" -path '*/sysusers.d/fibersd.conf' | head -n 1)
systemd-sysusers "${SYSUSERS#"$STAGE/root"}" || fail "systemd-sysusers"
useradd -M -N -G fibersd reader
useradd -M -N -G fibersd,fibersd-admin admin
useradd -M -N outsider
# Shorter watchdog for the stage (the unit ships 30 s): 2 x 5 s is held under
# load below (a busy task and 20 crash-looping ones, ~60 restarts a second).
WD=5
mkdir -p /etc/systemd/system/fibersd.service.d
printf '[Service]\nWatchdogSec=%d\n' "$WD" >/etc/systemd/system/fibersd.service.d/50-stage.conf
systemctl daemon-reload
check "the packager's tree is installed: fibersd, fibersctl, /etc/fibersd.conf, units, groups" \
	test -x /usr/local/sbin/fibersd -a -x /usr/local/bin/fibersctl -a -f /etc/fibersd.conf \
	-a -d /etc/fibers.d -a "$(systemctl show -P LoadState fibersd)" = loaded
check "systemd-analyze verify fibersd.service fibersd.socket" \
	systemd-analyze verify fibersd.service fibersd.socket

# ---- tasks ------------------------------------------------------------------
cp /usr/local/share/doc/fibersd/examples/heartbeat.lua /etc/fibers.d/
cat >/etc/fibers.d/slowload.lua <<'EOF'
-- 0.1 s of CPU before the first yield (well below max_slice even on a
-- loaded machine): the task is "loading" until then, and READY=1 must wait
local t = os.clock()
while os.clock() - t < 0.1 do end
require('fibersd').ready()
while true do require('fibers.sleep').sleep(10) end
EOF
cat >/etc/fibers.d/family.lua <<'EOF'
-- a Command whose group outlives its leader (background children), and a
-- long-running one: none may survive a stop
local exec = require 'fibers.exec'
local fibers = require 'fibers'
fibers.perform(exec.command{ 'sh', '-c', 'sleep 1000 & sleep 1000 >/dev/null 2>&1 & exit 0' }:run_op())
fibers.spawn(function() fibers.perform(exec.command{ 'sleep', '1000' }:run_op()) end)
require('fibersd').ready()
while true do require('fibers.sleep').sleep(10) end
EOF
cat >/etc/fibers.d/escape.lua <<'EOF'
-- a child that double-forks a setsid daemon ignoring SIGTERM (it leaves
-- every process group of the task, not its cgroup), and stays
local fibers = require 'fibers'
fibers.perform(require('fibers.exec').command{ 'sh', '-c',
  [[( setsid sh -c 'trap "" TERM; echo $$ >/run/escape.pid; exec sleep 1000' </dev/null >/dev/null 2>&1 & ); exec sleep 1000]] }:run_op())
EOF
printf '[task:escape]\nshutdown_grace = 1\n' >>/etc/fibersd.conf
chmod 0644 /etc/fibers.d/*.lua

# ---- start: active once every task is loaded ---------------------------------
check "systemctl start fibersd returns (Type=notify: READY=1)" timeout 30 systemctl start fibersd
check "fibersd.service is active" is_active
out=$(timeout 20 fibersctl status)
ntasks=$(grep -cE '^(●|○|×|↻) ' <<<"$out")
check "READY came after every task loaded: $ntasks tasks listed, none loading, slowload ready" \
	eval '[[ $ntasks -eq 4 ]] && ! grep -q ": loading" <<<"$out" && grep -Eq "^● slowload( \[[0-9]+\])?: ready" <<<"$out"'
check "STATUS= is the daemon's status line" eval '[[ $(prop StatusText) == *"tasks running"* ]]'

# ---- containment: one cgroup per task (Delegate=yes) ------------------------
CG=/sys/fs/cgroup$(prop ControlGroup)
check "fibersd moved itself to the unit's supervisor cgroup" grep -qx "$(prop MainPID)" "$CG/supervisor/cgroup.procs"
check "the escaped setsid daemon is in the task's cgroup" \
	wait_for 10 eval '[[ -s /run/escape.pid ]] && grep -qx "$(cat /run/escape.pid)" "$CG/task-escape/cgroup.procs"'
check "fibersctl status escape: containment cgroup, the daemon listed as a stray" \
	eval 'o=$(timeout 20 fibersctl status escape); [[ $o == *"containment: cgroup $CG/task-escape"* && $o == *"process $(cat /run/escape.pid) (stray): sleep 1000"* ]]'
esc=$(cat /run/escape.pid)
gone() { [[ ! -e /proc/$1 ]]; }
check "fibersctl stop escape ends the escaped daemon (cgroup.kill after its grace)" \
	eval 'ctl stop escape; wait_for 10 gone "$esc"'
check "the stopped task's cgroup is removed" wait_for 5 eval '[[ ! -d $CG/task-escape ]]'
rm -f /run/escape.pid
check "fibersctl start escape: a fresh cgroup and daemon" \
	eval 'ctl start escape; wait_for 10 eval '"'"'[[ -s /run/escape.pid ]] && grep -qx "$(cat /run/escape.pid)" "$CG/task-escape/cgroup.procs"'"'"
esc=$(cat /run/escape.pid)

# ---- fibersctl as root and as a member of each group -------------------------
check "fibersctl status as root: exit 0" ctl status
check "fibersctl status as a member of fibersd: exit 0" as reader fibersctl status
check "fibersctl status as a member of fibersd-admin: exit 0" as admin fibersctl status
as reader fibersctl restart heartbeat 2>/dev/null
rc=$?
check "fibersctl restart as a member of fibersd only: permission denied (exit 4, got $rc)" test "$rc" -eq 4
check "fibersctl restart as a member of fibersd-admin: exit 0" as admin fibersctl restart heartbeat
as outsider fibersctl status 2>/dev/null
rc=$?
check "fibersctl status as a user in neither group: permission denied (exit 4, got $rc)" test "$rc" -eq 4

# ---- systemctl reload, three times ------------------------------------------
reload_ok() { # DESCRIPTION: systemctl reload returns and the unit is active within 5 s
	local t=$SECONDS
	timeout 5 systemctl reload fibersd || return 1
	wait_for 5 is_active || return 1
	((SECONDS - t <= 5))
}
printf "require('fibersd').log.info('added v1')\nwhile true do require('fibers.sleep').sleep(10) end\n" >/etc/fibers.d/added.lua
chmod 0644 /etc/fibers.d/added.lua
check "reload 1 (task file added): active again within 5 s" reload_ok
check "reload 1: the new task runs" wait_for 5 eval 'journal_msgs | grep -qx "added: added v1"'
printf "require('fibersd').log.info('added v2')\nwhile true do require('fibers.sleep').sleep(10) end\n" >/etc/fibers.d/added.lua
check "reload 2 (task file changed): active again within 5 s" reload_ok
check "reload 2: the changed task runs its new version" wait_for 5 eval 'journal_msgs | grep -qx "added: added v2"'
rm /etc/fibers.d/added.lua
check "reload 3 (task file removed): active again within 5 s" reload_ok
ctl status added 2>/dev/null
rc=$?
check "reload 3: the removed task is gone (fibersctl status exit 3, got $rc)" test "$rc" -eq 3
check "no reload left the unit in 'reloading'" eval '[[ $(prop ActiveState) == active && $(prop SubState) == running ]]'

# ---- the journal ---------------------------------------------------------------
check "journal MESSAGE lines of a task start with its name (heartbeat: ...)" \
	eval 'journal_msgs | grep -q "^heartbeat: "'
check "journalctl FIBERS_TASK=heartbeat selects that task's lines, each named" \
	eval 'n=$(journalctl --no-pager -o cat FIBERS_TASK=heartbeat | wc -l); [[ $n -ge 2 ]] &&
		[[ $(journalctl --no-pager -o cat FIBERS_TASK=heartbeat | grep -vc "^heartbeat") -eq 0 ]]'
check "daemon lines carry no FIBERS_TASK (journalctl FIBERS_TASK=fibersd is empty)" \
	eval '[[ -z $(journalctl --no-pager -o cat FIBERS_TASK=fibersd) ]]'

# ---- the watchdog under load -----------------------------------------------------
main=$(prop MainPID)
cat >/etc/fibers.d/busy.lua <<'EOF'
-- CPU-bound slices of 0.1 s of CPU time (well below max_slice), then a
-- short sleep (an Op: where a stop or reload reaches the task)
local sleep = require 'fibers.sleep'
while true do
  local t = os.clock()
  while os.clock() - t < 0.1 do end
  sleep.sleep(0.001)
end
EOF
for i in $(seq 20); do
	printf "error('crash %d', 0)\n" "$i" >"/etc/fibers.d/crash$i.lua"
	printf '[task:crash%d]\nrestart_delay = 0.2\nrestart_max_delay = 0.5\nrestart_limit = 10000\n' "$i" >>/etc/fibersd.conf
done
chmod 0644 /etc/fibers.d/*.lua
check "reload with a busy task and 20 crash-looping tasks" reload_ok
sleep $((2 * WD))
check "the watchdog held for 2 x WatchdogSec ($((2 * WD)) s) under load: same MainPID, NRestarts=0, active" \
	eval '[[ $(prop MainPID) == "$main" && $(prop NRestarts) == 0 ]] && is_active'
check "no watchdog timeout in the journal" eval '! journalctl -u fibersd --no-pager | grep -qi "watchdog timeout"'
ctl status 2>/dev/null
rc=$?
check "fibersctl status exits non-zero while tasks crash-loop (got $rc)" test "$rc" -ne 0
rm /etc/fibers.d/busy.lua /etc/fibers.d/crash*.lua
sed -i '/^\[task:crash/,$d' /etc/fibersd.conf
check "reload back to the quiet task set" reload_ok
quiet() { [[ $(timeout 20 fibersctl status | grep -cE '^(●|○|×|↻) ') -eq 4 ]]; }
check "the busy and crash-looping tasks are gone within 5 s" wait_for 5 quiet

# ---- stop: nothing left, nothing killed by systemd ---------------------------------
pids=$(task_pids)
check "the tasks' processes are in the service's cgroup ($(wc -w <<<"$pids") of them)" test "$(wc -w <<<"$pids")" -ge 3
t=$SECONDS
check "systemctl stop fibersd" timeout 60 systemctl stop fibersd
check "the stop took less than 5 s (every task stops on SIGTERM; took $((SECONDS - t)) s)" test $((SECONDS - t)) -lt 5
left=
for p in $pids; do [[ -e /proc/$p && $(awk '/^State:/ {print $2}' "/proc/$p/status" 2>/dev/null) != Z ]] && left+=" $p"; done
check "no process of any task is left after stop${left:+ (left:$left)}" test -z "$left"
check "the escaped daemon (SIGTERM ignored) is gone too" gone "$esc"
check "systemd killed nothing (no 'Killing process' lines)" \
	eval '! journalctl --no-pager | grep -q "fibersd.service: Killing process"'
check "the unit stopped cleanly (inactive, Result=success)" \
	eval '[[ $(prop ActiveState) == inactive && $(prop Result) == success ]]'

# ---- socket activation -------------------------------------------------------------
check "systemctl start fibersd.socket" systemctl start fibersd.socket
check "the socket file is 0660 root:fibersd" \
	eval '[[ $(stat -c "%a %U:%G" /run/fibersd/control.sock) == "660 root:fibersd" ]]'
check "fibersctl version through the activated socket starts fibersd" ctl version
check "fibersd.service is active after the activation" wait_for 10 is_active
check "fibersd adopted the passed socket" wait_for 5 eval 'journal_msgs | grep -q "adopted control socket"'
check "a member of fibersd reaches it: fibersctl status exit 0" as reader fibersctl status
check "systemctl stop fibersd.socket fibersd" timeout 60 systemctl stop fibersd.socket fibersd

# ---- a config error: fails once, no restart ------------------------------------------
cp /etc/fibersd.conf /etc/fibersd.conf.good
printf '[fibersd]\nbogus_key = 1\n' >>/etc/fibersd.conf
line=$(wc -l </etc/fibersd.conf)
since=$(date '+%Y-%m-%d %H:%M:%S')
starts() { journalctl -u fibersd _PID=1 --no-pager -o cat | grep -c '^Starting fibersd.service'; }
starts0=$(starts)
check "systemctl start with a bad config fails" eval '! timeout 30 systemctl start fibersd'
sleep 3
check "the unit failed once and was not restarted (NRestarts=0, failed, exit status 1)" \
	eval '[[ $(prop NRestarts) == 0 && $(prop ActiveState) == failed && $(prop ExecMainStatus) == 1 ]]'
check "the error is in the journal with file:line" \
	eval 'journalctl -u fibersd --no-pager -o cat --since "$since" | grep -qF "/etc/fibersd.conf:$line: unknown key '"'"'bogus_key'"'"'"'
check "systemd started it exactly once" \
	eval '[[ $(( $(starts) - starts0 )) -eq 1 ]]'
cp /etc/fibersd.conf.good /etc/fibersd.conf
systemctl reset-failed fibersd

echo "# systemd stage: $N checks passed in $((SECONDS - T0))s"
