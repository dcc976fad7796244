-- fibers.compat: the one place where the Lua layer bridges Lua versions.
--
-- The library is written in the common subset of Lua 5.1, 5.2, 5.3, 5.4 and
-- LuaJIT (no goto, no //, no bitwise operators, no integer-only features).
-- What differs between them lives here, so modules say
--   local compat = require 'fibers.compat'
--   local pcall, unpack = compat.pcall, compat.unpack
--
-- * unpack, pack: table.unpack/table.pack or their 5.1 equivalents.
-- * pcall, xpcall: yield-safe.  PUC Lua 5.1 (not LuaJIT) cannot yield across
--   pcall/xpcall, so there they run the function in a coroutine of its own
--   and pass every yield through to the enclosing fiber (and every resume
--   back in).  Use them wherever the library protects code that may block
--   (scope bodies, finalisers, stream close, ...).  Elsewhere they are the
--   built-ins.  xpcall's handler is called as handler(err, co): on 5.1 `co`
--   is the dead coroutine that raised (the stack is gone from the caller's
--   view, so a traceback must be taken with debug.traceback(co, msg)); on
--   other versions `co` is nil and the handler runs at the error point, as
--   usual.
-- * owns_coroutine(co): true for a coroutine of these 5.1 wrappers.
-- * yield_across_pcall: false on PUC 5.1.  What 5.1 still cannot do even
--   with these wrappers: yield inside metamethods (__index, __lt, __gc,
--   __tostring, ...), inside iterators called by a generic `for` in C
--   (e.g. via string.gsub callbacks), inside table.sort comparators, and
--   across any other C function (require, load, ...).
local M = {}

local select, pcall, xpcall = select, pcall, xpcall

M.unpack = table.unpack or unpack
M.pack = table.pack or function(...) return { n = select('#', ...), ... } end

local puc51 = _VERSION == "Lua 5.1" and not rawget(_G, "jit")
M.yield_across_pcall = not puc51

if puc51 then
  local create, resume, status, yield = coroutine.create, coroutine.resume,
                                        coroutine.status, coroutine.yield

  -- Drive co until it finishes; pass its yields out and the answers in.
  local function step(co, ok, ...)
    if not ok then return false, ... end
    if status(co) == "dead" then return true, ... end
    return step(co, resume(co, yield(...)))
  end

  -- The coroutines of these wrappers (weak): a fiber's code runs in them,
  -- so fibers.op lets a perform block there (its yields pass through).
  local own = setmetatable({}, { __mode = "k" })
  function M.owns_coroutine(co) return own[co] == true end

  -- A coroutine for f; C functions and callable tables get a Lua wrapper
  -- (5.1 coroutines must start with a Lua function).
  local function cocreate(f)
    local ok, co = pcall(create, f)
    if not ok then co = create(function(...) return f(...) end) end
    own[co] = true
    return co
  end

  -- pcall(f, ...) that lets f yield (5.1: f runs in its own coroutine).
  function M.pcall(f, ...)
    local co = cocreate(f)
    return step(co, resume(co, ...))
  end

  -- The handler's first result becomes the error value, as with xpcall.
  local function finish_x(handler, co, ok, ...)
    if ok then return true, ... end
    return false, (handler((...), co))
  end

  -- xpcall(f, handler, ...) that lets f yield; handler(err, co).
  function M.xpcall(f, handler, ...)
    local co = cocreate(f)
    return finish_x(handler, co, step(co, resume(co, ...)))
  end
else
  function M.owns_coroutine() return false end
  M.pcall = pcall
  if select(2, xpcall(function(...) return select('#', ...) end, print, 1)) == 1 then
    M.xpcall = xpcall
  else
    local unpack, pack = M.unpack, M.pack
    -- xpcall(f, handler, ...) for an xpcall without extra arguments.
    function M.xpcall(f, handler, ...)
      local a = pack(...)
      return xpcall(function() return f(unpack(a, 1, a.n)) end, handler)
    end
  end
end

return M
