## etc/etc.mk - the shipped configuration, printed from the key table
## (`fibersd --print-config`: every key commented out, with its help line
## and default); installed without overwriting an existing one, removed on
## uninstall only when unchanged.  tests/unit/config.t checks that it parses
## and means the built-in defaults.
etc/fibersd.conf: src/fibersd/fibersd$(EXEEXT)
	$(AM_V_GEN)$(MKDIR_P) etc && src/fibersd/fibersd --print-config > $@.tmp && mv $@.tmp $@
nodist_noinst_DATA = etc/fibersd.conf
CLEANFILES += etc/fibersd.conf
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
