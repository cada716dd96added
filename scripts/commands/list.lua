-- bbit list: the components of the local scope.
local json = require("bbit.json")
local localscope = require("bbit.localscope")
local workspace = require("bbit.workspace")

return {
  summary = "list the components of the local scope (or of a remote scope)",
  usage = "bbit list [SCOPE] [--json]",
  description = [[
Without SCOPE: the components of the workspace's local scope, with their
staged versions. With SCOPE (owner.scope): the components of that remote scope.]],
  options = { { "json", type = "boolean", help = "print JSON" } },
  run = function(ctx)
    if ctx.args[1] then
      local remote = require("bbit.remote")
      local scope = ctx.args[1]
      local root = workspace.find_root()
      local url = remote.server_for(scope, root and workspace.open(root) or nil) or remote.no_server_error(scope)
      local list = remote.client(url):components(scope)
      if ctx.opts.json then
        io.write(json.encode({ scope = scope, server = url, components = json.array(list) }, { pretty = true }))
        return 0
      end
      print(("%s (%s): %d component(s)"):format(scope, url, #list))
      for _, c in ipairs(list) do
        print(("  %-32s %-10s %s"):format(c.name, c.head, c.updated_at or ""))
      end
      return 0
    end
    local ws = workspace.open()
    local refs = ws.scope:refs()
    local ids = {}
    for id in pairs(refs.components) do
      ids[#ids + 1] = id
    end
    table.sort(ids)
    local rows = {}
    for _, id in ipairs(ids) do
      local ref = refs.components[id]
      local entry = ws.bitmap:get(id) or {}
      rows[#rows + 1] = {
        id = id,
        version = ref.head,
        staged = json.array(localscope.staged_of(ref)),
        exported = localscope.exported_head(ref) or json.null,
        scope = (entry.scope ~= "" and entry.scope) or entry.defaultScope or json.null,
      }
    end
    if ctx.opts.json then
      io.write(json.encode({ components = json.array(rows) }, { pretty = true }))
      return 0
    end
    if #rows == 0 then
      print("no components in the local scope yet (bbit add, then bbit tag)")
      return 0
    end
    for _, r in ipairs(rows) do
      local state = #r.staged > 0 and ("staged: " .. table.concat(r.staged, ", ")) or "exported"
      print(("%-32s %-10s %-24s %s"):format(r.id, r.version, r.scope ~= json.null and r.scope or "", state))
    end
    return 0
  end,
}
