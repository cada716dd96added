--- Crash points for fault-injection tests. When the environment variable
--- BBIT_FAULT names a point the process reaches, bbit kills itself with
--- SIGKILL right there, as a power cut or `kill -9` would. Used by the tests
--- of interrupted tag and export; harmless (one getenv) otherwise.
local M = {}

local wanted = os.getenv("BBIT_FAULT")

--- Crashes the process here when BBIT_FAULT equals `name`.
---@param name string e.g. "tag:after-journal"
function M.point(name)
  if wanted ~= name then
    return
  end
  io.stdout:flush()
  io.stderr:flush()
  local f = io.open("/proc/self/stat", "r")
  local pid = f and f:read("n")
  if f then
    f:close()
  end
  os.execute("kill -9 " .. math.tointeger(pid))
end

return M
