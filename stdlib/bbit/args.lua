--- Command-line parsing, for commands and for `bbit run` scripts.
---
--- An option spec: `{ "name", short = "n", type = "boolean"|"string"|"number"|"list",
--- arg = "VALUE", help = "...", default = ... }`. Accepted forms: `--name`,
--- `--name value`, `--name=value`, `-n value`, `-nvalue`; `--` ends options.
--- `list` options may repeat. Unknown options are usage errors (exit 2).
local errors = require("bbit.errors")

local M = {}

local function find_spec(specs, long, short)
  for _, s in ipairs(specs) do
    if (long and s[1] == long) or (short and s.short == short) then
      return s
    end
  end
end

local function convert(spec, value, shown)
  if spec.type == "number" then
    local n = tonumber(value)
    if not n then
      errors.usage(("option %s expects a number, got '%s'"):format(shown, value))
    end
    return n
  end
  return value
end

local function store(opts, spec, value)
  local key = spec[1]:gsub("%-", "_")
  if spec.type == "list" then
    opts[key] = opts[key] or {}
    table.insert(opts[key], value)
  else
    opts[key] = value
  end
end

--- Parses `argv` against `specs`.
---@param argv string[]
---@param specs table[]
---@param stop_at_positional? boolean stop at the first positional (for `bbit run FILE ARGS...`)
---@return table opts option values by name (`-` in names becomes `_`)
---@return string[] positional the remaining arguments
function M.parse(argv, specs, stop_at_positional)
  local opts, positional = {}, {}
  for _, s in ipairs(specs) do
    if s.default ~= nil then
      opts[(s[1]:gsub("%-", "_"))] = s.default
    end
  end
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do
        positional[#positional + 1] = argv[j]
      end
      break
    end
    local long, inline = a:match("^%-%-([^=]+)=(.*)$")
    if not long then
      long = a:match("^%-%-(.+)$")
    end
    local short, rest
    if not long then
      short, rest = a:match("^%-(%a)(.*)$")
    end
    if long or short then
      local shown = long and ("--" .. long) or ("-" .. short)
      local spec = find_spec(specs, long, short)
      if not spec and long and long:match("^no%-") then
        local base = find_spec(specs, long:sub(4))
        if base and base.type == "boolean" then
          store(opts, base, false)
          goto continue
        end
      end
      if not spec then
        errors.usage(("unknown option %s"):format(shown))
      end
      if spec.type == "boolean" then
        if inline ~= nil then
          errors.usage(("option %s takes no value"):format(shown))
        end
        store(opts, spec, true)
      else
        local value = inline
        if value == nil and short and rest ~= "" then
          value = rest
        end
        if value == nil then
          i = i + 1
          value = argv[i]
          if value == nil then
            errors.usage(("option %s needs a value (%s)"):format(shown, spec.arg or "VALUE"))
          end
        end
        store(opts, spec, convert(spec, value, shown))
      end
    else
      positional[#positional + 1] = a
      if stop_at_positional then
        for j = i + 1, #argv do
          positional[#positional + 1] = argv[j]
        end
        break
      end
    end
    ::continue::
    i = i + 1
  end
  return opts, positional
end

--- Formats the option list of `specs` for `--help`.
---@param specs table[]
---@return string
function M.format_options(specs)
  local lines = {}
  for _, s in ipairs(specs) do
    local left = (s.short and ("-" .. s.short .. ", ") or "    ") .. "--" .. s[1]
    if s.type ~= "boolean" then
      left = left .. " " .. (s.arg or "VALUE")
    end
    lines[#lines + 1] = ("  %-26s %s"):format(left, s.help or "")
  end
  return table.concat(lines, "\n")
end

return M
