-- bench/spawn_proc.lua - doc/quality.md §2 "spawn + reap of `true`, sequential
-- and 50 concurrent": fibers.exec run_op against a C posix_spawnp + waitpid
-- loop (bench/spawn_ref.c, path in $SPAWN_REF) measured in the same run.
-- Rounds alternate reference and library and the best of each is kept, so
-- a noisy neighbour hurts both sides alike.  Also: Lua memory growth over
-- 10^5 short Commands in one scope (doc/library.md §0.8; make check runs 2000).
local fibers = require 'fibers'
local exec = require 'fibers.exec'
local B = require 'common'

local N = B.n(500)
local C = 50
local ROUNDS = 5
local NMEM = B.n(100000)

local function ref_run()
  local bin = os.getenv("SPAWN_REF")
  if not bin then return nil end
  local p = io.popen(bin .. " " .. N .. " " .. C)
  local out = p:read("*a")
  p:close()
  local seq, conc = out:match("seq=([%d.]+) conc=([%d.]+)")
  return tonumber(seq), tonumber(conc)
end

local function run_true()
  local st, code = fibers.perform(exec.command("true"):run_op())
  if st ~= "exited" or code ~= 0 then error("true: " .. tostring(st) .. " " .. tostring(code)) end
end

local function lib_run()
  local seq, conc
  fibers.run(function()
    local t0 = B.clock()
    for _ = 1, N do run_true() end
    seq = N / (B.clock() - t0)
    local left = N
    t0 = B.clock()
    fibers.run_scope(function(s)
      for _ = 1, C do
        s:spawn(function()
          while left > 0 do
            left = left - 1
            run_true()
          end
        end)
      end
    end)
    conc = N / (B.clock() - t0)
  end)
  return seq, conc
end

local best = { rs = 0, rc = 0, ls = 0, lc = 0 }
for _ = 1, ROUNDS do
  local rs, rc = ref_run()
  if rs then
    if rs > best.rs then best.rs = rs end
    if rc > best.rc then best.rc = rc end
  end
  local ls, lc = lib_run()
  if ls > best.ls then best.ls = ls end
  if lc > best.lc then best.lc = lc end
end
-- value and ref in spawns per second; ratio >= 0.9 is the target
B.report("spawn_proc_seq", N, best.ls, "per_s", best.rs)
B.report("spawn_proc_conc50", N, best.lc, "per_s", best.rc)

-- The same with cgroup placement, as fibersd places a task's Commands (the
-- host's task_defaults hand over the cgroup's fd): root and a writable
-- cgroup v2 hierarchy only; a private cgroup, removed afterwards.
do
  local core = require 'fibers.core'
  local CG = core.cgroup
  local own = core.proc.geteuid() == 0 and CG.path_of()
  local dir = own and own .. "/fibers-bench-" .. core.proc.getpid()
  if dir and CG.create(dir) then
    local fd = assert(CG.open(dir))
    exec._set_host({ task_defaults = function() return { cgroup = fd } end })
    local cg = { rs = 0, rc = 0, ls = 0, lc = 0 }
    for _ = 1, ROUNDS do
      local rs, rc = ref_run()
      if rs then
        if rs > cg.rs then cg.rs = rs end
        if rc > cg.rc then cg.rc = rc end
      end
      local ls, lc = lib_run()
      if ls > cg.ls then cg.ls = ls end
      if lc > cg.lc then cg.lc = lc end
    end
    exec._set_host(nil)
    core.proc.close(fd)
    CG.remove(dir)
    B.report("spawn_proc_cg_seq", N, cg.ls, "per_s", cg.rs)
    B.report("spawn_proc_cg_conc50", N, cg.lc, "per_s", cg.rc)
  else
    io.stderr:write("# spawn_proc_cg_* skipped: needs root and a writable cgroup v2 hierarchy\n")
  end
end

-- 10^5 short Commands in one scope: Lua heap growth after the first 1000
local h0, h1
fibers.run(function()
  fibers.run_scope(function()
    local left = NMEM
    fibers.run_scope(function(s)
      for _ = 1, C do
        s:spawn(function()
          while left > 0 do
            left = left - 1
            run_true()
            if NMEM - left == 1000 then h0 = B.heap() end
          end
        end)
      end
    end)
  end)
  h1 = B.heap()
end)
B.report("spawn_proc_mem", NMEM, ((h1 or 0) - (h0 or h1 or 0)) / 1024, "KiB", 0)
