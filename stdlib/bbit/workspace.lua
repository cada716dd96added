--- The workspace: the folder holding `workspace.jsonc`, found by walking up.
local M = {}

local function exists(path)
  local f = io.open(path, "r")
  if f then
    f:close()
    return true
  end
  return false
end

--- The workspace root containing `dir` (default: the current directory), or nil.
---@param dir? string
---@return string|nil
function M.find_root(dir)
  dir = dir or require("bbit.core.fs").cwd()
  while true do
    if exists(dir .. "/workspace.jsonc") then
      return dir
    end
    local parent = dir:match("^(.*)/[^/]*$")
    if parent == nil or parent == dir then
      return nil
    end
    if parent == "" then
      parent = "/"
      if dir == "/" then
        return nil
      end
    end
    dir = parent
  end
end

return M
