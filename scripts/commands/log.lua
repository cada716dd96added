-- bbit log ID: the versions of a component, newest first.
local inspect = require("bbit.inspect")
local json = require("bbit.json")
local term = require("bbit.term")
local workspace = require("bbit.workspace")

return {
  summary = "show the versions of a component with their log",
  usage = "bbit log ID [--remote] [--json]",
  description = "ID is a component of the workspace, or OWNER.SCOPE/NAME with --remote.",
  options = {
    { "remote", type = "boolean", help = "read the component from its remote scope (ID = OWNER.SCOPE/NAME)" },
    { "json", type = "boolean", help = "print JSON" },
  },
  run = function(ctx)
    local id = ctx.args[1] or require("bbit.errors").usage("bbit log needs a component id: bbit log ID")
    local history
    if ctx.opts.remote then
      local scope, name, _, info, client = inspect.remote_component(id)
      history = inspect.remote_history(client, scope, info)
      id = scope .. "/" .. name
    else
      id = inspect.split_id(id)
      local ws = workspace.open()
      history = inspect.history(ws, inspect.local_ref(ws, id))
    end
    if ctx.opts.json then
      local out = {}
      for _, h in ipairs(history) do
        out[#out + 1] = { version = h.version, id = h.id, exported = h.exported, log = h.object.log }
      end
      io.write(json.encode(json.array(out), { pretty = true }))
      return 0
    end
    for _, h in ipairs(history) do
      print(term.color("yellow", ("%s@%s"):format(id, h.version)) .. (h.exported and "" or term.color("cyan", " (staged)")))
      print("id:     " .. h.id)
      print("author: " .. tostring(h.object.log.author))
      print("date:   " .. tostring(h.object.log.date))
      print("")
      print("    " .. (h.object.log.message ~= "" and h.object.log.message or "(no message)"))
      print("")
    end
    return 0
  end,
}
