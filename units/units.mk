## units/units.mk - systemd units and the sysusers.d entry, with paths filled
## in from configure's directories at build time.
units_edit = $(SED) \
	-e 's|@sbindir[@]|$(sbindir)|g' \
	-e 's|@bindir[@]|$(bindir)|g' \
	-e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	-e 's|@localstatedir[@]|$(localstatedir)|g'

units/fibersd.service: $(top_srcdir)/units/fibersd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) units && $(units_edit) $(top_srcdir)/units/fibersd.service.in > $@.tmp && mv $@.tmp $@
units/fibersd.socket: $(top_srcdir)/units/fibersd.socket.in Makefile
	$(AM_V_GEN)$(MKDIR_P) units && $(units_edit) $(top_srcdir)/units/fibersd.socket.in > $@.tmp && mv $@.tmp $@

systemdsystemunit_DATA = units/fibersd.service units/fibersd.socket
CLEANFILES += units/fibersd.service units/fibersd.socket
EXTRA_DIST += units/fibersd.service.in units/fibersd.socket.in units/fibersd.sysusers

## The optional stricter sandbox (a drop-in documented in fibersd(8)).
dist_doc_DATA = units/hardening.conf

## The sysusers entry installs as sysusers.d/fibersd.conf; on a real install
## (no DESTDIR) the groups are created right away.
install-data-local: install-sysusers
install-sysusers:
	$(MKDIR_P) $(DESTDIR)$(sysusersdir)
	$(INSTALL_DATA) $(top_srcdir)/units/fibersd.sysusers $(DESTDIR)$(sysusersdir)/fibersd.conf
	@if test -z "$(DESTDIR)" && command -v systemd-sysusers >/dev/null 2>&1; then \
		echo "systemd-sysusers $(sysusersdir)/fibersd.conf"; \
		systemd-sysusers $(sysusersdir)/fibersd.conf || echo "warning: systemd-sysusers failed; create groups fibersd and fibersd-admin by hand" >&2; \
	fi
UNINSTALL_HOOKS += uninstall-sysusers
uninstall-sysusers:
	rm -f $(DESTDIR)$(sysusersdir)/fibersd.conf
.PHONY: install-sysusers

## The install directories, expanded (tests/bats/080-install.bats compares a
## staged install against them).
print-install-dirs:
	@echo "prefix=$(prefix)"
	@echo "bindir=$(bindir)"
	@echo "sbindir=$(sbindir)"
	@echo "sysconfdir=$(sysconfdir)"
	@echo "luadir=$(luadir)"
	@echo "luacmoddir=$(luacmoddir)"
	@echo "pkgdatadir=$(pkgdatadir)"
	@echo "docdir=$(docdir)"
	@echo "mandir=$(mandir)"
	@echo "systemdsystemunitdir=$(systemdsystemunitdir)"
	@echo "sysusersdir=$(sysusersdir)"
	@echo "bashcompletiondir=$(bashcompletiondir)"
.PHONY: print-install-dirs
