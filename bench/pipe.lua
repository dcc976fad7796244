-- bench/pipe.lua - pipe throughput through buffered streams (doc/quality.md §2):
-- 256 MiB through fibers.io.file.pipe() between two fibers (a writer
-- fiber writing CHUNK-byte strings, a reader fiber reading up to CHUNK
-- bytes per read), against `dd if=/dev/zero bs=64k | cat > /dev/null` of
-- the same size, timed in the same run (best of 3 each, interleaved).
-- Prints: bench=pipe n=<bytes> value=<MiB/s> unit=MiB/s ref=<MiB/s> ratio=<x>
-- Uses only the public API (runs under lua5.4 and luajit).
-- Environment: BENCH_SCALE shrinks the size; PIPE_CHUNK sets CHUNK
-- (default 1 MiB: bulk transfers use big strings; 65536 mirrors dd's bs).
local common = require 'common'
local fibers = require 'fibers'
local file = require 'fibers.io.file'

local mib = common.n(256)
local total = mib * 1048576
local chunk_size = tonumber(os.getenv("PIPE_CHUNK") or "") or 1048576
local chunk = string.rep("x", chunk_size)

local function run_fibers()
  local secs, got
  fibers.run(function()
    local r, w = assert(file.pipe())
    local t0 = common.clock()
    fibers.spawn(function()
      local left = total
      while left > 0 do
        local n, err = w:write(left >= chunk_size and chunk or chunk:sub(1, left))
        if err then error(err) end
        left = left - n
      end
      assert(w:close())
    end)
    got = 0
    while true do
      local s = r:read(chunk_size)
      if not s then break end
      got = got + #s
    end
    secs = common.clock() - t0
    r:close()
  end)
  assert(got == total, "short transfer: " .. tostring(got))
  return secs
end

local function run_dd()
  local cmd = ("dd if=/dev/zero bs=64k count=%d 2>/dev/null | cat > /dev/null")
    :format(total / 65536)
  return common.time(function()
    local ok = os.execute(cmd)
    assert(ok == true or ok == 0, "dd | cat failed")
  end)
end

local best, ref = math.huge, math.huge
for _ = 1, 3 do
  best = math.min(best, run_fibers())
  ref = math.min(ref, run_dd())
end
common.report("pipe", total, mib / best, "MiB/s", mib / ref)
