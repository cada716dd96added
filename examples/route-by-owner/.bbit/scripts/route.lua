-- Routing by folder owner: this workspace's replacement for bbit's built-in
-- scripts/route.lua (see `bbit scripts show route`).
--
-- A component goes to the scope of the team that owns its folder:
--   1. the nearest OWNERS file, looking in the component's folder and then in
--      each folder above it up to the workspace root, names the team (its first
--      line that is not blank or a `#` comment);
--   2. "bbit": {"teams": {"TEAM": "owner.scope"}} in workspace.jsonc gives the
--      team's scope. A team missing from that map is an error, so a typo in an
--      OWNERS file never sends a component to the wrong scope;
--   3. a component with no OWNERS file above it is routed by the built-in
--      rules (variants' "defaultScope", then the workspace "defaultScope"),
--      which `base()` loads.
--
-- bbit calls `route(component, workspace)` when it needs a component's target
-- scope (bbit add, status, tag); it returns the scope and a short reason, shown
-- by `bbit add` and `bbit status --json` ("scopeReason").
local errors = require("bbit.errors")
local fs = require("bbit.fs")
local path = require("bbit.path")

local M = {}

M.OWNERS_FILE = "OWNERS"

-- The team named in an OWNERS file's text, or nil when it names none.
local function team_of(text)
  for line in text:gmatch("[^\n]+") do
    local team = line:gsub("#.*$", ""):match("^%s*(.-)%s*$")
    if team ~= "" then
      return team
    end
  end
  return nil
end

--- The nearest OWNERS file at or above workspace-relative folder `root_dir`:
--- its workspace-relative path and the team it names; nil when there is none.
---@param workspace table
---@param root_dir string
---@return string|nil owners_path
---@return string|nil team
function M.find_owner(workspace, root_dir)
  local dir = root_dir
  while true do
    local rel = dir == "." and M.OWNERS_FILE or (dir .. "/" .. M.OWNERS_FILE)
    local text = fs.try_read(workspace:abs(rel))
    if text then
      local team = team_of(text)
      if not team then
        errors.fail(("%s names no team"):format(rel), "write the owning team's name on its first line")
      end
      return rel, team
    end
    if dir == "." then
      return nil
    end
    dir = path.dirname(dir)
  end
end

--- The target scope of `component` and why: its owner team's scope, else
--- the built-in rule's answer (nil when that has none either).
---@param component {id: string, name: string, root_dir: string, entry: table}
---@param workspace table the open workspace
---@return string|nil scope
---@return string|nil reason shown by `bbit add` and `bbit status --json`
function M.route(component, workspace)
  local owners, team = M.find_owner(workspace, component.root_dir)
  if not owners then
    return base().route(component, workspace)
  end
  local teams = workspace:bbit_config().teams
  local scope = type(teams) == "table" and teams[team] or nil
  if type(scope) ~= "string" or scope == "" then
    errors.fail(("%s names team '%s', which has no scope"):format(owners, team),
      ("add it to workspace.jsonc: \"bbit\": {\"teams\": {\"%s\": \"owner.scope\"}}"):format(team))
  end
  return scope, ("team %s, %s"):format(team, owners)
end

return M
