## src/core/io.mk - byte buffers and fd streams (core), their bindings
## (core.stream, core.socket), the fibers.io Lua modules, and their tests.
libfiberscore_la_SOURCES += src/core/buf.h src/core/buf.c src/core/stream.h src/core/stream.c

check_PROGRAMS += tests/unit/buf.t tests/unit/stream.t
tests_unit_buf_t_SOURCES = tests/unit/buf.c tests/unit/tap.h
tests_unit_buf_t_LDADD = libfiberscore.la
tests_unit_stream_t_SOURCES = tests/unit/stream.c tests/unit/tap.h
tests_unit_stream_t_LDADD = libfiberscore.la
TESTS += tests/unit/buf.t tests/unit/stream.t

libfiberslua_la_SOURCES += src/lua/lstream.c src/lua/lfile.c src/lua/lsocket.c

EXTRA_DIST += tests/lua/stream.lua tests/lua/file.lua tests/lua/socket.lua tests/lua/io-poll.sh
TESTS += tests/lua/stream.lua tests/lua/file.lua tests/lua/socket.lua tests/lua/io-poll.sh
