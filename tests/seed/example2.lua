local fibers = require 'fibers'
local chan   = require 'fibers.channel'
local sleep  = require 'fibers.sleep'

fibers.run(function(scope)
  local c = chan.new()

  -- Producer
  fibers.spawn(function(s)
    sleep.sleep(0.1)
    c:put("hello")
  end)

  -- Consumer with timeout: either get a value, or time out after 1s.
  local function read_with_timeout()
    local read_op    = c:get_op()
    local timeout_op = sleep.sleep_op(1.0)

    -- Race the two operations.
    local which, value = fibers.named_choice{
      data    = read_op,
      timeout = timeout_op,
    }

    if which == "data" then
      return true, value
    else
      return false, "timed out"
    end
  end

  local ok, value_or_err = read_with_timeout()
  print("result:", ok, value_or_err)
end)
