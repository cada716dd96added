-- bbit reset: drop staged (tagged, never exported) versions.
local components = require("bbit.components")
local errors = require("bbit.errors")
local localscope = require("bbit.localscope")
local workspace = require("bbit.workspace")

return {
  summary = "drop staged versions (never exported ones)",
  usage = "bbit reset [PATTERN...] [--head] [--force]",
  description = [[
Without PATTERN, drops every staged version of every component. Exported
versions are never dropped. A version another staged component depends on is
kept unless that component is reset too, or --force is given.]],
  options = {
    { "head", type = "boolean", help = "drop only the newest staged version of each" },
    { "force", type = "boolean", help = "reset even when other staged versions depend on it" },
  },
  run = function(ctx)
    local ws = workspace.open(nil, { lock = "fail" })
    local refs = ws.scope:refs()
    local analysis = components.analyze(ws)
    local selected = components.select(analysis, ctx.args)
    -- what would be dropped: id -> set of versions
    local drop, any = {}, false
    for _, comp in ipairs(selected) do
      local ref = refs.components[comp.id]
      local staged = ref and localscope.staged_of(ref) or {}
      if #staged > 0 then
        drop[comp.id] = {}
        local from = ctx.opts.head and #staged or 1
        for i = from, #staged do
          drop[comp.id][staged[i]] = true
        end
        any = true
      elseif #ctx.args > 0 and ref and ref.head then
        errors.fail(("%s has nothing staged: its head %s is exported"):format(comp.id, ref.head),
          "exported versions cannot be reset")
      end
    end
    if not any then
      print("nothing to reset (no staged versions)")
      return 0
    end
    -- refuse when a staged version that stays depends on a dropped one
    if not ctx.opts.force then
      for id, ref in pairs(refs.components) do
        for _, v in ipairs(localscope.staged_of(ref)) do
          if not (drop[id] and drop[id][v]) then
            local obj = ws.scope:read_version(ref.versions[v].id)
            for _, dep in ipairs(obj.dependencies or {}) do
              if drop[dep.id] and drop[dep.id][dep.version] then
                errors.fail(("cannot reset %s@%s: the staged %s@%s depends on it"):format(dep.id, dep.version, id, v),
                  ("reset %s too (bbit reset %s %s), or use --force"):format(id, dep.id, id))
              end
            end
          end
        end
      end
    end
    local lines = {}
    for _, comp in ipairs(selected) do
      local versions = drop[comp.id]
      if versions then
        local ref = refs.components[comp.id]
        local dropped = {}
        for v in pairs(versions) do
          ref.versions[v] = nil
          dropped[#dropped + 1] = v
        end
        local remaining = localscope.versions_of(ref)
        ref.head = remaining[#remaining]
        local entry = ws.bitmap:get(comp.id)
        if ref.head then
          entry.version = ref.head
        else
          refs.components[comp.id] = nil
          entry.version = ""
        end
        require("bbit.semver").sort(dropped)
        lines[#lines + 1] = ("  > %s: dropped %s%s"):format(comp.id, table.concat(dropped, ", "),
          ref.head and (", head is now " .. ref.head) or ", back to new")
      end
    end
    ws:commit_changes("reset")
    print(("reset %d component(s)"):format(#lines))
    for _, l in ipairs(lines) do
      print(l)
    end
    ws:close()
    return 0
  end,
}
