-- bbit status: where each component stands.
local components = require("bbit.components")
local json = require("bbit.json")
local term = require("bbit.term")
local workspace = require("bbit.workspace")

local function section(title, hint, lines)
  if #lines == 0 then
    return
  end
  print(term.color("bold", title) .. (hint and term.color("dim", "  (" .. hint .. ")") or ""))
  for _, line in ipairs(lines) do
    print("  > " .. line)
  end
  print("")
end

return {
  summary = "show new, modified, staged and pending components, and issues",
  usage = "bbit status [--json]",
  options = { { "json", type = "boolean", help = "print JSON" } },
  run = function(ctx)
    local ws = workspace.open(nil, { lock = "wait" })
    local analysis = components.analyze(ws)
    if ctx.opts.json then
      local out = {}
      for _, c in ipairs(analysis.list) do
        out[#out + 1] = {
          id = c.id,
          rootDir = c.root_dir,
          status = c.status,
          head = c.head or json.null,
          staged = json.array(c.staged),
          scope = c.scope or json.null,
          scopeReason = c.scope and c.scope_reason or json.null,
          pendingAutoTag = c.pending_auto_tag == true,
          issues = json.array(c.issues),
          dependencies = json.array(c.deps),
        }
      end
      io.write(json.encode({ components = json.array(out) }, { pretty = true }))
      return 0
    end
    local new, modified, staged, pending, issues = {}, {}, {}, {}, {}
    for _, c in ipairs(analysis.list) do
      local where = (c.status ~= "unchanged" or #c.staged > 0) and (c.scope and ("→ " .. c.scope) or "→ (no scope)")
      if c.status == "new" then
        new[#new + 1] = ("%s  %s"):format(c.id, where)
      elseif c.status == "modified" then
        modified[#modified + 1] = ("%s  %s"):format(c.id, where)
      end
      if #c.staged > 0 then
        staged[#staged + 1] = ("%s  versions: %s  %s"):format(c.id, table.concat(c.staged, ", "), where)
      end
      if c.pending_auto_tag then
        pending[#pending + 1] = ("%s  (depends on a changed component)"):format(c.id)
      end
      for _, issue in ipairs(c.issues) do
        issues[#issues + 1] = ("%s: %s"):format(c.id, issue)
      end
    end
    section("new components", "use `bbit tag` to version them", new)
    section("modified components", "use `bbit tag` to version the changes", modified)
    section("staged components", "use `bbit export` to publish them", staged)
    section("components pending auto-tag", "tagged with a patch bump when their dependencies are tagged", pending)
    section("components with issues", "fix them before tagging", issues)
    if #new + #modified + #staged + #pending + #issues == 0 then
      print(("nothing to tag or export (%d component%s, all clean)"):format(#analysis.list,
        #analysis.list == 1 and "" or "s"))
    end
    return 0
  end,
}
