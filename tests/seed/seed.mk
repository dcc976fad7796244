## tests/seed/seed.mk - the seed document's examples, verbatim, as tests.
