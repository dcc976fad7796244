## lib/fibers/lib.mk - the Lua library, installed in $(luadir): the facade
## lib/fibers.lua, lib/fibers/*.lua and lib/fibers/io/*.lua.
luafibersdir = $(luadir)/fibers
luafibersiodir = $(luadir)/fibers/io
dist_lua_DATA = lib/fibers.lua
dist_luafibers_DATA = \
	lib/fibers/alarm.lua lib/fibers/channel.lua lib/fibers/compat.lua lib/fibers/cond.lua \
	lib/fibers/exec.lua lib/fibers/exec_spec.lua lib/fibers/oneshot.lua lib/fibers/op.lua \
	lib/fibers/runtime.lua lib/fibers/scope.lua lib/fibers/signal.lua lib/fibers/sleep.lua \
	lib/fibers/testing.lua lib/fibers/wait.lua lib/fibers/waitgroup.lua
dist_luafibersio_DATA = \
	lib/fibers/io/exec.lua lib/fibers/io/file.lua lib/fibers/io/socket.lua \
	lib/fibers/io/stream.lua
