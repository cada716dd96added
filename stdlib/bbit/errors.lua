--- Errors bbit reports to the user, as distinct from bugs.
---
--- A *failure* (`errors.fail`) is something the user can fix: a missing file, a
--- refused connection, a bad config. The CLI prints its message and exits 1.
--- A *usage error* (`errors.usage`) is a wrong command line: exit 2.
--- Any other Lua error is a bug: exit 70, "internal error, please report".
local M = {}

local Failure = {}
Failure.__index = Failure
Failure.__tostring = function(e)
  return e.message
end

--- A failure value (not raised), for code that must return or re-raise it.
---@param message string
---@param hint? string
---@return table
function M.failure(message, hint)
  return setmetatable({ message = tostring(message), exit = 1, hint = hint }, Failure)
end

local function raise(message, exit, hint)
  error(setmetatable({ message = tostring(message), exit = exit, hint = hint }, Failure), 0)
end

--- Raises a reported failure (exit 1).
---@param message string what went wrong, naming the file/component/scope
---@param hint? string how to fix it (printed on its own line)
function M.fail(message, hint)
  raise(message, 1, hint)
end

--- Raises a usage error (exit 2).
---@param message string
function M.usage(message)
  raise(message, 2)
end

--- Is `e` a failure or usage error raised by this module?
---@return boolean
function M.is_failure(e)
  return getmetatable(e) == Failure
end

--- Passes `v, ...` through when `v` is not nil; else raises `err` as a failure.
--- Turns a raw module's `nil, err` result into a raised failure.
function M.check(v, err, ...)
  if v == nil then
    raise(err or "unknown error", 1)
  end
  return v, err, ...
end

--- The error raised in Lua when bbit gets SIGINT or SIGTERM (runtime/main.c).
M.INTERRUPTED = "bbit: interrupted"

--- Is `e` the interruption by SIGINT/SIGTERM? Code that catches errors to
--- clean up must re-raise it unchanged.
---@return boolean
function M.is_interrupt(e)
  return e == M.INTERRUPTED
end

--- The message of any error value (failure, string, other).
---@return string
function M.message(e)
  if getmetatable(e) == Failure then
    return e.message
  end
  return tostring(e)
end

return M
