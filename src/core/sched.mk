## src/core/sched.mk - the scheduler core (loop, timers, poller, signals),
## its binding (core.sched) and its unit tests.
