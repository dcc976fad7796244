-- pipeline.lua - two processes joined by a pipe (like `seq 1 N | awk ...`),
-- as a one-shot job.
--
-- No shell is involved: both programs are started by fibers.exec with
-- their stdio on pipes, and a fiber of this task copies the first one's
-- stdout into the second one's stdin.  (Handing one program's pipe stream
-- straight to the other would share a non-blocking file description,
-- which most programs do not expect.)  The copy loop is also the place to
-- count, filter or tee the data.
--
-- The three fibers run in a child scope: if any of them fails (a program
-- exits non-zero, a write fails), the scope fails fast, the other fibers
-- are cancelled and both programs are stopped; run_scope returns the
-- status and the first error.  When the chunk returns, the task is
-- "exited" (not restarted with the default restart = on-failure); an
-- error makes it "failed" and restarts it.
--
-- Config: [task:pipeline]  param.n = 100000
local fibers  = require 'fibers'
local exec    = require 'fibers.exec'
local fibersd = require 'fibersd'

local _, task = ...
local n = tonumber(task.params.n) or 100000

local function check(name, status, code)
  if status ~= 'exited' or code ~= 0 then
    error(string.format('%s: %s %s', name, status, tostring(code)))
  end
end

local status, err, _, sum, bytes = fibers.run_scope(function(s)
  local producer = exec.command{ 'seq', '1', tostring(n), stdout = 'pipe' }
  local consumer = exec.command{ 'awk', '{ s += $1 } END { printf "%.0f\\n", s }',
                                 stdin = 'pipe', stdout = 'pipe' }
  local from, to = producer:stdout_stream(), consumer:stdin_stream()
  local copied = 0

  -- The pump: chunks from producer to consumer; EOF closes the consumer's
  -- stdin so that it sees its own EOF.
  s:spawn(function()
    while true do
      local chunk = from:read_string{ min = 1, max = 65536 }
      if chunk == nil then break end
      local _, werr = to:write_string(chunk)
      if werr then error('write to awk: ' .. tostring(werr)) end
      copied = copied + #chunk
    end
    to:close()
    check('seq', fibers.perform(producer:run_op()))
  end)

  local out, st, code = fibers.perform(consumer:output_op())
  check('awk', st, code)
  return out:match('%d+'), copied
end)

if status ~= 'ok' then
  error('pipeline ' .. status .. ': ' .. tostring(err))
end
fibersd.log.notice('sum of 1..%d = %s (%d bytes through the pipe)', n, sum, bytes)
