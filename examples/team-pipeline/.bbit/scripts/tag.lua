-- Hooks into the built-in tag workflow without copying it: after every tag,
-- append one line per new version to CHANGELOG.md.
return {
  after_tag = function(ctx)
    local f = assert(io.open(ctx.workspace.root .. "/CHANGELOG.md", "a"))
    for _, id in ipairs(ctx.selected) do
      f:write(("- %s@%s: %s\n"):format(id, ctx.versions[id], ctx.opts.message or "no message"))
    end
    f:close()
  end,
}
