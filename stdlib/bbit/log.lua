--- Levelled logging to stderr and progress lines. Results go to stdout (print);
--- everything here goes to stderr.
---
--- Levels: quiet < info < verbose < debug. `--verbose` and `--debug` set them.
local term = require("bbit.term")

local M = {}

local LEVELS = { quiet = 0, info = 1, verbose = 2, debug = 3 }
local level = LEVELS.info

--- Sets the level: "quiet", "info", "verbose" or "debug".
---@param name string
function M.set_level(name)
  level = assert(LEVELS[name], "unknown log level: " .. tostring(name))
end

--- Is messages of level `name` shown?
---@param name string
---@return boolean
function M.enabled(name)
  return level >= LEVELS[name]
end

--- Replaces every secret in `text` (bearer tokens, `token=` values) by `***`.
---@param text string
---@return string
function M.redact(text)
  text = text:gsub("([Bb]earer%s+)[^%s\"',]+", "%1***")
  text = text:gsub("([Tt]oken[\"']?%s*[:=]%s*[\"']?)[^%s\"'&,}]+", "%1***")
  return text
end

local progress_drawn = false

local function write(prefix, color, msg)
  if progress_drawn then
    io.stderr:write("\r\27[K")
    progress_drawn = false
  end
  if prefix then
    io.stderr:write(term.color(color, prefix, 2), msg, "\n")
  else
    io.stderr:write(msg, "\n")
  end
end

local function fmt(msg, ...)
  if select("#", ...) > 0 then
    return msg:format(...)
  end
  return tostring(msg)
end

--- An error line: `error: MSG` (always shown).
function M.error(msg, ...)
  write("error: ", "red", fmt(msg, ...))
end

--- A hint line under an error: `hint: MSG` (always shown).
function M.hint(msg, ...)
  write("hint: ", "cyan", fmt(msg, ...))
end

--- A warning: `warning: MSG` (shown unless quiet).
function M.warn(msg, ...)
  if level >= LEVELS.info then
    write("warning: ", "yellow", fmt(msg, ...))
  end
end

--- An informational line on stderr (shown unless quiet).
function M.info(msg, ...)
  if level >= LEVELS.info then
    write(nil, nil, fmt(msg, ...))
  end
end

--- A line shown with --verbose, secrets redacted.
function M.verbose(msg, ...)
  if level >= LEVELS.verbose then
    write("> ", "dim", M.redact(fmt(msg, ...)))
  end
end

--- A line shown with --debug, secrets redacted.
function M.debug(msg, ...)
  if level >= LEVELS.debug then
    write("debug: ", "dim", M.redact(fmt(msg, ...)))
  end
end

--- A progress display for `total` steps. On a terminal it redraws one line
--- `[ 45%] LABEL: item`; elsewhere it prints nothing but what `:line` prints.
---@param total integer
---@param label string
---@return table progress with :update(done, item), :line(text), :done()
function M.progress(total, label)
  local p = { total = math.max(total, 1), label = label, count = 0 }
  local live = term.isatty(2) and level >= LEVELS.info and level < LEVELS.verbose
  function p:update(done, item)
    self.count = done
    if not live then
      return
    end
    local pct = math.floor(done * 100 / self.total)
    local text = ("[%3d%%] %s: %s"):format(pct, self.label, item or "")
    local width = term.width(2)
    if #text >= width then
      text = text:sub(1, width - 1)
    end
    io.stderr:write("\r\27[K", text)
    progress_drawn = true
  end
  --- A permanent line (shown everywhere, above the live line).
  function p:line(text)
    M.info(text)
  end
  function p:done()
    if progress_drawn then
      io.stderr:write("\r\27[K")
      progress_drawn = false
    end
  end
  return p
end

return M
