## lib/fibers/lib.mk - the pure-Lua library files (installed) and their tests.
dist_luafibers_DATA +=
dist_luafibersio_DATA +=

## op/scope/sleep + facade
dist_luafibers_DATA += lib/fibers/op.lua lib/fibers/scope.lua lib/fibers/sleep.lua
EXTRA_DIST += tests/lua/op.lua tests/lua/scope.lua tests/lua/sleep.lua tests/lua/fibers.lua \
	doc/decisions.md
TESTS += tests/lua/op.lua tests/lua/scope.lua tests/lua/sleep.lua tests/lua/fibers.lua
EXTRA_DIST += tests/lua/regress/001-op-zero-results.lua
TESTS += tests/lua/regress/001-op-zero-results.lua
EXTRA_DIST += tests/lua/regress/002-channel-fast-path.lua
TESTS += tests/lua/regress/002-channel-fast-path.lua
EXTRA_DIST += tests/lua/regress/003-scope-fiber-frames.lua
TESTS += tests/lua/regress/003-scope-fiber-frames.lua

## channel/cond/oneshot/waitgroup/wait/alarm
dist_luafibers_DATA += lib/fibers/channel.lua lib/fibers/cond.lua \
	lib/fibers/oneshot.lua lib/fibers/waitgroup.lua lib/fibers/wait.lua \
	lib/fibers/alarm.lua lib/fibers/testing.lua
EXTRA_DIST += tests/lua/channel.lua tests/lua/cond.lua tests/lua/oneshot.lua \
	tests/lua/waitgroup.lua tests/lua/wait.lua tests/lua/alarm.lua tests/lua/testing.lua
TESTS += tests/lua/channel.lua tests/lua/cond.lua tests/lua/oneshot.lua \
	tests/lua/waitgroup.lua tests/lua/wait.lua tests/lua/alarm.lua tests/lua/testing.lua

## runtime + signal
dist_luafibers_DATA += lib/fibers/runtime.lua lib/fibers/signal.lua
EXTRA_DIST += tests/lua/runtime.lua tests/lua/signal.lua tests/lua/fastpath.lua
TESTS += tests/lua/runtime.lua tests/lua/signal.lua tests/lua/fastpath.lua

## streams, files, sockets
dist_luafibersio_DATA += lib/fibers/io/stream.lua lib/fibers/io/file.lua \
	lib/fibers/io/socket.lua

## exec (subprocesses)
dist_luafibers_DATA += lib/fibers/exec.lua lib/fibers/exec_spec.lua
dist_luafibersio_DATA += lib/fibers/io/exec.lua
