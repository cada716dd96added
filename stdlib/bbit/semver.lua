--- Semantic versions (https://semver.org): parse, compare, bump.
local errors = require("bbit.errors")

local M = {}

local Version = {}
Version.__index = Version

Version.__tostring = function(v)
  local s = ("%d.%d.%d"):format(v.major, v.minor, v.patch)
  if v.prerelease then
    s = s .. "-" .. v.prerelease
  end
  if v.build then
    s = s .. "+" .. v.build
  end
  return s
end

local function num(s)
  if s ~= "0" and s:sub(1, 1) == "0" then
    return nil
  end
  return math.tointeger(tonumber(s))
end

--- Parses "MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]"; nil, err when invalid.
---@param s string
---@return table|nil version {major, minor, patch, prerelease?, build?}
---@return string? err
function M.try_parse(s)
  if type(s) ~= "string" then
    return nil, "not a version: " .. tostring(s)
  end
  local core, rest = s:match("^(%d+%.%d+%.%d+)(.*)$")
  if not core then
    return nil, ("invalid version '%s' (expected MAJOR.MINOR.PATCH, e.g. 1.2.0)"):format(s)
  end
  local major, minor, patch = core:match("^(%d+)%.(%d+)%.(%d+)$")
  local v = { major = num(major), minor = num(minor), patch = num(patch) }
  if not (v.major and v.minor and v.patch) then
    return nil, ("invalid version '%s' (numbers must not have leading zeros)"):format(s)
  end
  if rest ~= "" then
    local pre, build = rest:match("^%-([0-9A-Za-z%-%.]+)%+([0-9A-Za-z%-%.]+)$")
    if not pre then
      pre = rest:match("^%-([0-9A-Za-z%-%.]+)$")
      build = pre and nil or rest:match("^%+([0-9A-Za-z%-%.]+)$")
    end
    if not pre and not build then
      return nil, ("invalid version '%s'"):format(s)
    end
    v.prerelease, v.build = pre, build
  end
  return setmetatable(v, Version)
end

--- Parses a version; raises a failure when invalid.
---@param s string
---@return table
function M.parse(s)
  return errors.check(M.try_parse(s))
end

--- Is `s` a valid semantic version?
---@param s string
---@return boolean
function M.valid(s)
  return M.try_parse(s) ~= nil
end

local function compare_pre(a, b)
  if a == b then
    return 0
  end
  if not a then
    return 1
  end
  if not b then
    return -1
  end
  local pa, pb = {}, {}
  for p in a:gmatch("[^.]+") do
    pa[#pa + 1] = p
  end
  for p in b:gmatch("[^.]+") do
    pb[#pb + 1] = p
  end
  for i = 1, math.max(#pa, #pb) do
    local x, y = pa[i], pb[i]
    if x == nil then
      return -1
    end
    if y == nil then
      return 1
    end
    local nx, ny = tonumber(x), tonumber(y)
    if nx and ny then
      if nx ~= ny then
        return nx < ny and -1 or 1
      end
    elseif nx then
      return -1
    elseif ny then
      return 1
    elseif x ~= y then
      return x < y and -1 or 1
    end
  end
  return 0
end

local function compare_parsed(a, b)
  if a.major ~= b.major then
    return a.major < b.major and -1 or 1
  elseif a.minor ~= b.minor then
    return a.minor < b.minor and -1 or 1
  elseif a.patch ~= b.patch then
    return a.patch < b.patch and -1 or 1
  end
  return compare_pre(a.prerelease, b.prerelease)
end

--- Compares two versions (strings or parsed): -1, 0 or 1. Build metadata is ignored.
---@return integer
function M.compare(a, b)
  a = type(a) == "string" and M.parse(a) or a
  b = type(b) == "string" and M.parse(b) or b
  return compare_parsed(a, b)
end

--- The next version after `v` for `level` ("major", "minor", "patch").
--- A prerelease bumps to its release (1.0.0-rc.1 + patch = 1.0.0).
---@param v string
---@param level "major"|"minor"|"patch"
---@return string
function M.bump(v, level)
  local p = M.parse(v)
  if level == "major" then
    if not (p.prerelease and p.minor == 0 and p.patch == 0) then
      p.major = p.major + 1
    end
    p.minor, p.patch = 0, 0
  elseif level == "minor" then
    if not (p.prerelease and p.patch == 0) then
      p.minor = p.minor + 1
    end
    p.patch = 0
  elseif level == "patch" then
    if not p.prerelease then
      p.patch = p.patch + 1
    end
  else
    errors.usage("unknown version bump '" .. tostring(level) .. "' (use major, minor or patch)")
  end
  p.prerelease, p.build = nil, nil
  return tostring(p)
end

-- Version string -> parsed, for sorting: each distinct version is parsed
-- once per process, not at every comparison (a workspace of 1,000
-- components with 50 versions each sorts 50,000). Never handed out: parse
-- returns a fresh table, which callers may change.
local sort_keys = {}

local function sort_key(s)
  local k = sort_keys[s]
  if not k then
    k = M.parse(s)
    sort_keys[s] = k
  end
  return k
end

--- Sorts a list of version strings ascending, in place; returns it.
---@param list string[]
---@return string[]
function M.sort(list)
  table.sort(list, function(a, b)
    return compare_parsed(sort_key(a), sort_key(b)) < 0
  end)
  return list
end

return M
