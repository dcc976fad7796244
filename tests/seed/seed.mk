## tests/seed/seed.mk - the seed document's examples, verbatim, as tests.
## seed.sh runs each example under $(LUA_RUNNER) and checks its stdout,
## stderr and exit status byte for byte; run-examples.sh is `./dev.sh run`.
TESTS += tests/seed/seed.sh
EXTRA_DIST += tests/seed/seed.sh tests/seed/run-examples.sh \
	tests/seed/example1.lua tests/seed/example2.lua tests/seed/example3.lua
