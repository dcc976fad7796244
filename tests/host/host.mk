## tests/host/host.mk - the instrumented Lua host: the lua5.4 stand-alone
## interpreter equivalent, linked with the bindings statically so an ASan
## build can run the Lua tests.
check_PROGRAMS += tests/host/flua
tests_host_flua_SOURCES = tests/host/flua.c
tests_host_flua_CFLAGS = $(AM_CFLAGS) $(LUA_CFLAGS)
tests_host_flua_LDADD = libfiberslua.la $(LUA_LIBS) -lm
