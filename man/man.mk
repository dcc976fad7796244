## man/man.mk - the manual pages fibersctl(1), fibersd.conf(5), fibers(7)
## and fibersd(8); tests/bats/082-man.bats checks them against the code.
dist_man1_MANS = man/fibersctl.1
dist_man5_MANS = man/fibersd.conf.5
dist_man7_MANS = man/fibers.7
dist_man8_MANS = man/fibersd.8
