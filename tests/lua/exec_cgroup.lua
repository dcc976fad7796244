-- tests/lua/exec_cgroup.lua - cgroup placement of fibers.exec: the
-- Command field `cgroup` (a cgroup v2 directory) and the host's per-scope
-- task_defaults (cgroup fd, cwd, env, umask) under a Command's own
-- settings.  Needs root and a writable cgroup v2 hierarchy (skips with the
-- reason otherwise); works in a private cgroup it removes.
local t = require 'tap'
local fibers = require 'fibers'
local exec = require 'fibers.exec'
local core = require 'fibers.core'
local CG = core.cgroup

if core.proc.geteuid() ~= 0 then t.skip_all("needs root (cgroup v2 writes)") end
local own, err = CG.path_of()
if not own then t.skip_all("no cgroup v2 hierarchy: " .. tostring(err)) end
local dir = own .. "/fibers-lua-" .. core.proc.getpid()
local okc, cerr = CG.create(dir)
if not okc then t.skip_all("cgroup v2 not writable: " .. tostring(cerr)) end

local function cgroup_line(out)
  return out:match("0::([^\n]*)")
end

fibers.run(function()
  local out, st = fibers.perform(exec.command{ "cat", "/proc/self/cgroup", cgroup = dir }:output_op())
  t.is(st, "exited", "child with cgroup = dir ran")
  t.is(cgroup_line(out):match("[^/]+$"), dir:match("[^/]+$"), "it ran in that cgroup")

  local _, st2, code, _, e = fibers.perform(exec.command{ "true", cgroup = dir .. "/missing" }:output_op())
  t.is(st2, "failed", "a missing cgroup directory: failed")
  t.like(e, "^cgroup .*/missing: No such file or directory$", "... naming it")
  t.is(code, nil, "... without a child")
  t.raises(function() exec.command{ "true", cgroup = 5 } end, "cgroup must be a string", "cgroup must be a string")

  -- the host's per-scope defaults; the Command's own fields win
  local fd = assert(CG.open(dir))
  exec._set_host({ task_defaults = function()
    return { cgroup = fd, cwd = "/tmp", env = { FIBERS_T = "task", OTHER = "x" }, umask = 18 }
  end })
  out = fibers.perform(exec.command{ "sh", "-c", "cat /proc/self/cgroup; pwd; echo $FIBERS_T $OTHER; umask" }:output_op())
  t.is(cgroup_line(out):match("[^/]+$"), dir:match("[^/]+$"), "task_defaults: the cgroup")
  t.like(out, "\n/tmp\ntask x\n0022\n$", "task_defaults: cwd, env, umask")
  out = fibers.perform(exec.command{ "sh", "-c", "pwd; echo $FIBERS_T $OTHER; umask", cwd = "/", env = { FIBERS_T = "own" },
    umask = "077" }:output_op())
  t.is(out, "/\nown x\n0077\n", "a Command's own cwd, env and umask win")
  exec._set_host(nil)
  core.proc.close(fd)
end)

t.ok(CG.remove(dir), "private cgroup removed")
t.done()
