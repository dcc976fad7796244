## tests/bats/bats.mk - the end-to-end tests: one real daemon per test in its
## own temp dir (helpers.bash; the control tests add fixtures/control/).
BATS_TESTS = \
	tests/bats/010-cli-config.bats tests/bats/010-journal.bats \
	tests/bats/020-startup.bats tests/bats/021-restart.bats tests/bats/022-reload.bats \
	tests/bats/023-shutdown.bats tests/bats/024-kill9.bats tests/bats/025-guards.bats \
	tests/bats/026-stop.bats tests/bats/027-systemd.bats tests/bats/028-examples.bats \
	tests/bats/029-examples.bats tests/bats/030-containment.bats \
	tests/bats/050-fibersctl-client.bats \
	tests/bats/051-completion.bats tests/bats/060-control-status.bats \
	tests/bats/061-control-cancel.bats tests/bats/062-control-access.bats \
	tests/bats/063-control-robust.bats tests/bats/064-control-streams.bats \
	tests/bats/080-install.bats tests/bats/082-man.bats tests/bats/090-faults.bats \
	tests/bats/091-attacks.bats
TESTS += $(BATS_TESTS)
EXTRA_DIST += $(BATS_TESTS) tests/bats/fixtures/control/clients.lua \
	tests/bats/fixtures/control/ctl.bash tests/bats/fixtures/control/fake-server.sh \
	tests/bats/helpers.bash
