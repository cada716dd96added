-- bbit export: publish staged versions to their remote scopes (SPEC §5).
local workflow = require("bbit.workflow")
local workspace = require("bbit.workspace")

return {
  summary = "publish staged versions to their remote scopes",
  usage = "bbit export [PATTERN...] [--dry-run] [--resume ID] [-j N]",
  description = [[
Sends the staged versions (of the components matching PATTERN, else all),
grouped by target scope, to the servers hosting those scopes: only the objects
a server lacks are uploaded. All scopes on one server commit in one
transaction; across servers every one prepares before any commits. An
interrupted export is finished by the next `bbit export` (or --resume ID).
Afterwards .bitmap records the scopes: commit it.
The steps are a workflow (bbit scripts show export) a workspace can hook into.]],
  options = {
    { "dry-run", type = "boolean", help = "show what would go where, with sizes; send nothing" },
    { "resume", type = "string", arg = "ID", help = "only finish the interrupted export ID" },
    { "jobs", short = "j", type = "number", arg = "N", help = "parallel uploads (default 8)" },
  },
  run = function(ctx)
    local ws = workspace.open(nil, { lock = "fail" })
    require("bbit.remote").prefetch(ws) -- libcurl, if a server needs it, loads meanwhile
    local export = workflow.load("export", ws.root)
    export:run({ workspace = ws, opts = ctx.opts, patterns = ctx.args })
    ws:close()
    return 0
  end,
}
