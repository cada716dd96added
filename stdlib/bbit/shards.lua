--- A string-keyed map of JSON values kept in 64 small files
--- (`<dir>/<nn>.json`, `nn` = the first byte of the key's SHA-256 divided by 4,
--- 00 to 63: few enough that writing a whole large map stays cheap).
--- A shard is read when one of its keys is first needed and rewritten only
--- when it changed, so touching a few keys of a large map costs a few small
--- files, not the whole map. A damaged shard reads as empty: use it for
--- caches, whose entries can always be computed again.
---
---   local cache = shards.open(dir)
---   cache:set("key", { any = "json" }); print(cache:get("key").any)
---   cache:save()   -- writes the changed shards (not fsynced)
local fs = require("bbit.fs")
local hash = require("bbit.hash")
local json = require("bbit.json")

local M = {}

local Shards = {}
Shards.__index = Shards

--- A map stored in folder `dir` (created on the first save).
---@param dir string
---@return table
function M.open(dir)
  return setmetatable({ dir = dir, loaded = {}, dirty = {} }, Shards)
end

local function shard_of(key)
  return ("%02d"):format(tonumber(hash.sha256(key):sub(1, 2), 16) // 4)
end

local function load(self, name)
  local shard = self.loaded[name]
  if not shard then
    local file = ("%s/%s.json"):format(self.dir, name)
    local text = fs.try_read(file)
    local ok, value = pcall(function()
      return text and json.decode(text, { name = file })
    end)
    shard = ok and json.is_object(value) and value or {}
    self.loaded[name] = shard
  end
  return shard
end

--- The value of `key`, or nil.
---@param key string
---@return any
function Shards:get(key)
  return load(self, shard_of(key))[key]
end

--- Sets (or, with nil, removes) the value of `key`.
---@param key string
---@param value any a JSON value
function Shards:set(key, value)
  local name = shard_of(key)
  load(self, name)[key] = value
  self.dirty[name] = true
end

--- Writes the shards changed since they were read. `keep(key, value)`, when
--- given, decides which entries of those shards stay (to expire old ones).
---@param keep? fun(key: string, value: any): boolean
function Shards:save(keep)
  if next(self.dirty) == nil then
    return
  end
  fs.mkdir(self.dir)
  for name in pairs(self.dirty) do
    local shard = self.loaded[name]
    if keep then
      for key, value in pairs(shard) do
        if not keep(key, value) then
          shard[key] = nil
        end
      end
    end
    fs.write(("%s/%s.json"):format(self.dir, name), json.encode(json.object(shard)), { fsync = false })
  end
  self.dirty = {}
end

return M
