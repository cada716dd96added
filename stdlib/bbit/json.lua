--- JSON and JSONC: decode, encode (stable pretty or canonical compact), read and
--- write files.
---
--- Decoding accepts JSONC by default (`//` and `/* */` comments, trailing commas),
--- a superset of JSON; `strict = true` accepts only RFC 8259 JSON. A decode error
--- reads `NAME:line:column: what was expected`, e.g.
--- `workspace.jsonc:4:3: expected ',' or '}' after an object member`. Lines and
--- columns are 1-based; columns count characters (UTF-8 code points), not bytes,
--- and a tab is one column; only `\n` ends a line (CRLF files count like LF).
---
--- Values:
--- * objects decode to tables with metatable `json.object_mt`, arrays to tables
---   with `json.array_mt` (so `{}` and `[]` survive a round trip), null to
---   the sentinel `json.null` (so keys with null values are kept);
--- * integers that fit in 64 bits decode to Lua integers (exact beyond 2^53),
---   other numbers to floats; strings are byte strings (UTF-8 kept as is,
---   `\u` escapes including surrogate pairs become UTF-8, `\u0000` included);
--- * a duplicate key is an error at the second occurrence;
--- * nesting deeper than 1000 arrays/objects is an error.
---
--- Encoding: keys sorted bytewise in both forms; compact output has no
--- whitespace (canonical bytes, fit for hashing); pretty output has one member or
--- element per line, `indent` spaces (default 2), `{}`/`[]` when empty and a final
--- newline. A table encodes as an array when marked with `json.array` (or
--- `json.array_mt`) or when its keys are exactly 1..n; as an object when marked
--- with `json.object` or when its keys are strings; an unmarked empty table is
--- `{}`. Errors name the path of the bad value, array indices 1-based as in Lua:
--- `json.encode: $.a[2]: mixed table keys (strings and integers)`.
local core = require("bbit.core.json")
local fs_core = require("bbit.core.fs")
local errors = require("bbit.errors")

local M = {}

--- The value of JSON `null` (a light userdata). Decoding gives it; encoding
--- writes it (and `nil`, at the top level) as `null`.
---@type lightuserdata
M.null = core.null

--- The metatable of decoded objects; `json.object(t)` sets it.
---@type table
M.object_mt = core.object_mt

--- The metatable of decoded arrays; `json.array(t)` sets it.
---@type table
M.array_mt = core.array_mt

---@class bbit.json.DecodeOptions
---@field name? string the file name used in error messages (default `"<string>"`)
---@field strict? boolean refuse comments and trailing commas (default false: JSONC)

---@class bbit.json.EncodeOptions
---@field pretty? boolean one member per line, sorted keys, final newline (default: false for `encode`, true for `write`; true when `indent` is given)
---@field indent? integer spaces per level of pretty output, 1..16 (default 2)

local function decode_args(text, opts)
  if type(text) ~= "string" then
    error(("json.decode: text must be a string, got %s"):format(type(text)), 3)
  end
  opts = opts or {}
  return text, opts.name or "<string>", opts.strict and true or false
end

--- Decodes JSON or JSONC text. Raises a failure `NAME:line:column: what` on
--- bad input.
---@param text string
---@param opts? bbit.json.DecodeOptions
---@return any value a table (marked object/array), string, integer, float, boolean or `json.null`
function M.decode(text, opts)
  return (errors.check(core.decode(decode_args(text, opts))))
end

--- Like `decode`, but returns `nil, message` on bad input.
---@param text string
---@param opts? bbit.json.DecodeOptions
---@return any|nil value
---@return string? err `NAME:line:column: what`
function M.try_decode(text, opts)
  return core.decode(decode_args(text, opts))
end

--- Reads and decodes a JSON/JSONC file; errors name the path
--- (`path:line:column: what`, or `path: No such file or directory`).
---@param path string
---@param opts? bbit.json.DecodeOptions `name` defaults to `path`
---@return any|nil value
---@return string? err
---@return integer? errno when the file could not be read
function M.try_read(path, opts)
  -- read as a buffer: decoded without a copy into a Lua string
  local bytes, err, errno = fs_core.read(path, true)
  if not bytes then
    return nil, (err:gsub("^fs%.read: ", "")), errno
  end
  opts = opts or {}
  return core.decode(bytes, opts.name or path, opts.strict and true or false)
end

--- Like `read`, but nil when the file does not exist.
---@param path string
---@param opts? bbit.json.DecodeOptions `name` defaults to `path`
---@return any|nil value
function M.read_if_exists(path, opts)
  local value, err, errno = M.try_read(path, opts)
  if value == nil and errno == fs_core.errno.ENOENT then
    return nil
  end
  return (errors.check(value, err))
end

--- Reads and decodes a JSON/JSONC file; raises a failure naming the path.
---@param path string
---@param opts? bbit.json.DecodeOptions `name` defaults to `path`
---@return any value
function M.read(path, opts)
  return (errors.check(M.try_read(path, opts)))
end

local function indent_of(opts)
  if not opts then
    return 0
  end
  if opts.pretty == false then
    return 0
  end
  if opts.indent ~= nil then
    local n = opts.indent
    if math.type(n) ~= "integer" or n < 1 or n > 16 then
      error(("json.encode: indent must be an integer 1..16, got %s"):format(tostring(n)), 3)
    end
    return n
  end
  return opts.pretty and 2 or 0
end

--- Encodes a value; `nil, message` when it cannot be encoded.
---@param value any
---@param opts? bbit.json.EncodeOptions
---@return string|nil text
---@return string? err `json.encode: $.path: what`
function M.try_encode(value, opts)
  return core.encode(value, indent_of(opts))
end

--- Encodes a value: compact by default (no whitespace, keys sorted: canonical
--- bytes), pretty with `{pretty = true}` or `{indent = n}`. Raises a failure on
--- NaN/infinity, cycles, mixed or sparse tables, functions and the like, naming
--- the path of the bad value.
---@param value any
---@param opts? bbit.json.EncodeOptions
---@return string text
function M.encode(value, opts)
  return (errors.check(core.encode(value, indent_of(opts))))
end

--- Writes `value` to `path` as JSON, atomically (bbit.fs.write: a temporary
--- file in the same directory, fsync, rename over `path`, directory fsync).
--- Pretty (2 spaces) unless `opts.pretty == false`. On failure `path` is
--- unchanged and no temporary file is left.
---@param path string
---@param value any
---@param opts? bbit.json.EncodeOptions
---@return true|nil ok
---@return string? err `path: reason`, or `json.encode: $.path: what`
function M.try_write(path, value, opts)
  opts = opts or {}
  local pretty_opts = { pretty = opts.pretty ~= false, indent = opts.indent }
  local text, err = core.encode(value, indent_of(pretty_opts))
  if not text then
    return nil, err
  end
  -- bbit.fs.write: temp file + fsync + rename + directory fsync
  return require("bbit.fs").try_write(path, text, { mode = opts.mode, fsync = opts.fsync })
end

--- Writes `value` to `path` as JSON atomically (see `try_write`); raises a
--- failure naming the path or the bad value.
---@param path string
---@param value any
---@param opts? bbit.json.EncodeOptions
function M.write(path, value, opts)
  errors.check(M.try_write(path, value, opts))
end

local function mark(t, mt, fn)
  if t == nil then
    t = {}
  end
  if type(t) ~= "table" then
    error(("json.%s: expected a table, got %s"):format(fn, type(t)), 3)
  end
  local current = getmetatable(t)
  if current ~= nil and current ~= M.object_mt and current ~= M.array_mt then
    error(("json.%s: the table already has another metatable"):format(fn), 3)
  end
  return setmetatable(t, mt)
end

--- Marks `t` (default: a new table) to encode as a JSON array, even when empty.
---@generic T: table
---@param t? T
---@return T t the same table
function M.array(t)
  return mark(t, M.array_mt, "array")
end

--- Marks `t` (default: a new table) to encode as a JSON object, even when empty.
---@generic T: table
---@param t? T
---@return T t the same table
function M.object(t)
  return mark(t, M.object_mt, "object")
end

--- Would `v` encode as a JSON array? True for tables marked as arrays and for
--- unmarked tables whose keys are exactly 1..n (n >= 1).
---@param v any
---@return boolean
function M.is_array(v)
  if type(v) ~= "table" then
    return false
  end
  local mt = getmetatable(v)
  if mt == M.array_mt then
    return true
  end
  if mt == M.object_mt then
    return false
  end
  local count, max = 0, 0
  for k in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 then
      return false
    end
    count = count + 1
    if k > max then
      max = k
    end
  end
  return count > 0 and count == max
end

--- Would `v` encode as a JSON object? True for tables marked as objects, and
--- for unmarked tables that are empty or have only string keys.
---@param v any
---@return boolean
function M.is_object(v)
  if type(v) ~= "table" then
    return false
  end
  local mt = getmetatable(v)
  if mt == M.object_mt then
    return true
  end
  if mt == M.array_mt then
    return false
  end
  for k in pairs(v) do
    if type(k) ~= "string" then
      return false
    end
  end
  return true
end

return M
