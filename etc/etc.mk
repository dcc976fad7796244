## etc/etc.mk - the shipped configuration: etc/fibersd.conf.in with
## @sysconfdir@ filled in; installed without overwriting an existing one,
## removed on uninstall only when unchanged.  tests/unit/config.t checks it
## against the key table.
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
