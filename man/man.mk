## man/man.mk - the manual pages fibersd(8), fibersd.conf(5) and fibers(7)
## (fibersctl(1) is listed in src/fibersctl/fibersctl.mk) and their tests.
## Owner: ship (issue 7).
