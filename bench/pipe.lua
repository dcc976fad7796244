-- bench/pipe.lua - pipe throughput through buffered streams (quality.md §2):
-- N MiB through fibers.io.file.pipe() between two fibers (64 KiB writes,
-- reads of up to 1 MiB), against `dd if=/dev/zero bs=64k | cat >/dev/null`
-- of the same size, timed in the same run.  Prints
--   bench=pipe n=<bytes> value=<MiB/s> unit=MiB/s ref=<MiB/s> ratio=<x>
-- Uses only the public API (runs under lua5.4 and luajit).
-- Usage: lua bench/pipe.lua [MiB=256]
local fibers = require 'fibers'
local file = require 'fibers.io.file'
local monotime = require('fibers.core').sys.monotime

local mib = tonumber(arg and arg[1]) or 256
local total = mib * 1048576
local chunk = string.rep("x", 65536)

local function run_fibers()
  local t0, t1
  local got = 0
  fibers.run(function()
    local r, w = assert(file.pipe())
    t0 = monotime()
    fibers.spawn(function()
      for _ = 1, total / #chunk do
        local n, err = w:write(chunk)
        if not n then error(err) end
      end
      w:close()
    end)
    while true do
      local s = r:read(1048576)
      if not s then break end
      got = got + #s
    end
    t1 = monotime()
    r:close()
  end)
  assert(got == total, "short transfer: " .. got)
  return t1 - t0
end

local function run_dd()
  local cmd = ("dd if=/dev/zero bs=64k count=%d 2>/dev/null | cat > /dev/null"):format(total / 65536)
  local t0 = monotime()
  local ok = os.execute(cmd)
  local t1 = monotime()
  assert(ok == true or ok == 0, "dd | cat failed")
  return t1 - t0
end

-- Best of three for both, interleaved, so both see the same machine load.
local best, ref = math.huge, math.huge
for _ = 1, 3 do
  best = math.min(best, run_fibers())
  ref = math.min(ref, run_dd())
end
local value, refv = mib / best, mib / ref
print(("bench=pipe n=%d value=%.0f unit=MiB/s ref=%.0f ratio=%.2f"):format(
  total, value, refv, value / refv))
