--- Terminal facts and colours. Colours only on a terminal, never with `NO_COLOR`.
local core = require("bbit.core.term")

local M = {}

--- Is file descriptor `fd` (1 = stdout, 2 = stderr) a terminal?
---@param fd integer
---@return boolean
function M.isatty(fd)
  return core.isatty(fd)
end

--- The terminal's width in columns (80 when not a terminal).
---@param fd? integer default 2
---@return integer
function M.width(fd)
  return core.width(fd or 2) or 80
end

--- Monotonic clock in seconds, for measuring durations.
---@return number
function M.clock()
  return core.clock()
end

local codes = { red = 31, green = 32, yellow = 33, blue = 34, magenta = 35, cyan = 36, bold = 1, dim = 2 }

--- Should output on `fd` be coloured? (a terminal, and `NO_COLOR` unset or empty)
---@param fd integer
---@return boolean
function M.use_color(fd)
  local no = os.getenv("NO_COLOR")
  if no and no ~= "" then
    return false
  end
  if os.getenv("BBIT_FORCE_COLOR") == "1" then
    return true
  end
  return core.isatty(fd)
end

--- `text` wrapped in the ANSI colour `name` when `fd` is coloured, else as is.
---@param name "red"|"green"|"yellow"|"blue"|"magenta"|"cyan"|"bold"|"dim"
---@param text string
---@param fd? integer default 1
---@return string
function M.color(name, text, fd)
  if not M.use_color(fd or 1) then
    return text
  end
  return ("\27[%dm%s\27[0m"):format(codes[name] or 0, text)
end

return M
