--- User configuration: `$BBIT_HOME` (default `~/.config/bbit`).
local M = {}

--- The user's bbit home directory (`$BBIT_HOME`, else `~/.config/bbit`).
---@return string
function M.home()
  local home = os.getenv("BBIT_HOME")
  if home and home ~= "" then
    return home
  end
  return (os.getenv("HOME") or "/root") .. "/.config/bbit"
end

return M
