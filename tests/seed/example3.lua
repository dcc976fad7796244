local fibers = require 'fibers'
local exec   = require 'fibers.exec'

fibers.run(function(scope)
  local cmd = exec.command{
    "ls", "-l",
    stdout = "pipe",
  }

  local out, status, code, signal, err =
    fibers.perform(cmd:output_op())

  if status == "exited" and code == 0 then
    print(out)
  else
    print("command failed:", status, code, signal, err)
  end
end)
