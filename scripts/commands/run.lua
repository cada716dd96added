-- bbit run FILE.lua [ARGS...]: run a Lua script with the whole stdlib.
local errors = require("bbit.errors")

return {
  summary = "run a Lua script with the whole stdlib (CI automation)",
  usage = "bbit run FILE.lua [ARGS...]",
  description = [[
The script sees `arg` (arg[0] is the script, arg[1..] its arguments) and `...`,
can `require` any stdlib module ("bbit.json", "bbit.fs", "bbit.http", ...) or
use the global `bbit` table (bbit.json.decode(...)), and can `require` Lua
files beside it. An integer it returns is the exit code. A failure raised by
the stdlib exits 1 with its message; any other error exits 1 with file:line
(the traceback with --debug).]],
  stop_at_positional = true,
  run = function(ctx)
    local file = ctx.args[1]
    if not file then
      errors.usage("bbit run needs a script: bbit run FILE.lua [ARGS...]")
    end
    local f, err = io.open(file, "rb")
    if not f then
      errors.fail(("cannot read script %s: %s"):format(file, err:gsub("^[^:]*: ", "")))
    end
    local source = f:read("a")
    f:close()
    local chunk, load_err = load(source, "@" .. file, "t")
    if not chunk then
      errors.fail(load_err)
    end
    local dir = file:match("^(.*)/[^/]*$") or "."
    package.path = dir .. "/?.lua;" .. dir .. "/?/init.lua;" .. package.path
    local script_args = { [0] = file, table.unpack(ctx.args, 2) }
    _G.arg = script_args
    local traceback
    local ok, result = xpcall(chunk, function(e)
      if errors.is_failure(e) then
        return e
      end
      traceback = debug.traceback(tostring(e), 2)
      return e
    end, table.unpack(script_args, 1, #ctx.args - 1))
    if not ok then
      if errors.is_failure(result) then
        error(result, 0)
      end
      if ctx.globals.debug and traceback then
        io.stderr:write(traceback, "\n")
      end
      errors.fail(tostring(result))
    end
    if math.type(result) == "integer" then
      return result
    end
    return 0
  end,
}
