-- bbit log ID: the versions of a component, newest first.
local inspect = require("bbit.inspect")
local json = require("bbit.json")
local term = require("bbit.term")
local workspace = require("bbit.workspace")

return {
  summary = "show the versions of a component with their log",
  usage = "bbit log ID [--json]",
  options = { { "json", type = "boolean", help = "print JSON" } },
  run = function(ctx)
    local id = ctx.args[1] or require("bbit.errors").usage("bbit log needs a component id: bbit log ID")
    id = inspect.split_id(id)
    local ws = workspace.open()
    local history = inspect.history(ws, inspect.local_ref(ws, id))
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
