## src/fibersd/fibersd.mk - the fibersd host (C): command line, config,
## logging, systemd glue, per-task memory accounting, the `_fibersd` Lua
## module and its `control` sub-module (JSON via jansson, peer credentials,
## the status reply), and the fibersd program.

## Compiled-in directories; FIBERSD_BUILD_EXE lets the binary notice that it
## runs from the build tree and load lib/ from the source tree instead.
fibersd_dirs_CPPFLAGS = \
	-DFIBERSD_SYSCONFDIR='"$(sysconfdir)"' \
	-DFIBERSD_LUADIR='"$(luadir)"' \
	-DFIBERSD_LUACMODDIR='"$(luacmoddir)"' \
	-DFIBERSD_PKGLUADIR='"$(pkgdatadir)/lua"' \
	-DFIBERSD_SRCLIB='"$(abs_top_srcdir)/lib"' \
	-DFIBERSD_BUILD_EXE='"$(abs_top_builddir)/src/fibersd/fibersd"'

## The `_fibersd` sub-module `control`; its opener fd_open_control() is
## listed in the subs[] table of src/fibersd/lhost.c.
noinst_LTLIBRARIES += libfibersdcontrol.la
libfibersdcontrol_la_SOURCES = \
	src/fibersd/jarena.c src/fibersd/jarena.h src/fibersd/lcontrol.c src/fibersd/lcontrol.h \
	src/fibersd/ljson.c src/fibersd/lstatus.c src/fibersd/protocol.h
libfibersdcontrol_la_CFLAGS = $(AM_CFLAGS) $(LUA_CFLAGS) $(JANSSON_CFLAGS) -fPIC \
	-DFIBERSD_VERSION='"$(PACKAGE_VERSION)"'
libfibersdcontrol_la_LIBADD = $(JANSSON_LIBS)

## Everything but main.c is a convenience library, so unit tests can embed
## the `_fibersd` module in a Lua state of their own.
noinst_LTLIBRARIES += libfibersdhost.la
libfibersdhost_la_SOURCES = \
	src/fibersd/config.c src/fibersd/fibersd.h src/fibersd/journal.c src/fibersd/lhost.c \
	src/fibersd/notify.c src/fibersd/sock.c src/fibersd/task.c
libfibersdhost_la_CPPFLAGS = $(AM_CPPFLAGS) $(fibersd_dirs_CPPFLAGS)
libfibersdhost_la_CFLAGS = $(AM_CFLAGS) $(LUA_CFLAGS) $(INIH_CFLAGS) $(SYSTEMD_CFLAGS)
libfibersdhost_la_LIBADD = libfibersdcontrol.la libfiberslua.la $(INIH_LIBS) $(SYSTEMD_LIBS)

sbin_PROGRAMS += src/fibersd/fibersd
src_fibersd_fibersd_SOURCES = src/fibersd/main.c
src_fibersd_fibersd_CPPFLAGS = $(AM_CPPFLAGS) $(fibersd_dirs_CPPFLAGS)
src_fibersd_fibersd_CFLAGS = $(AM_CFLAGS) $(LUA_CFLAGS)
src_fibersd_fibersd_LDADD = libfibersdhost.la $(LUA_LIBS) $(INIH_LIBS) $(JANSSON_LIBS) $(SYSTEMD_LIBS) -lm
