## bench/bench.mk - `make bench`: the benchmarks of doc/quality.md §2: library
## (ping-pong, spawn, parked fibers, timers, choice, 1 ms sleeps, RSS over
## 10^7 performs, pipe, loopback TCP, spawn_proc) and fibersd rows (bench/daemon.sh).
## Not part of `make check`; see bench/run.sh and bench/README.md.  Writes
## bench/results.md in the source tree.
bench_lua_files = bench/common.lua bench/pingpong.lua bench/spawn.lua \
	bench/parked.lua bench/timers.lua bench/choice.lua bench/sleep1ms.lua \
	bench/performs.lua
bench_lua_files += bench/pipe.lua bench/tcp.lua
EXTRA_DIST += bench/run.sh bench/nanosleep.c $(bench_lua_files)
EXTRA_DIST += bench/daemon.sh bench/README.md bench/results.md
CLEANFILES += bench/nanosleep$(EXEEXT)

## The C reference for the 1 ms sleep row (a clock_nanosleep loop).
bench/nanosleep$(EXEEXT): $(top_srcdir)/bench/nanosleep.c
	@$(MKDIR_P) bench
	$(AM_V_CC)$(CC) $(CPPFLAGS) $(CFLAGS) -O2 -o $@ $(top_srcdir)/bench/nanosleep.c

## spawn + reap reference for bench/spawn_proc.lua (posix_spawnp + waitpid).
EXTRA_DIST += bench/spawn_proc.lua bench/spawn_ref.c
CLEANFILES += bench/spawn_ref$(EXEEXT)
bench/spawn_ref$(EXEEXT): $(top_srcdir)/bench/spawn_ref.c
	@$(MKDIR_P) bench
	$(AM_V_CC)$(CC) $(CPPFLAGS) $(CFLAGS) -O2 -o $@ $(top_srcdir)/bench/spawn_ref.c

bench: all bench/nanosleep$(EXEEXT) bench/spawn_ref$(EXEEXT)
	$(SHELL) $(top_srcdir)/bench/run.sh '$(abs_top_srcdir)' '$(abs_top_builddir)' '$(LUA)'
