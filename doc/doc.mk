## doc/doc.mk - the project's own documentation: the contract pages
## (library, daemon, quality), the decisions the contract left open, the
## fault-test map, portability notes and the library bugs found by fibersd.
## Installed in the doc directory with README.md, NEWS and COPYING (units/
## adds hardening.conf, scripts/examples/ the examples).
dist_doc_DATA += README.md NEWS COPYING doc/bugs-for-library.md doc/daemon.md doc/decisions.md \
	doc/faults.md doc/library.md doc/portability.md doc/quality.md
