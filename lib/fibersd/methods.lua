-- fibersd.methods - binds the control method table (protocol.h's
-- FIBERSD_METHODS, shared with fibersctl) to the Lua handlers of
-- control_methods.lua.  Every row needs a handler and every handler a row;
-- anything else is a start-up error, so a method cannot exist on one side
-- only.  Pure: no I/O, no host (tests/lua/fibersd-methods.lua drives it).

local M = {}

-- rows: array of { name, role = "read"|"admin", stream, min, max, args,
-- help }; handlers: name -> function(conn, id, params).  Returns the
-- dispatch table name -> { fn, admin, stream, row } or nil, message.
function M.bind(rows, handlers)
  local out, problems, seen = {}, {}, {}
  for _, row in ipairs(rows) do
    local fn = handlers[row.name]
    if seen[row.name] then
      problems[#problems + 1] = string.format("method '%s' has two rows", row.name)
    elseif type(fn) ~= 'function' then
      problems[#problems + 1] = string.format("method '%s' has a row but no handler", row.name)
    elseif row.role ~= 'read' and row.role ~= 'admin' then
      problems[#problems + 1] = string.format("method '%s' has no role", row.name)
    else
      out[row.name] = { fn = fn, admin = row.role == 'admin', stream = row.stream, row = row }
    end
    seen[row.name] = true
  end
  local extra = {}
  for name in pairs(handlers) do
    if not seen[name] then extra[#extra + 1] = name end
  end
  table.sort(extra)
  for _, name in ipairs(extra) do
    problems[#problems + 1] = string.format("handler '%s' has no row in the method table", name)
  end
  if #problems > 0 then return nil, 'control methods: ' .. table.concat(problems, '; ') end
  return out
end

return M
