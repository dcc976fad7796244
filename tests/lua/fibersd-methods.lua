-- tests/lua/fibersd-methods.lua - the control method table of
-- src/fibersd/protocol.h and the Lua handlers of
-- lib/fibersd/control_methods.lua must match one to one: fibersd.methods
-- binds them at daemon start and refuses a row without a handler or a
-- handler without a row.  Checked here on fake tables and on the real ones
-- (read from the sources, no daemon).
local t = require 'tap'
local methods = require 'fibersd.methods'

local function h() end
local rows = {
  { name = 'status', role = 'read', stream = false },
  { name = 'stop', role = 'admin', stream = false },
  { name = 'watch', role = 'read', stream = true },
}

local m, err = methods.bind(rows, { status = h, stop = h, watch = h })
t.ok(m ~= nil and err == nil, 'rows and handlers that match bind')
t.is(m.stop.admin, true, 'an admin row needs the admin role')
t.is(m.status.admin, false, 'a read row does not')
t.is(m.watch.stream, true, 'streaming comes from the row')
t.is(m.status.fn, h, 'the handler is the dispatch function')

m, err = methods.bind(rows, { status = h, stop = h, watch = h, ping = h })
t.is(m, nil, 'a handler with no row does not bind')
t.is(err, "control methods: handler 'ping' has no row in the method table", 'and says which')

m, err = methods.bind(rows, { status = h, watch = h })
t.is(m, nil, 'a row with no handler does not bind')
t.is(err, "control methods: method 'stop' has a row but no handler", 'and says which')

m, err = methods.bind({ rows[1], rows[1] }, { status = h })
t.is(err, "control methods: method 'status' has two rows", 'a duplicate row is refused')
m, err = methods.bind({ { name = 'x' } }, { x = h })
t.is(err, "control methods: method 'x' has no role", 'a row without a role is refused')

-- The real table and the real handlers.
local top = os.getenv('top_srcdir') or '.'
local function read(path)
  local f = assert(io.open(top .. '/' .. path))
  local s = f:read('*a')
  f:close()
  return s
end
local proto = read('src/fibersd/protocol.h')
local body = proto:match('#define FIBERSD_METHODS%(X%)(.-)\n\n')
local real = {}
local bad = {}
for name, args, min, max, role, stream in
    (body or ''):gmatch('X%((%w+),%s*"(.-)",%s*(%d+),%s*(%d+),%s*(%u+),%s*(%d)') do
  real[#real + 1] = { name = name, role = role:lower(), stream = stream == '1' }
  -- min/max agree with the template's positional words ([WORD] optional)
  local req, opt = 0, 0
  for tok in args:gsub('%[%-[^%]]*%]', ''):gmatch('%S+') do
    if tok:match('^%[') then opt = opt + 1 else req = req + 1 end
  end
  if req ~= tonumber(min) or req + opt ~= tonumber(max) then bad[#bad + 1] = name end
end
t.ok(#real >= 10, 'protocol.h lists the methods (' .. #real .. ')')
t.is(table.concat(bad, ' '), '', "every row's min/max match its template")
local handlers = {}
local src = read('lib/fibersd/control_methods.lua')
for name in src:gmatch('\nfunction T%.([%w_]+)%(') do handlers[name] = h end
for list in src:gmatch('\n(T%.[%w_]+[%w_, T.]*) = ') do -- T.a, T.b = ...
  for name in list:gmatch('T%.([%w_]+)') do handlers[name] = h end
end
m, err = methods.bind(real, handlers)
t.ok(m ~= nil, 'every row of protocol.h has a handler in control_methods.lua and back: '
  .. tostring(err or 'ok'))
t.done()
