## scripts/examples/examples.mk - the task scripts people copy from
## (installed in $(docdir)/examples) and their tests: every example runs
## under fibersd in tests/bats/028-examples.bats (the first four) and
## tests/bats/029-examples.bats (the rest).
fibersdexamplesdir = $(docdir)/examples
dist_fibersdexamples_DATA = \
	scripts/examples/drain.lua scripts/examples/fifo.lua scripts/examples/flaky.lua \
	scripts/examples/heartbeat.lua scripts/examples/linesrv.lua \
	scripts/examples/periodic.lua scripts/examples/pipeline.lua scripts/examples/server.lua \
	scripts/examples/subprocess.lua scripts/examples/workers.lua
