-- bbit build: run the build pipeline without versioning.
local components = require("bbit.components")
local workspace = require("bbit.workspace")

return {
  summary = "run the build pipeline without versioning",
  usage = "bbit build [PATTERN...] [-j N] [--no-cache]",
  description = [[
Runs each selected component's pipeline (all components when no PATTERN), in
dependency order, independent components in parallel. Tasks whose inputs did
not change since their last successful run are skipped (cached).]],
  options = {
    { "jobs", short = "j", type = "number", arg = "N", help = "build N components at once (default: cores)" },
    { "no-cache", type = "boolean", help = "run every task, even those whose inputs are unchanged" },
  },
  run = function(ctx)
    local ws = workspace.open(nil, { lock = "fail" })
    local analysis = components.analyze(ws)
    local selected = components.select(analysis, ctx.args)
    if #selected == 0 then
      print("nothing to build (no components tracked; see `bbit add`)")
      return 0
    end
    local ids = {}
    for _, c in ipairs(selected) do
      ids[#ids + 1] = c.id
    end
    ids = components.order(ids, analysis.by_id)
    local results = ws:script("pipeline").run(ids, analysis, ws, { jobs = ctx.opts.jobs, no_cache = ctx.opts.no_cache })
    local ran, cached = 0, 0
    for _, id in ipairs(ids) do
      for _, t in ipairs(results[id].tasks) do
        if t.cached then
          cached = cached + 1
        else
          ran = ran + 1
        end
      end
    end
    print(("built %d component(s): %d task(s) run, %d cached"):format(#ids, ran, cached))
    ws:close()
    return 0
  end,
}
