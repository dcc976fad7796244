## man/man.mk - the manual pages fibersctl(1), fibersd.conf(5), fibers(7)
## and fibersd(8); tests/bats/082-man.bats checks them against the code.
## The pages in man/ name the configured directories with placeholders
## (SYSCONFDIR, DOCDIR, LUADIR, LUACMODDIR, PKGDATADIR); the installed
## copies, built in man/built/, have the real paths.
man1_MANS = man/built/fibersctl.1
man5_MANS = man/built/fibersd.conf.5
man7_MANS = man/built/fibers.7
man8_MANS = man/built/fibersd.8
EXTRA_DIST += man/fibersctl.1 man/fibersd.conf.5 man/fibers.7 man/fibersd.8 man/method-entries.awk
man_edit = $(SED) \
	-e 's|^SYSCONFDIR\b|$(sysconfdir)|' -e 's|\([^A-Z]\)SYSCONFDIR\b|\1$(sysconfdir)|g' \
	-e 's|\(\\f[BIRP]\)SYSCONFDIR\b|\1$(sysconfdir)|g' \
	-e 's|^DOCDIR\b|$(docdir)|' -e 's|\([^A-Z]\)DOCDIR\b|\1$(docdir)|g' \
	-e 's|^LUADIR\b|$(luadir)|' -e 's|\([^A-Z]\)LUADIR\b|\1$(luadir)|g' \
	-e 's|^LUACMODDIR\b|$(luacmoddir)|' -e 's|\([^A-Z]\)LUACMODDIR\b|\1$(luacmoddir)|g' \
	-e 's|^PKGDATADIR\b|$(pkgdatadir)|' -e 's|\([^A-Z]\)PKGDATADIR\b|\1$(pkgdatadir)|g'
# fibersctl(1)'s COMMANDS gain an entry, from the method table (through
# `fibersctl --help`), for every method the page has no prose for.
man/built/fibersctl.1: $(top_srcdir)/man/fibersctl.1 $(top_srcdir)/man/method-entries.awk \
		src/fibersctl/fibersctl$(EXEEXT) Makefile
	$(AM_V_GEN)$(MKDIR_P) man/built && src/fibersctl/fibersctl --help > $@.help && \
	$(AWK) -f $(top_srcdir)/man/method-entries.awk $@.help $(top_srcdir)/man/fibersctl.1 | \
	$(man_edit) > $@.tmp && rm -f $@.help && mv $@.tmp $@
man/built/fibersd.conf.5: $(top_srcdir)/man/fibersd.conf.5 Makefile
	$(AM_V_GEN)$(MKDIR_P) man/built && $(man_edit) $(top_srcdir)/man/fibersd.conf.5 > $@.tmp && mv $@.tmp $@
man/built/fibers.7: $(top_srcdir)/man/fibers.7 Makefile
	$(AM_V_GEN)$(MKDIR_P) man/built && $(man_edit) $(top_srcdir)/man/fibers.7 > $@.tmp && mv $@.tmp $@
man/built/fibersd.8: $(top_srcdir)/man/fibersd.8 Makefile
	$(AM_V_GEN)$(MKDIR_P) man/built && $(man_edit) $(top_srcdir)/man/fibersd.8 > $@.tmp && mv $@.tmp $@
CLEANFILES += man/built/fibersctl.1 man/built/fibersd.conf.5 man/built/fibers.7 man/built/fibersd.8
