-- A lint task in Lua: no trailing whitespace and no `console.log` in sources.
-- A task module returns { run = function(component, ctx) ... end }; raising
-- (or bbit.errors.fail) fails the task, and with it the whole tag.
local fs = require("bbit.fs")

return {
  run = function(component, ctx)
    local problems = {}
    for _, f in ipairs(component.files) do
      if f.path:match("%.js$") then
        local n = 0
        for line in (fs.read(f.abs) .. "\n"):gmatch("(.-)\n") do
          n = n + 1
          if line:match("%s+$") then
            problems[#problems + 1] = ("%s:%d: trailing whitespace"):format(f.path, n)
          end
          if line:match("console%.log") then
            problems[#problems + 1] = ("%s:%d: console.log left in"):format(f.path, n)
          end
        end
      end
    end
    if #problems > 0 then
      bbit.errors.fail(("lint found %d problem(s):\n  %s"):format(#problems, table.concat(problems, "\n  ")))
    end
    ctx.log(("lint: %d files clean"):format(#component.files))
  end,
}
