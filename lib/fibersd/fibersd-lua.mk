## lib/fibersd/fibersd-lua.mk - the daemon's Lua policy (lib/fibersd: entry,
## task loading, supervisor, reload, logging; not the control server, which
## src/fibersctl/fibersctl.mk lists), the example tasks and their tests.
dist_luafibersd_DATA += lib/fibersd/init.lua lib/fibersd/main.lua lib/fibersd/task.lua \
	lib/fibersd/machine.lua lib/fibersd/supervisor.lua lib/fibersd/reload.lua lib/fibersd/log.lua \
	lib/fibersd/host.lua
EXTRA_DIST += tests/lua/fibersd-machine.lua
TESTS += tests/lua/fibersd-machine.lua

## The examples people copy from: scripts/examples/examples.mk.

## End-to-end tests of the policy: one daemon per test in its own temp dir.
FIBERSD_POLICY_TESTS = tests/bats/020-startup.bats tests/bats/021-restart.bats \
	tests/bats/022-reload.bats tests/bats/023-shutdown.bats tests/bats/024-kill9.bats \
	tests/bats/025-guards.bats tests/bats/026-stop.bats tests/bats/027-systemd.bats \
	tests/bats/028-examples.bats
TESTS += $(FIBERSD_POLICY_TESTS)
EXTRA_DIST += $(FIBERSD_POLICY_TESTS)
