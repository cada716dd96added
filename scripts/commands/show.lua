-- bbit show ID[@V]: one version of a component.
local errors = require("bbit.errors")
local inspect = require("bbit.inspect")
local json = require("bbit.json")
local workspace = require("bbit.workspace")

return {
  summary = "show a component version: files, dependencies, artifacts, log",
  usage = "bbit show ID[@VERSION] [--remote] [--json]",
  description = "ID is a component of the workspace, or OWNER.SCOPE/NAME with --remote.",
  options = {
    { "remote", type = "boolean", help = "read the component from its remote scope (ID = OWNER.SCOPE/NAME)" },
    { "json", type = "boolean", help = "print JSON (the version object)" },
  },
  run = function(ctx)
    local arg = ctx.args[1] or errors.usage("bbit show needs a component id: bbit show ID[@VERSION]")
    local id, version, entry, obj
    if ctx.opts.remote then
      local scope, name, v, info, client = inspect.remote_component(arg)
      id, version = scope .. "/" .. name, v or info.head
      for _, h in ipairs(inspect.remote_history(client, scope, info)) do
        if h.version == version then
          entry, obj = { id = h.id, exported = true }, h.object
        end
      end
    else
      id, version = inspect.split_id(arg)
      local ws = workspace.open()
      local ref = inspect.local_ref(ws, id)
      version = version or ref.head
      entry = ref.versions[version]
      obj = entry and ws.scope:read_version(entry.id)
    end
    if not entry then
      errors.fail(("%s has no version %s"):format(id, tostring(version)), "see `bbit log " .. id .. "` for its versions")
    end
    if ctx.opts.json then
      obj.id = entry.id
      obj.exported = entry.exported == true
      io.write(json.encode(obj, { pretty = true }))
      return 0
    end
    print(("%s@%s%s"):format(id, version, entry.exported and "" or " (staged)"))
    print("id:        " .. entry.id)
    print("main file: " .. tostring(obj.mainFile))
    print("author:    " .. tostring(obj.log.author))
    print("date:      " .. tostring(obj.log.date))
    print("message:   " .. (obj.log.message ~= "" and obj.log.message or "(none)"))
    print(("files (%d):"):format(#obj.files))
    for _, f in ipairs(obj.files) do
      print(("  %s  %s  %s"):format(f.mode, inspect.size(f.size), f.path))
    end
    if #obj.dependencies > 0 then
      print("dependencies:")
      for _, d in ipairs(obj.dependencies) do
        print(("  %s@%s"):format(d.id, d.version))
      end
    end
    if #obj.artifacts > 0 then
      print("artifacts:")
      for _, a in ipairs(obj.artifacts) do
        print(("  %s  %s  %s"):format(a.name, inspect.size(a.size), a.blob))
      end
    end
    return 0
  end,
}
