-- Built-in task `test`: runs the component's configured test command, if any.
-- Configure it per component in .bitmap ("config": {"bbit": {"test": "npm test"}}),
-- per variant ("bbit.test": "...") or for the workspace ("bbit": {"test": "..."}).
-- The command runs in the component's folder through /bin/sh.
return {
  run = function(component, ctx)
    local ws = ctx.workspace
    local cfg = type(component.entry.config) == "table" and type(component.entry.config.bbit) == "table"
      and component.entry.config.bbit or {}
    local command = cfg.test or ws:variant_value(component.root_dir, "bbit.test") or ws:bbit_config().test
    if command == nil or command == "" then
      ctx.log("no test command configured")
      return
    end
    ctx.sh(command)
  end,
  inputs = function(component, task)
    local cfg = type(component.entry.config) == "table" and type(component.entry.config.bbit) == "table"
      and component.entry.config.bbit or {}
    return { test = cfg.test }
  end,
}
