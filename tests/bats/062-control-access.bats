#!/usr/bin/env bats
# 062-control-access.bats - roles on the control socket (doc/daemon.md §7) with
# numeric groups and setpriv, no real users: a control_group peer may read
# (status, logs, watch, version) but gets exit 4 on a mutation; an
# admin_group peer may mutate; a peer in neither group is refused by the
# daemon (logged with pid and uid); the socket file mode is the first gate.

load fixtures/control/ctl

setup() {
	fd_setup
	sed -i -e 's/^control_group = 0$/control_group = 4242/' -e 's/^admin_group = 0$/admin_group = 4343/' "$D/f.conf"
	fd_task svc <<'EOF2'
require('fibersd').ready()
require('fibers.sleep').sleep(1000)
EOF2
}
teardown() { fd_teardown; }

as() { # as UID GROUPS fibersctl-args...
	local uid=$1 groups=$2
	shift 2
	timeout 20 setpriv --reuid="$uid" --regid="$uid" --groups="$groups" "$FIBERSCTL" -S "$D/c.sock" "$@"
}

@test "a control_group peer reads (exit 0) and is refused mutations (exit 4)" {
	ctl_start
	ctl_wait_state svc ready
	[ "$(stat -c '%a %g' "$D/c.sock")" = "660 4242" ]
	run as 1000 4242 status
	[ "$status" -eq 0 ]
	[[ ${lines[1]} == "● svc ["*"]: ready, up "* ]]
	run as 1000 4242 logs svc
	[ "$status" -eq 0 ]
	run timeout 10 setpriv --reuid=1000 --regid=1000 --groups=4242 socat -t 0.5 - UNIX-CONNECT:"$D/c.sock" </dev/null
	[[ ${lines[0]} == '{"hello":{"daemon":"fibersd","protocol":1,"role":"read","version":"'* ]]
	run ctl_raw
	[[ ${lines[0]} == '{"hello":{"daemon":"fibersd","protocol":1,"role":"admin","version":"'* ]]
	run as 1000 4242 version
	[ "$status" -eq 0 ]
	run as 1000 4242 stop svc
	[ "$status" -eq 4 ]
	[ "$output" = "fibersctl: 'stop' needs the admin role (uid 1000 is read-only) (permission_denied)" ]
	run as 1000 4242 cancel svc
	[ "$status" -eq 4 ]
	run as 1000 4242 reload
	[ "$status" -eq 4 ]
	grep -q "control: refused 'stop' from read-only peer pid [0-9]* uid 1000" "$D/log"
	ctl_wait_state svc ready
}

@test "an admin_group peer may mutate" {
	ctl_start
	ctl_wait_state svc ready
	# the socket's group is control_group: admins reach it through that group too
	run as 1001 4242,4343 stop svc
	[ "$status" -eq 0 ]
	[ "$output" = "svc: stopped" ]
	run as 1001 4343,4242 start svc
	[ "$status" -eq 0 ]
}

@test "a peer in neither group is refused by the daemon and logged" {
	sed -i 's/^\[fibersd\]$/[fibersd]\ncontrol_mode = 0666/' "$D/f.conf"
	ctl_start
	run as 1000 5555 status
	[ "$status" -eq 4 ]
	[ "$output" = "fibersctl: permission denied: uid 1000 is in neither control_group nor admin_group (permission_denied)" ]
	grep -q "control: refused peer pid [0-9]* uid 1000: in neither control_group nor admin_group" "$D/log"
	run ctl status
	[ "$status" -eq 0 ]
}

@test "the socket file mode is the first gate" {
	ctl_start
	run as 1000 5555 status
	[ "$status" -eq 4 ]
	[[ $output == "fibersctl: cannot connect to $D/c.sock: Permission denied" ]]
}
