-- workers.lua - fan-out/fan-in over channels, with fail-fast.
--
-- Every `param.every` seconds a batch of jobs 1..`param.jobs` is handed
-- out to `param.workers` workers over a channel (fan-out); their results
-- come back over another channel and are summed (fan-in).  The batch runs
-- in its own child scope (fibers.run_scope), which gives fail-fast for
-- free: when one worker raises, the scope records that first error,
-- cancels the producer and the other workers (they are blocked in a
-- channel operation or a sleep, and return from it by cancellation), and
-- run_scope returns "failed" with the error.  The task logs it and goes on
-- with the next batch: a bad batch is not a bad task.
--
-- To see it fail, make one job bad: param.bad = 7 (the job with that
-- number raises in the batches listed by param.bad_batches, default 2).
--
-- Config:
--   [task:workers]
--   param.workers = 4
--   param.jobs = 10
--   param.every = 5
local fibers  = require 'fibers'
local channel = require 'fibers.channel'
local sleep   = require 'fibers.sleep'
local fibersd = require 'fibersd'

local _, task = ...
local p = task.params
local nworkers = tonumber(p.workers) or 4
local njobs    = tonumber(p.jobs) or 10
local every    = tonumber(p.every) or 5
local bad      = tonumber(p.bad)
local bad_batches = {}
for b in (p.bad_batches or '2'):gmatch('%d+') do bad_batches[tonumber(b)] = true end

-- One unit of work: here a square after a short pause (a real task would
-- run a Command, talk to a socket...).
local function work(batch, job)
  sleep.sleep(0.01 * (job % 3))
  if job == bad and bad_batches[batch] then
    error(string.format('job %d: bad input', job), 0)
  end
  return job * job
end

local function run_batch(batch)
  return fibers.run_scope(function(s)
    local jobs, results = channel.new(), channel.new()
    s:spawn(function()                       -- producer
      for j = 1, njobs do jobs:put(j) end
      for _ = 1, nworkers do jobs:put(false) end  -- one stop marker each
    end)
    for _ = 1, nworkers do
      s:spawn(function()                     -- worker
        while true do
          local j = jobs:get()
          if not j then return end
          results:put(work(batch, j))
        end
      end)
    end
    local sum = 0
    for _ = 1, njobs do sum = sum + results:get() end   -- fan-in
    return sum
  end)
end

fibersd.ready()
local batch = 0
while true do
  batch = batch + 1
  local status, err, report, sum = run_batch(batch)
  if status == 'ok' then
    fibersd.log.info('batch %d: %d jobs on %d workers, sum of squares %d', batch, njobs, nworkers, sum)
  else
    fibersd.log.warning('batch %d %s: %s (%d more errors)', batch, status, tostring(err),
      #report.extra_errors)
  end
  sleep.sleep(every)
end
