local fibers = require 'fibers'
local sleep  = require 'fibers.sleep'

fibers.run(function(scope)
  -- Start two child tasks under the main scope.
  fibers.spawn(function(s)
    sleep.sleep(0.5)
    print("first: finished ok")
  end)

  fibers.spawn(function(s)
    sleep.sleep(0.2)
    error("second: something went wrong")
  end)

  -- Block until the main scope’s child scope has finished.
  local status, err = fibers.run_scope(function(child)
    -- Do more work here if you like.
  end)

  print("main scope status:", status, err)
end)
