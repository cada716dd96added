-- Built-in task `package` (SPEC §4): a deterministic .tgz of the component
-- (same files, same bytes), stored with the version as the artifact
-- "package.tgz". Entries are named package/<path>, as `npm pack` does.
--
-- To add files (a LICENSE, a generated file), wrap it in
-- .bbit/scripts/tasks/package.lua:
--   local package = base()
--   return { run = function(component, ctx)
--     ctx.extra_files = { { path = "/abs/LICENSE", name = "LICENSE" } }
--     return package.run(component, ctx)
--   end }
local archive = require("bbit.archive")

return {
  run = function(component, ctx)
    local entries = {}
    for _, f in ipairs(component.files) do
      entries[#entries + 1] = { path = f.abs, name = "package/" .. f.path }
    end
    for _, extra in ipairs(ctx.extra_files or {}) do
      entries[#entries + 1] = { path = extra.path, name = "package/" .. extra.name }
    end
    local out = ctx.scratch_path("package.tgz")
    archive.create(out, entries, { format = "tar.gz", fsync = false }) -- a scratch file: stored next
    ctx.add_artifact("package.tgz", out)
    require("bbit.fs").remove(out)
    ctx.log(("packaged %d files"):format(#entries))
  end,
}
