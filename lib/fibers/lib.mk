## lib/fibers/lib.mk - the pure-Lua library files (installed) and their tests.
dist_luafibers_DATA +=
dist_luafibersio_DATA +=

## op/scope/sleep + facade (lua-core)
dist_luafibers_DATA += lib/fibers/op.lua lib/fibers/scope.lua lib/fibers/sleep.lua
