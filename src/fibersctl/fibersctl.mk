## src/fibersctl/fibersctl.mk - the control client (the protocol constants
## come from src/fibersd/protocol.h).
bin_PROGRAMS += src/fibersctl/fibersctl
src_fibersctl_fibersctl_SOURCES = \
	src/fibersctl/commands.c src/fibersctl/fibersctl.c src/fibersctl/fibersctl.h \
	src/fibersctl/render.c src/fibersd/jarena.c src/fibersd/jarena.h src/fibersd/protocol.h
src_fibersctl_fibersctl_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/fibersd \
	-DFIBERSD_CONFIG_FILE='"$(sysconfdir)/fibersd.conf"'
src_fibersctl_fibersctl_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(INIH_CFLAGS)
src_fibersctl_fibersctl_LDADD = $(JANSSON_LIBS) $(INIH_LIBS)
