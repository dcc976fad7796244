-- tests/lua/compat.lua - fibers.compat (doc/library.md §15): pack/unpack, and
-- pcall/xpcall that let the protected function block (yield) on every Lua
-- version, including PUC 5.1 where they are coroutine-wrapped: results,
-- nils and counts, error values (identity), values passed in and out
-- across blocking operations, nesting, tracebacks, cancellation.
-- `make check-lua-all` runs this under 5.1, 5.2, 5.3, 5.4 and LuaJIT.
local t = require 'tap'
local compat = require 'fibers.compat'
local fibers = require 'fibers'
local sleep = require 'fibers.sleep'
local channel = require 'fibers.channel'
local scope = require 'fibers.scope'

local pack, unpack = compat.pack, compat.unpack
local cpcall, cxpcall = compat.pcall, compat.xpcall

-- pack / unpack
do
  local p = pack(1, nil, 3, nil)
  t.is(p.n, 4, "pack counts trailing nils")
  t.is_deeply({ p[1], p[2], p[3] }, { 1, nil, 3 }, "pack keeps values")
  local q = pack(unpack({ nil, 2, nil }, 1, 3))
  t.is(q.n, 3, "unpack(t, 1, 3) yields three values")
  t.is(q[2], 2, "unpack keeps positions")
  t.is(pack().n, 0, "pack() is empty")
end

-- which versions wrap
local puc51 = _VERSION == "Lua 5.1" and not rawget(_G, "jit")
t.is(compat.yield_across_pcall, not puc51, "yield_across_pcall is false only on PUC Lua 5.1")
t.is(cpcall == pcall, not puc51, "pcall is the built-in except on PUC Lua 5.1")

-- outside any fiber: plain protected calls
do
  local r = pack(cpcall(function(a, b) return a + b, nil, "x", nil end, 1, 2))
  t.is(r.n, 5, "pcall: success keeps every result, nils included")
  t.is_deeply({ r[1], r[2], r[3], r[4] }, { true, 3, nil, "x" }, "pcall: true then the results")
  local e = { code = 7 }
  local ok, got = cpcall(error, e)
  t.is(ok, false, "pcall: error -> false")
  t.ok(got == e, "pcall: the error value itself (identity) is returned")
  r = pack(cpcall(function() error("plain", 0) end))
  t.is(r.n, 2, "pcall: false, err (two values)")
  t.is(r[2], "plain", "pcall: string error unchanged")
  r = pack(cpcall(function() end))
  t.is(r.n, 1, "pcall: a function returning nothing gives just true")
  r = pack(cxpcall(function(a, b) return b, a end, function(m) return "h:" .. m end, "A", "B"))
  t.is_deeply({ r.n, r[1], r[2], r[3] }, { 3, true, "B", "A" }, "xpcall passes extra arguments")
  r = pack(cxpcall(function() error("bad", 0) end, function(m) return "h:" .. m, "second" end))
  t.is_deeply({ r.n, r[1], r[2] }, { 2, false, "h:bad" }, "xpcall: false and the handler's first result")
end

-- inside fibers: the protected function blocks
local log = {}
local results = pack(fibers.run(function()
  -- a sleep inside pcall
  local ok, v = cpcall(function(d) sleep.sleep(d); return "slept " .. d end, 0.01)
  t.is(ok, true, "pcall around sleep succeeds")
  t.is(v, "slept 0.01", "pcall around sleep returns the result")

  -- an error raised after blocking
  local ok2, e2 = cpcall(function() sleep.sleep(0); sleep.sleep(0.001); error({ tag = "after" }) end)
  t.is(ok2, false, "error after a yield -> false")
  t.is(type(e2) == "table" and e2.tag, "after", "error value after a yield is kept")

  -- values flow in and out through blocking operations (a channel)
  local ch = channel.new()
  fibers.spawn(function()
    for i = 1, 3 do ch:put(i * 10) end
  end)
  local ok3, a, b, c = cpcall(function()
    local x = ch:get()
    local y = ch:get()
    return x, y, ch:get()
  end)
  t.is_deeply({ ok3, a, b, c }, { true, 10, 20, 30 }, "channel gets inside pcall receive the values")

  -- nesting: yields pass through two wrappers
  local ok4, r4 = cpcall(function()
    local okin, rin = cpcall(function() sleep.sleep(0.001); return "inner" end)
    log[#log + 1] = tostring(okin) .. ":" .. rin
    sleep.sleep(0.001)
    return "outer"
  end)
  t.is_deeply({ ok4, r4, log[1] }, { true, "outer", "true:inner" }, "nested pcalls with yields")

  -- xpcall: the handler sees the error and can take a traceback
  local function named_failure() sleep.sleep(0.001); error("boom", 0) end
  local ok5, tb = cxpcall(named_failure, function(m, co)
    if co then return debug.traceback(co, m) end
    return debug.traceback(m, 2)
  end)
  t.is(ok5, false, "xpcall around a blocking failure -> false")
  t.like(tb, "^boom\nstack traceback:", "handler result: message then traceback")
  t.like(tb, "compat%.lua:%d+", "traceback shows the failing function's file and line")

  -- cancellation while blocked inside pcall: the sentinel comes out
  local st, err = fibers.run_scope(function(s)
    fibers.spawn(function() sleep.sleep(0.01); s:cancel("stop") end)
    local okc, ec = cpcall(function() sleep.sleep(10) end)
    log[#log + 1] = okc == false and scope.is_cancelled(ec) and scope.cancel_reason(ec)
    error(ec, 0)
  end)
  t.is(log[2], "stop", "pcall returns the cancellation sentinel with its reason")
  t.is_deeply({ st, err }, { "cancelled", "stop" }, "re-raised sentinel cancels the scope")
  return "done", nil, 3
end))
t.is_deeply({ results.n, results[1], results[2], results[3] }, { 3, "done", nil, 3 },
  "fibers.run returns main's results")

t.done()
