--- Path strings, POSIX style ('/'-separated), handled lexically: nothing here
--- touches the filesystem except `relative` and `is_within` when they must
--- resolve a relative path against the current directory. Symlinks are not
--- resolved (use `bbit.fs.realpath` first when that matters).
---
---   local path = require("bbit.path")
---   path.join("components", "ui", "button")   --> "components/ui/button"
---   path.normalize("a/./b/../c//d/")          --> "a/c/d"
---   path.safe_relative("../etc/passwd")       --> nil, "path '../etc/passwd' escapes its root with .."
local core = require("bbit.core.fs")
local errors = require("bbit.errors")

local M = {}

--- Is `p` absolute (starts with '/')?
---@param p string
---@return boolean
function M.is_absolute(p)
  return p:sub(1, 1) == "/"
end

--- The lexical normal form of `p`: repeated '/' collapse, `.` segments go,
--- `x/..` pairs cancel, a trailing '/' goes; leading `..` of a relative path
--- stay (`../a`), `..` above `/` is `/`; `""` and `"."` give `"."`.
---@param p string
---@return string
function M.normalize(p)
  return core.path_normalize(p)
end

--- Joins the non-empty parts with '/' and normalizes the result. An absolute
--- part after the first does not restart the path (`join("a", "/b")` is
--- `"a/b"`), so joining a root with an untrusted name cannot leave the root by
--- being absolute (check `..` with `safe_relative`). No parts give `"."`.
---@param ... string
---@return string
function M.join(...)
  local parts = {}
  for i = 1, select("#", ...) do
    local part = select(i, ...)
    if type(part) ~= "string" then
      error(("bad argument #%d to 'join' (string expected, got %s)"):format(i, type(part)), 2)
    end
    if part ~= "" then
      parts[#parts + 1] = part
    end
  end
  return core.path_normalize(table.concat(parts, "/"))
end

--- The directory part of `p` (normalized): `dirname("a/b")` is `"a"`,
--- `dirname("a")` is `"."`, `dirname("/a")` and `dirname("/")` are `"/"`.
---@param p string
---@return string
function M.dirname(p)
  local n = core.path_normalize(p)
  if n == "/" or n == "." then
    return n
  end
  local dir = n:match("^(.*)/[^/]*$")
  if dir == nil then
    return "."
  end
  return dir == "" and "/" or dir
end

--- The last segment of `p`, ignoring trailing '/': `basename("a/b/")` is
--- `"b"`, `basename("/")` is `"/"`, `basename("")` is `""`.
---@param p string
---@return string
function M.basename(p)
  if p == "" then
    return ""
  end
  local trimmed = p:gsub("/+$", "")
  if trimmed == "" then
    return "/"
  end
  return trimmed:match("[^/]*$")
end

-- An absolute, normalized form of p (relative paths resolved against cwd).
local function absolute(p)
  if M.is_absolute(p) then
    return core.path_normalize(p)
  end
  return core.path_normalize(errors.check(core.cwd()) .. "/" .. p)
end

local function starts_with_dotdot(p)
  return p == ".." or p:sub(1, 3) == "../"
end

local function split(p)
  local out = {}
  if p == "." or p == "/" then
    return out
  end
  for seg in p:gmatch("[^/]+") do
    out[#out + 1] = seg
  end
  return out
end

--- The relative path that leads from directory `from` to `to`:
--- `relative("a/b", "a/c/d")` is `"../c/d"`, `relative("a", "a")` is `"."`.
--- Two relative paths are compared lexically; when one is absolute, or one
--- starts with `..`, both are first resolved against the current directory.
---@param from string
---@param to string
---@return string
function M.relative(from, to)
  local f, t = core.path_normalize(from), core.path_normalize(to)
  if M.is_absolute(f) ~= M.is_absolute(t) or starts_with_dotdot(f) or starts_with_dotdot(t) then
    f, t = absolute(f), absolute(t)
  end
  local fs, ts = split(f), split(t)
  local common = 0
  while common < #fs and common < #ts and fs[common + 1] == ts[common + 1] do
    common = common + 1
  end
  local out = {}
  for _ = common + 1, #fs do
    out[#out + 1] = ".."
  end
  for i = common + 1, #ts do
    out[#out + 1] = ts[i]
  end
  return #out == 0 and "." or table.concat(out, "/")
end

--- Is `p` equal to `root` or inside it, lexically (both normalized; `..` in
--- `p` counts)? When exactly one of them is absolute, the other is resolved
--- against the current directory first.
---@param root string
---@param p string
---@return boolean
function M.is_within(root, p)
  if M.is_absolute(root) ~= M.is_absolute(p) then
    return core.path_is_within(absolute(root), absolute(p))
  end
  return core.path_is_within(root, p)
end

--- `p` normalized, when it is a safe relative path: not empty, not absolute,
--- not escaping with `..` (`a/../../x`). Otherwise nil and a message naming
--- the path: "path '/etc/passwd' is absolute (a relative path was
--- expected)", "path '../x' escapes its root with ..", "path '' is empty".
--- Use it on every path that comes from outside (archives, servers, configs)
--- before joining it to a root.
---@param p string
---@return string? normalized
---@return string? err
function M.safe_relative(p)
  local norm, err = core.path_safe_relative(p)
  return norm, err
end

--- Like `safe_relative`, but raises the message as a failure.
---@param p string
---@return string normalized
function M.check_relative(p)
  return (errors.check(core.path_safe_relative(p)))
end

return M
