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
local fs = require("bbit.fs")

return {
  run = function(component, ctx)
    -- the archive's entries and its recipe: the blobs it is made of, so an
    -- export can let the server rebuild it instead of sending it (see export.lua)
    local entries = {}
    for _, f in ipairs(component.files) do
      entries[#entries + 1] = { path = f.abs, name = "package/" .. f.path, mode = f.mode, blob = f.blob, size = f.size }
    end
    for _, extra in ipairs(ctx.extra_files or {}) do
      local blob, size = ctx.store_file(extra.path)
      local mode = (fs.stat(extra.path).mode & 73) ~= 0 and "755" or "644" -- 73 = 0111
      entries[#entries + 1] = { path = extra.path, name = "package/" .. extra.name, mode = mode, blob = blob, size = size }
    end
    table.sort(entries, function(a, b)
      return archive.name_less(a.name, b.name)
    end)
    local out = ctx.scratch_path("package.tgz")
    archive.create(out, entries, { format = "tar.gz", fsync = false }) -- a scratch file: stored next
    -- the recipe keeps each entry's name, mode, blob and size (not its path)
    ctx.add_artifact("package.tgz", out, { recipe = { format = "tar.gz", entries = entries } })
    fs.remove(out)
    ctx.log(("packaged %d files"):format(#entries))
  end,
}
