-- The routing rule: which remote scope a component is exported to (SPEC §4).
--
-- Copy it to <workspace>/.bbit/scripts/route.lua (`bbit scripts show route`)
-- to route with any logic. `route(component, workspace)` returns a scope name
-- (`owner.scope`) and a short reason, or nil when it has no answer (bbit then
-- asks the user to set one). `component` = { id, name, root_dir, entry };
-- `workspace` gives `:variant_value(root_dir, key)`, `:workspace_config()`,
-- `:bbit_config()` and `.config` (the decoded workspace.jsonc).
--
-- The components' exported scope and an explicit `bbit add --scope` are
-- applied before this script runs.
local M = {}

function M.route(component, workspace)
  local scope, pattern = workspace:variant_value(component.root_dir, "defaultScope")
  if type(scope) == "string" and scope ~= "" then
    return scope, ("variant \"%s\""):format(pattern)
  end
  local default = workspace:workspace_config().defaultScope
  if type(default) == "string" and default ~= "" then
    return default, "workspace defaultScope"
  end
  return nil
end

return M
