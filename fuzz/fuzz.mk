## fuzz/fuzz.mk - libFuzzer targets (`make fuzz`, not in make check; needs
## clang with the fuzzer runtime): the control request decoder, the config
## parser and the stream line reader.  FUZZ_TIME seconds per target; seeds
## in fuzz/seeds/<target>/, new corpus entries go to the build tree.
##   make fuzz-smoke   every target for FUZZ_SMOKE_TIME (30) seconds: the
##                     bounded run used before releases and by .ci/run
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

## The config parser.
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

## The stream line reader.
fuzz/stream: $(srcdir)/fuzz/stream.c $(srcdir)/src/core/stream.c $(srcdir)/src/core/buf.c
	$(AM_V_CC)$(MKDIR_P) fuzz && $(FUZZ_CC) $(FUZZ_FLAGS) -I$(top_builddir) -I$(srcdir)/src/core \
		$(srcdir)/fuzz/stream.c $(srcdir)/src/core/stream.c $(srcdir)/src/core/buf.c -o $@
fuzz-stream: fuzz/stream
	$(MKDIR_P) fuzz/corpus-stream && cp $(srcdir)/fuzz/seeds/stream/* fuzz/corpus-stream/
	./fuzz/stream -max_total_time=$(FUZZ_TIME) -max_len=8192 fuzz/corpus-stream
fuzz: fuzz-stream
FUZZ_SMOKE_TIME = 30
fuzz-smoke:
	$(MAKE) $(AM_MAKEFLAGS) fuzz FUZZ_TIME=$(FUZZ_SMOKE_TIME)
.PHONY: fuzz-stream fuzz-smoke
CLEANFILES += fuzz/stream
EXTRA_DIST += fuzz/stream.c fuzz/seeds/stream/mixed fuzz/seeds/stream/terms fuzz/seeds/stream/tiny-pipe fuzz/seeds/stream/empty-find
clean-local: clean-fuzz-stream
clean-fuzz-stream:
	rm -rf fuzz/corpus-stream
.PHONY: clean-fuzz-stream
