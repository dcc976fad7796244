## man/man.mk - the manual pages fibersd(8), fibersd.conf(5) and fibers(7)
## (fibersctl(1) is listed in src/fibersctl/fibersctl.mk) and their tests.
dist_man5_MANS = man/fibersd.conf.5
dist_man7_MANS = man/fibers.7
dist_man8_MANS = man/fibersd.8

## Every page renders without warnings; fibersd.conf(5) has every key of
## the daemon's key table with its default; fibers(7) every module and the
## seed's examples verbatim; fibersd(8) every option and example.
TESTS += tests/bats/082-man.bats
EXTRA_DIST += tests/bats/082-man.bats
