-- bbit init: create workspace.jsonc, .bitmap and the local scope.
local errors = require("bbit.errors")
local fs = require("bbit.fs")
local localscope = require("bbit.localscope")
local path = require("bbit.path")
local workspace = require("bbit.workspace")

local TEMPLATE = [[
/**
 * workspace.jsonc: the configuration of this bbit workspace (Bit-compatible keys).
 * JSON with comments and trailing commas. `bbit --help` lists the commands.
 */
{
  "$schema": "https://static.bit.dev/teambit/schemas/schema.json",
  // The workspace itself.
  "teambit.workspace/workspace": {
    // The workspace's name.
    "name": %s,
    // The remote scope (owner.scope) components are exported to, unless a
    // variant below or `bbit add --scope` says otherwise.
    %s
  },
  // Settings per folder of components; the most specific matching pattern wins:
  //   "components/ui": { "defaultScope": "my-org.ui" },
  //   "components/**/legacy": { "bbit.pipeline": ["validate", "package"] }
  "teambit.workspace/variants": {},
  "bbit": {
    // Scope pattern -> bbit server URL, e.g. "my-org.*": "http://127.0.0.1:3000".
    "remotes": {},
    // The build pipeline of every component: built-in tasks (validate, test,
    // package), shell commands, or Lua tasks in .bbit/scripts/tasks/NAME.lua.
    "pipeline": ["validate", "test", "package"]
  }
}
]]

return {
  summary = "create a workspace: workspace.jsonc, .bitmap and the local scope",
  usage = "bbit init [--default-scope OWNER.SCOPE] [--name NAME]",
  description = [[
Creates the workspace in the current folder (or -C DIR). The local scope goes
to .git/bit/ when the folder has a .git directory, else to .bit/. Running it
again in a workspace changes nothing.]],
  options = {
    { "default-scope", type = "string", arg = "OWNER.SCOPE", help = "the scope components are exported to by default" },
    { "name", type = "string", arg = "NAME", help = "the workspace name (default: the folder's name)" },
  },
  run = function(ctx)
    local root = fs.cwd()
    local scope = ctx.opts.default_scope
    if scope and not workspace.valid_scope(scope) then
      errors.usage(("--default-scope '%s' is not a valid scope name (expected owner.scope: lowercase letters, digits, '-', '_')"):format(scope))
    end
    local parent = workspace.find_root(path.dirname(root))
    if not fs.is_file(root .. "/" .. workspace.CONFIG_FILE) and parent then
      errors.fail(("%s is inside the workspace at %s"):format(root, parent),
        "run bbit commands from there, or init a workspace in a folder outside it")
    end
    local created = {}
    local config = root .. "/" .. workspace.CONFIG_FILE
    if not fs.exists(config) then
      local json = require("bbit.json")
      local name = ctx.opts.name or path.basename(root)
      local scope_line = scope and ('"defaultScope": ' .. json.encode(scope))
        or '// "defaultScope": "my-org.my-scope"'
      fs.write(config, TEMPLATE:format(json.encode(name), scope_line))
      created[#created + 1] = workspace.CONFIG_FILE
    elseif scope or ctx.opts.name then
      require("bbit.log").warn("%s already exists: --default-scope/--name not applied (edit the file)", config)
    end
    if not fs.exists(root .. "/.bitmap") then
      require("bbit.bitmap").read(root .. "/.bitmap"):write()
      created[#created + 1] = ".bitmap"
    end
    local scope_dir = localscope.dir_for(root)
    if not fs.is_dir(scope_dir) then
      localscope.open(root, { create = true })
      created[#created + 1] = path.relative(root, scope_dir) .. "/"
    end
    if #created == 0 then
      print(("workspace already initialized at %s; nothing changed"):format(root))
    else
      print(("initialized a bbit workspace in %s (created %s)"):format(root, table.concat(created, ", ")))
      local ok, config = pcall(require("bbit.json").read, config)
      local ws_config = ok and type(config) == "table" and config[workspace.WORKSPACE_ASPECT] or {}
      if not scope and not (type(ws_config) == "table" and ws_config.defaultScope) then
        print("next: set \"defaultScope\" in workspace.jsonc, then `bbit add DIR`")
      else
        print("next: `bbit add DIR` to track a component")
      end
    end
    return 0
  end,
}
