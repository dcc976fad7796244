-- regress/001-op-zero-results.lua - a composite op whose winner yields no
-- values must perform to zero results (the try path once returned one nil),
-- and a sleeper due at t must have run when current_scheduler:run(t)
-- returns (timer tasks once only scheduled the fiber for the next turn).
local t = require 'tap'
local op = require 'fibers.op'
local sleep = require 'fibers.sleep'
local runtime = require 'fibers.runtime'

local o = op.choice(op.always(), op.never()):on_abort(function() end)
t.is(select('#', op.perform_raw(o)), 0, "composite try phase: zero results")
t.is(select('#', op.perform_raw(op.always():wrap(function() end))), 0, "wrapped primitive: zero results")

local sched = runtime.current_scheduler
local t0 = runtime.monotime()
local woke = false
runtime.spawn_raw(function() op.perform_raw(sleep.sleep_until_op(t0 + 1)); woke = true end)
sched:run(t0)
sched:run(t0 + 1)
t.is(woke, true, "sleeper due at t has run when run(t) returns")

t.done()
