## src/lua/lua.mk - the Lua bindings: libfiberslua (static, preloaded by
## fibersd and the test host) and the loadable module fibers/core.so (for a
## plain lua5.4).  `require 'fibers.core'` returns one table of private
## sub-modules, one file each, one line each in lcore.c.
noinst_LTLIBRARIES += libfiberslua.la
libfiberslua_la_SOURCES = \
	src/lua/compat.h src/lua/lbind.h src/lua/lcgroup.c src/lua/lchan.c src/lua/lcore.c \
	src/lua/lfiber.c src/lua/lfile.c src/lua/lfrec.c src/lua/lperform.c src/lua/lproc.c \
	src/lua/lsched.c src/lua/lsched.h src/lua/lsignal.c src/lua/lsocket.c src/lua/lstream.c \
	src/lua/lsys.c src/lua/lwait.c
libfiberslua_la_CFLAGS = $(AM_CFLAGS) $(LUA_CFLAGS) -fPIC
libfiberslua_la_LIBADD = libfiberscore.la

nobase_luacmod_LTLIBRARIES = fibers/core.la
fibers_core_la_SOURCES = src/lua/lmodule.c
fibers_core_la_CFLAGS = $(AM_CFLAGS) $(LUA_CFLAGS)
fibers_core_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared
fibers_core_la_LIBADD = libfiberslua.la

## The build tree layout mirrors the install layout so that
## LUA_CPATH="$(abs_top_builddir)/?.so" finds fibers/core.so.
ALL_LOCAL += fibers-core-link
fibers-core-link: fibers/core.la
	@test -L fibers/core.so || $(LN_S) .libs/core.so fibers/core.so
CLEANFILES += fibers/core.so

INSTALL_DATA_HOOKS += remove-core-la
remove-core-la:
	rm -f $(DESTDIR)$(luacmoddir)/fibers/core.la
UNINSTALL_HOOKS += uninstall-core-so
uninstall-core-so:
	rm -f $(DESTDIR)$(luacmoddir)/fibers/core.so
