## src/fibersd/fibersd.mk - the fibersd host (C): command line, config,
## logging, systemd glue, per-task memory accounting, the `_fibersd` Lua
## module; the daemon's Lua policy (lib/fibersd/*.lua, installed in
## $(pkgdatadir)/lua/fibersd); the shipped config; their tests.

## Everything but main.c is a convenience library, so unit tests can embed
## the `_fibersd` module in a Lua state of their own.
noinst_LTLIBRARIES += libfibersdhost.la
libfibersdhost_la_SOURCES = \
	src/fibersd/fibersd.h src/fibersd/config.c src/fibersd/journal.c \
	src/fibersd/notify.c src/fibersd/sock.c src/fibersd/task.c src/fibersd/lhost.c
## Compiled-in directories; FIBERSD_BUILD_EXE lets the binary notice that it
## runs from the build tree and load lib/ from the source tree instead.
fibersd_dirs_CPPFLAGS = \
	-DFIBERSD_SYSCONFDIR='"$(sysconfdir)"' \
	-DFIBERSD_LUADIR='"$(luadir)"' \
	-DFIBERSD_LUACMODDIR='"$(luacmoddir)"' \
	-DFIBERSD_PKGLUADIR='"$(pkgdatadir)/lua"' \
	-DFIBERSD_SRCLIB='"$(abs_top_srcdir)/lib"' \
	-DFIBERSD_BUILD_EXE='"$(abs_top_builddir)/src/fibersd/fibersd"'
libfibersdhost_la_CPPFLAGS = $(AM_CPPFLAGS) $(fibersd_dirs_CPPFLAGS)
libfibersdhost_la_CFLAGS = $(AM_CFLAGS) $(LUA_CFLAGS) $(INIH_CFLAGS) $(SYSTEMD_CFLAGS)
libfibersdhost_la_LIBADD = libfibersdcontrol.la libfiberslua.la $(INIH_LIBS) $(SYSTEMD_LIBS)

sbin_PROGRAMS += src/fibersd/fibersd
src_fibersd_fibersd_SOURCES = src/fibersd/main.c
src_fibersd_fibersd_CPPFLAGS = $(AM_CPPFLAGS) $(fibersd_dirs_CPPFLAGS)
src_fibersd_fibersd_CFLAGS = $(AM_CFLAGS) $(LUA_CFLAGS)
src_fibersd_fibersd_LDADD = libfibersdhost.la $(LUA_LIBS) $(INIH_LIBS) $(JANSSON_LIBS) $(SYSTEMD_LIBS) -lm

## The daemon's Lua policy, installed under $(pkgdatadir)/lua/fibersd.
luafibersddir = $(pkgdatadir)/lua/fibersd
dist_luafibersd_DATA =

## The shipped configuration: etc/fibersd.conf.in with @sysconfdir@ filled
## in; installed without overwriting an existing one, removed on uninstall
## only when unchanged.
etc/fibersd.conf: $(top_srcdir)/etc/fibersd.conf.in Makefile
	$(AM_V_GEN)$(MKDIR_P) etc && $(SED) -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
		$(top_srcdir)/etc/fibersd.conf.in > $@.tmp && mv $@.tmp $@
nodist_noinst_DATA = etc/fibersd.conf
CLEANFILES += etc/fibersd.conf
EXTRA_DIST += etc/fibersd.conf.in
install-data-hook: install-fibersd-conf
install-fibersd-conf: etc/fibersd.conf
	$(MKDIR_P) $(DESTDIR)$(sysconfdir) $(DESTDIR)$(sysconfdir)/fibers.d
	@if test -f $(DESTDIR)$(sysconfdir)/fibersd.conf; then \
		echo "keeping existing $(DESTDIR)$(sysconfdir)/fibersd.conf"; \
	else \
		echo " $(INSTALL_DATA) etc/fibersd.conf $(DESTDIR)$(sysconfdir)/fibersd.conf"; \
		$(INSTALL_DATA) etc/fibersd.conf $(DESTDIR)$(sysconfdir)/fibersd.conf; \
	fi
UNINSTALL_HOOKS += uninstall-fibersd-conf
uninstall-fibersd-conf:
	@if test -f etc/fibersd.conf && cmp -s etc/fibersd.conf $(DESTDIR)$(sysconfdir)/fibersd.conf; then \
		echo " rm -f $(DESTDIR)$(sysconfdir)/fibersd.conf"; \
		rm -f $(DESTDIR)$(sysconfdir)/fibersd.conf; \
	fi
	-rmdir $(DESTDIR)$(sysconfdir)/fibers.d 2>/dev/null
.PHONY: install-fibersd-conf

## ---- tests ------------------------------------------------------------------
check_PROGRAMS += tests/unit/config.t
tests_unit_config_t_SOURCES = tests/unit/config.c tests/unit/tap.h src/fibersd/config.c src/fibersd/fibersd.h
tests_unit_config_t_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/fibersd $(fibersd_dirs_CPPFLAGS)
tests_unit_config_t_CFLAGS = $(AM_CFLAGS) $(LUA_CFLAGS) $(INIH_CFLAGS)
tests_unit_config_t_LDADD = $(LUA_LIBS) $(INIH_LIBS) -lm
TESTS += tests/unit/config.t

check_PROGRAMS += tests/unit/fdtask.t
tests_unit_fdtask_t_SOURCES = tests/unit/fdtask.c tests/unit/tap.h
tests_unit_fdtask_t_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/fibersd
tests_unit_fdtask_t_CFLAGS = $(AM_CFLAGS) $(LUA_CFLAGS)
tests_unit_fdtask_t_LDADD = libfibersdhost.la $(LUA_LIBS) $(INIH_LIBS) $(JANSSON_LIBS) $(SYSTEMD_LIBS) -lm
TESTS += tests/unit/fdtask.t

## End-to-end: command line, config, logging targets (one daemon per test).
FIBERSD_HOST_BATS = tests/bats/010-cli-config.bats tests/bats/010-journal.bats
TESTS += $(FIBERSD_HOST_BATS)
EXTRA_DIST += tests/bats/helpers.bash $(FIBERSD_HOST_BATS)

## libFuzzer target for the config parser (`make fuzz`, as fuzz/control).
fuzz/config: $(srcdir)/fuzz/config.c $(srcdir)/src/fibersd/config.c $(srcdir)/src/fibersd/fibersd.h
	$(AM_V_CC)$(MKDIR_P) fuzz && $(FUZZ_CC) $(FUZZ_FLAGS) -I$(top_builddir) -I$(srcdir)/src/fibersd \
		$(LUA_CFLAGS) $(INIH_CFLAGS) $(srcdir)/fuzz/config.c $(srcdir)/src/fibersd/config.c \
		$(LUA_LIBS) $(INIH_LIBS) -lm -o $@
fuzz-config: fuzz/config
	$(MKDIR_P) fuzz/corpus-config && cp $(srcdir)/fuzz/seeds/config/* fuzz/corpus-config/
	./fuzz/config -max_total_time=$(FUZZ_TIME) -max_len=4096 -detect_leaks=0 fuzz/corpus-config
fuzz: fuzz-config
.PHONY: fuzz-config
CLEANFILES += fuzz/config
EXTRA_DIST += fuzz/config.c fuzz/seeds/config/shipped fuzz/seeds/config/errors
