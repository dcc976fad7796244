## lib/fibers/lib.mk - the pure-Lua library files (installed) and their tests.
dist_luafibers_DATA +=
dist_luafibersio_DATA +=
