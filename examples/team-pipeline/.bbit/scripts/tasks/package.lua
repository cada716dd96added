-- Wraps the built-in `package` task: the same deterministic .tgz, plus the
-- workspace's LICENSE file in every package. `base()` is the script this one
-- overrides (here the built-in tasks/package.lua).
local package = base()

return {
  run = function(component, ctx)
    ctx.extra_files = { { path = ctx.workspace.root .. "/LICENSE", name = "LICENSE" } }
    return package.run(component, ctx)
  end,
}
