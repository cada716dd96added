--- A string-keyed map of JSON values kept in small files (`<dir>/<nn>.json`,
--- `nn` = the first byte of the key's SHA-256 divided by 256/count: 64 files
--- by default, few enough that writing a whole large map stays cheap).
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

--- A map stored in folder `dir` (created on the first save), in
--- `opts.count` files (a power of 2 up to 256; default 64).
---@param dir string
---@param opts? {count?: integer}
---@return table
function M.open(dir, opts)
  local count = opts and opts.count or 64
  assert(count >= 1 and count <= 256 and 256 % count == 0, "shards.open: count must be a power of 2 up to 256")
  return setmetatable({ dir = dir, loaded = {}, dirty = {}, div = 256 // count }, Shards)
end

local function shard_of(self, key)
  return ("%02d"):format(tonumber(hash.sha256(key):sub(1, 2), 16) // self.div)
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

--- Reads every shard now, for a caller about to look at every key: keys
--- are then found without hashing them.
function Shards:load_all()
  if self.where then
    return
  end
  local where = {}
  for i = 0, 256 // self.div - 1 do
    local name = ("%02d"):format(i)
    for key in pairs(load(self, name)) do
      where[key] = name
    end
  end
  self.where = where
end

--- The value of `key`, or nil.
---@param key string
---@return any
function Shards:get(key)
  if self.where then
    local name = self.where[key]
    return name and self.loaded[name][key]
  end
  return load(self, shard_of(self, key))[key]
end

--- Sets (or, with nil, removes) the value of `key`. A value changed in
--- place is written only once it is set again.
---@param key string
---@param value any a JSON value
function Shards:set(key, value)
  local name = self.where and self.where[key] or shard_of(self, key)
  load(self, name)[key] = value
  if self.where then
    self.where[key] = value ~= nil and name or nil
  end
  self.dirty[name] = true
end

--- Every key and value (reads every shard); setting while iterating is allowed.
---@return function, table, nil
function Shards:pairs()
  self:load_all()
  local copy = {}
  for key, name in pairs(self.where) do
    copy[key] = self.loaded[name][key]
  end
  return next, copy, nil
end

--- Removes every key, and the files.
function Shards:clear()
  fs.try_remove(self.dir, { recursive = true })
  self.loaded, self.dirty, self.where = {}, {}, {}
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
