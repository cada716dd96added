-- bbit scripts list | which NAME | show NAME: the overridable scripts.
local errors = require("bbit.errors")
local scripts = require("bbit.scripts")

local function need_name(ctx)
  local name = ctx.args[1]
  if not name then
    errors.usage(("bbit %s needs a script name, e.g. 'route' or 'tasks/lint'"):format(ctx.command))
  end
  return (name:gsub("%.lua$", ""))
end

return {
  summary = "list, locate and print the overridable workflow scripts",
  usage = "bbit scripts list|which NAME|show NAME",
  description = [[
Scripts are looked up in order: <workspace>/.bbit/scripts/NAME.lua, each dir of
$BBIT_SCRIPTS_PATH, $BBIT_HOME/scripts/NAME.lua, then the built-in ones.]],
  subcommands = {
    list = {
      summary = "every script and where it resolves",
      usage = "bbit scripts list [--json]",
      options = { { "json", type = "boolean", help = "print JSON" } },
      run = function(ctx)
        local list = scripts.list(ctx.workspace_root)
        if ctx.opts.json then
          io.write(require("bbit.json").encode(list, { pretty = true }))
          return 0
        end
        local workflow = require("bbit.workflow")
        for _, s in ipairs(list) do
          local where = s.origin == "builtin" and "built-in" or s.path
          if s.overrides then
            where = where .. " (overrides built-in)"
          end
          print(("%-28s %s"):format(s.name, where))
          -- workflows: their steps, each can be wrapped or hooked (before_/after_)
          if s.name == "tag" or s.name == "export" then
            local ok, wf = pcall(workflow.load, s.name, ctx.workspace_root)
            if ok and workflow.is_workflow(wf) then
              print(("%-28s steps: %s"):format("", table.concat(wf:step_names(), ", ")))
            end
          end
        end
        return 0
      end,
    },
    which = {
      summary = "the file a script name resolves to",
      usage = "bbit scripts which NAME",
      run = function(ctx)
        local name = need_name(ctx)
        local found = scripts.find(name, ctx.workspace_root)
        if not found then
          errors.fail(("no script named '%s'"):format(name), "see `bbit scripts list` for the names")
        end
        print(found.path)
        return 0
      end,
    },
    show = {
      summary = "print a script's source (to copy into .bbit/scripts and adapt)",
      usage = "bbit scripts show NAME [--builtin]",
      options = { { "builtin", type = "boolean", help = "show the built-in version even when overridden" } },
      run = function(ctx)
        local name = need_name(ctx)
        local found
        if ctx.opts.builtin then
          local source = require("bbit.core.host").embedded("scripts/" .. name .. ".lua")
          found = source and { source = source }
        else
          found = scripts.find(name, ctx.workspace_root)
        end
        if not found then
          errors.fail(("no script named '%s'"):format(name), "see `bbit scripts list` for the names")
        end
        io.write(found.source)
        return 0
      end,
    },
  },
}
