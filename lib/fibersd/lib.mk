## lib/fibersd/lib.mk - the daemon's Lua policy, installed in
## $(pkgdatadir)/lua/fibersd: entry, tasks, the supervision table and the
## supervisor, reload, logging, the host seam and the control server.
luafibersddir = $(pkgdatadir)/lua/fibersd
dist_luafibersd_DATA = \
	lib/fibersd/cgroup.lua lib/fibersd/control.lua lib/fibersd/control_methods.lua \
	lib/fibersd/host.lua \
	lib/fibersd/init.lua lib/fibersd/introspect.lua lib/fibersd/log.lua \
	lib/fibersd/machine.lua lib/fibersd/main.lua lib/fibersd/methods.lua lib/fibersd/reload.lua \
	lib/fibersd/supervisor.lua lib/fibersd/task.lua
