--- The command-line runner (private): global options, command lookup,
--- `--help`, and the exit codes of SPEC §3. Called by runtime/main.c.
local args = require("bbit.args")
local errors = require("bbit.errors")
local host = require("bbit.core.host")
local log = require("bbit.log")
local scripts = require("bbit.scripts")

local M = {}

local EXIT_INTERNAL = 70

local GLOBAL_HELP = [[
global options:
  -C DIR          run as if bbit was started in DIR
  --debug         show tracebacks of internal errors and debug logs
  --verbose, -v   echo commands and HTTP requests (tokens redacted)
  --version       print the version
  --help, -h      this help; `bbit COMMAND --help` for a command]]

-- The order commands are listed in `bbit --help`; others follow, sorted.
local COMMAND_ORDER = {
  "init", "add", "status", "build", "tag", "reset", "export", "import", "list", "log", "show",
  "login", "logout", "whoami", "remote", "config", "run", "scripts", "serve", "server",
}

local function command_names(root)
  local seen, names = {}, {}
  for _, s in ipairs(scripts.list(root)) do
    local name = s.name:match("^commands/([^/]+)$")
    if name then
      seen[name] = true
    end
  end
  for _, name in ipairs(COMMAND_ORDER) do
    if seen[name] then
      names[#names + 1] = name
      seen[name] = nil
    end
  end
  local rest = {}
  for name in pairs(seen) do
    rest[#rest + 1] = name
  end
  table.sort(rest)
  for _, name in ipairs(rest) do
    names[#names + 1] = name
  end
  return names
end

local function main_help(root)
  local out = {
    ("bbit %s: version and publish independent components"):format(host.version),
    "",
    "usage: bbit [-C DIR] [--debug] [--verbose] COMMAND [ARGS...]",
    "",
    "commands:",
  }
  for _, name in ipairs(command_names(root)) do
    local ok, cmd = pcall(scripts.load, "commands/" .. name, root)
    local summary = ok and type(cmd) == "table" and cmd.summary or "(failed to load: run `bbit --debug " .. name .. " --help`)"
    out[#out + 1] = ("  %-10s %s"):format(name, summary)
  end
  out[#out + 1] = ""
  out[#out + 1] = GLOBAL_HELP
  return table.concat(out, "\n")
end

local function command_help(path, cmd)
  local out = { "usage: " .. (cmd.usage or ("bbit " .. path)) }
  if cmd.summary then
    out[#out + 1] = ""
    out[#out + 1] = cmd.summary
  end
  if cmd.description then
    out[#out + 1] = ""
    out[#out + 1] = cmd.description
  end
  if cmd.subcommands then
    out[#out + 1] = ""
    out[#out + 1] = "subcommands:"
    local names = {}
    for name in pairs(cmd.subcommands) do
      names[#names + 1] = name
    end
    table.sort(names)
    for _, name in ipairs(names) do
      out[#out + 1] = ("  %-12s %s"):format(name, cmd.subcommands[name].summary or "")
    end
  end
  local options = cmd.options or {}
  out[#out + 1] = ""
  out[#out + 1] = "options:"
  if #options > 0 then
    out[#out + 1] = args.format_options(options)
  end
  out[#out + 1] = "  -h, --help                 show this help"
  return table.concat(out, "\n")
end

-- Global options come before the command (-C) or anywhere (--debug, --verbose).
local function parse_globals(argv)
  local g = { debug = false, verbose = false }
  local rest = {}
  local i = 1
  local seen_command = false
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i, #argv do
        rest[#rest + 1] = argv[j]
      end
      break
    elseif a == "--debug" then
      g.debug = true
    elseif a == "--verbose" or a == "-v" then
      g.verbose = true
    elseif not seen_command and a == "-C" then
      i = i + 1
      g.dir = argv[i] or errors.usage("option -C needs a directory")
    elseif not seen_command and (a == "--version") then
      g.version = true
    elseif not seen_command and (a == "--help" or a == "-h") then
      g.help = true
    elseif not seen_command and a:sub(1, 1) == "-" then
      errors.usage(("unknown option %s (global options go before the command; see bbit --help)"):format(a))
    else
      if not seen_command and a:sub(1, 1) ~= "-" then
        seen_command = true
      end
      rest[#rest + 1] = a
      if seen_command and a == "run" then
        -- everything after `run FILE` belongs to the script
        for j = i + 1, #argv do
          rest[#rest + 1] = argv[j]
        end
        break
      end
    end
    i = i + 1
  end
  return g, rest
end

-- The global `bbit`: `bbit.json` is `require "bbit.json"`, loaded on first use.
_G.bbit = setmetatable({}, {
  __index = function(t, name)
    local module = require("bbit." .. name)
    rawset(t, name, module)
    return module
  end,
})

local function dispatch(argv)
  local g, rest = parse_globals(argv)
  M.globals = g
  log.set_level(g.debug and "debug" or (g.verbose and "verbose" or "info"))
  if g.dir then
    local ok, err = require("bbit.core.fs").chdir(g.dir)
    if not ok then
      errors.fail(("cannot change to directory '%s' (-C): %s"):format(g.dir, err))
    end
  end
  local root = require("bbit.workspace").find_root()
  if g.version then
    print("bbit " .. host.version)
    return 0
  end
  local name = table.remove(rest, 1)
  if g.help or name == nil or name == "help" and #rest == 0 then
    print(main_help(root))
    return (name == nil and not g.help) and 2 or 0
  end
  if name == "help" then
    name = table.remove(rest, 1)
    table.insert(rest, 1, "--help")
  end
  if not name:match("^[%w_%-]+$") or not scripts.find("commands/" .. name, root) then
    errors.usage(("'%s' is not a bbit command; see bbit --help"):format(name))
  end
  local cmd, found = scripts.load("commands/" .. name, root)
  local path = name
  -- Descend into subcommands: `bbit remote add`, `bbit server scope create`.
  while cmd.subcommands do
    local sub = rest[1]
    if sub == nil or sub == "--help" or sub == "-h" then
      print(command_help(path, cmd))
      return sub == nil and 2 or 0
    end
    if not cmd.subcommands[sub] then
      errors.usage(("'%s %s' is not a bbit command; see bbit %s --help"):format(path, sub, path))
    end
    table.remove(rest, 1)
    cmd, path = cmd.subcommands[sub], path .. " " .. sub
  end
  for _, a in ipairs(rest) do
    if a == "--help" or a == "-h" then
      print(command_help(path, cmd))
      return 0
    end
    if a == "--" or (cmd.stop_at_positional and a:sub(1, 1) ~= "-") then
      break
    end
  end
  local opts, positional = args.parse(rest, cmd.options or {}, cmd.stop_at_positional)
  local ctx = {
    command = path,
    opts = opts,
    args = positional,
    globals = g,
    workspace_root = root,
  }
  local code = scripts.call(found, cmd.run, ctx)
  return tonumber(code) or 0
end

--- Runs the command line `argv`; returns the exit code.
---@param argv string[]
---@return integer
function M.main(argv)
  local ok, result = xpcall(dispatch, function(e)
    e = scripts.attribute(e, nil, 3)
    if errors.is_failure(e) then
      return e
    end
    return { bug = e, traceback = debug.traceback(tostring(e), 2) }
  end, argv)
  io.stdout:flush()
  if ok then
    return result
  end
  if errors.is_interrupt(result.bug) then
    log.error("interrupted; nothing half-done was kept (run the command again)")
    return 130
  end
  if errors.is_failure(result) then
    if result.exit == 2 then
      log.error(("usage: %s"):format(result.message))
    else
      log.error(result.message)
    end
    if result.hint then
      log.hint(result.hint)
    end
    return result.exit or 1
  end
  log.error("internal error, please report: " .. tostring(result.bug))
  if M.globals and M.globals.debug then
    io.stderr:write(result.traceback, "\n")
  else
    io.stderr:write("(run again with --debug for the traceback)\n")
  end
  return EXIT_INTERNAL
end

return M
