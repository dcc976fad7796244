## fibersctl: the control client (src/fibersctl/), the shared protocol header,
## the daemon-side JSON/credentials binding (src/fibersd/lcontrol.c, linked
## into fibersd through libfibersdcontrol.la), the bash completion, and the
## tests of the control layer.

bin_PROGRAMS += src/fibersctl/fibersctl
src_fibersctl_fibersctl_SOURCES = src/fibersctl/fibersctl.h src/fibersctl/fibersctl.c \
	src/fibersctl/commands.c src/fibersctl/render.c src/fibersd/protocol.h \
	src/fibersd/jarena.c src/fibersd/jarena.h
src_fibersctl_fibersctl_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/fibersd \
	-DFIBERSD_CONFIG_FILE='"$(sysconfdir)/fibersd.conf"'
src_fibersctl_fibersctl_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(INIH_CFLAGS)
src_fibersctl_fibersctl_LDADD = $(JANSSON_LIBS) $(INIH_LIBS)

## The `_fibersd` sub-module `control` (JSON via jansson, peer credentials).
## fibersd links libfibersdcontrol.la; its opener fd_open_control() is listed
## in the subs[] table of src/fibersd/lhost.c.
noinst_LTLIBRARIES += libfibersdcontrol.la
libfibersdcontrol_la_SOURCES = src/fibersd/lcontrol.c src/fibersd/lcontrol.h src/fibersd/protocol.h \
	src/fibersd/ljson.c src/fibersd/lstatus.c src/fibersd/jarena.c src/fibersd/jarena.h
libfibersdcontrol_la_CFLAGS = $(AM_CFLAGS) $(LUA_CFLAGS) $(JANSSON_CFLAGS) -fPIC \
	-DFIBERSD_VERSION='"$(PACKAGE_VERSION)"'
libfibersdcontrol_la_LIBADD = $(JANSSON_LIBS)

## C unit test of the binding: embeds Lua, opens the sub-module, runs TAP checks.
check_PROGRAMS += tests/unit/json.t
tests_unit_json_t_SOURCES = tests/unit/json.c tests/unit/tap.h
tests_unit_json_t_CFLAGS = $(AM_CFLAGS) $(LUA_CFLAGS) -I$(top_srcdir)/src/fibersd
tests_unit_json_t_LDADD = libfibersdcontrol.la $(LUA_LIBS) -lm

CONTROL_BATS = tests/bats/050-fibersctl-client.bats tests/bats/051-completion.bats \
	tests/bats/060-control-status.bats tests/bats/061-control-cancel.bats \
	tests/bats/062-control-access.bats tests/bats/063-control-robust.bats \
	tests/bats/064-control-streams.bats
TESTS += tests/unit/json.t $(CONTROL_BATS)
EXTRA_DIST += $(CONTROL_BATS) tests/bats/fixtures/control/fake-server.sh \
	tests/bats/fixtures/control/ctl.bash tests/bats/fixtures/control/clients.lua

## The control server's Lua side (installed beside the rest of the policy).
luafibersdctldir = $(pkgdatadir)/lua/fibersd
dist_luafibersdctl_DATA = lib/fibersd/control.lua lib/fibersd/control_methods.lua \
	lib/fibersd/introspect.lua

## Bash completion, installed as `fibersctl` for bash-completion's on-demand
## loading (bashcompletiondir comes from configure: pkg-config
## bash-completion's completionsdir, else $(datadir)/bash-completion/completions).
EXTRA_DIST += completion/fibersctl.bash
install-data-local: install-fibersctl-completion
install-fibersctl-completion:
	$(MKDIR_P) $(DESTDIR)$(bashcompletiondir)
	$(INSTALL_DATA) $(srcdir)/completion/fibersctl.bash $(DESTDIR)$(bashcompletiondir)/fibersctl
UNINSTALL_HOOKS += uninstall-fibersctl-completion
uninstall-fibersctl-completion:
	rm -f $(DESTDIR)$(bashcompletiondir)/fibersctl
.PHONY: install-fibersctl-completion uninstall-fibersctl-completion

## The manual page (a test checks that it lists every command).
dist_man1_MANS = man/fibersctl.1

## libFuzzer target for the control request decoder: `make fuzz` (not in
## make check; needs clang with the fuzzer runtime).  FUZZ_TIME seconds per
## target; new corpus entries go to the build tree.  Other fuzz targets hook
## into `fuzz:` the same way.
FUZZ_CC = clang
FUZZ_TIME = 10
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
fuzz/control: $(srcdir)/fuzz/control.c $(srcdir)/src/fibersd/lcontrol.c $(srcdir)/src/fibersd/lcontrol.h \
		$(srcdir)/src/fibersd/ljson.c $(srcdir)/src/fibersd/lstatus.c $(srcdir)/src/fibersd/jarena.c \
		$(srcdir)/src/fibersd/jarena.h
	$(AM_V_CC)$(MKDIR_P) fuzz && $(FUZZ_CC) $(FUZZ_FLAGS) -I$(top_builddir) -I$(srcdir)/src/fibersd \
		$(LUA_CFLAGS) $(JANSSON_CFLAGS) -DFIBERSD_VERSION='"$(PACKAGE_VERSION)"' \
		$(srcdir)/fuzz/control.c $(srcdir)/src/fibersd/lcontrol.c $(srcdir)/src/fibersd/ljson.c \
		$(srcdir)/src/fibersd/lstatus.c $(srcdir)/src/fibersd/jarena.c $(LUA_LIBS) $(JANSSON_LIBS) -lm -o $@
fuzz-control: fuzz/control
	$(MKDIR_P) fuzz/corpus-control && cp $(srcdir)/fuzz/seeds/control/* fuzz/corpus-control/
	./fuzz/control -max_total_time=$(FUZZ_TIME) -max_len=65536 -detect_leaks=0 fuzz/corpus-control
fuzz: fuzz-control
.PHONY: fuzz fuzz-control
CLEANFILES += fuzz/control
EXTRA_DIST += fuzz/control.c fuzz/seeds/control/status fuzz/seeds/control/cancel \
	fuzz/seeds/control/truncated fuzz/seeds/control/array fuzz/seeds/control/garbage \
	fuzz/seeds/control/false
clean-local: clean-fuzz-control
clean-fuzz-control:
	rm -rf fuzz/corpus-control
.PHONY: clean-fuzz-control
