--- The workspace's local scope (SPEC §2.3): `.git/bit/` when the workspace
--- root has a `.git` directory, else `.bit/`. It holds the object store, the
--- component refs (`refs.json`), the stat cache (`index.json`), the
--- journal of multi-file updates and the build cache.
---
--- refs.json:
---   { "format": 1, "components": { "<id>": {
---       "head": "0.0.2",                       -- the local head version
---       "versions": { "0.0.1": { "id": "<version object id>", "tree": "<files hash>",
---                                "exported": true } },
---       "remote": { "scope": "my-org.ui", "head": "0.0.1" }  -- last known remote head
---   } } }
local errors = require("bbit.errors")
local fs = require("bbit.fs")
local json = require("bbit.json")
local semver = require("bbit.semver")
local store = require("bbit.store")

local M = {}

local Scope = {}
-- scope.store is opened on first use: a command that takes the workspace
-- lock loads the packs committed before it got the lock (a store loads the
-- packs there are when it is opened; later ones only when a read misses)
Scope.__index = function(s, key)
  if key == "store" then
    local st = store.open(s.dir, { create = true })
    rawset(s, "store", st)
    return st
  end
  return Scope[key]
end

--- The local scope directory of the workspace at `root`.
---@param root string
---@return string
function M.dir_for(root)
  if fs.is_dir(root .. "/.git") then
    return root .. "/.git/bit"
  end
  return root .. "/.bit"
end

--- Opens (with `create`, creates) the local scope of the workspace at `root`.
---@param root string
---@param opts? {create?: boolean}
---@return table scope
function M.open(root, opts)
  local dir = M.dir_for(root)
  if not fs.is_dir(dir) then
    if not (opts and opts.create) then
      errors.fail(("the local scope %s is missing"):format(dir), "run `bbit init` in " .. root .. " to create it")
    end
    fs.mkdir(dir)
  end
  local s = setmetatable({ root = root, dir = dir }, Scope)
  if opts and opts.create then
    local _ = s.store -- `bbit init` lays out objects/ at once
  end
  return s
end

--- Takes the workspace lock (`<scope>/lock`) for the duration of a command
--- that writes. A second bbit fails with "locked by pid N".
---@param opts? {wait?: boolean}
---@return table lock handle (release with :release() or <close>)
function Scope:lock(opts)
  local wait = opts and opts.wait
  return fs.lock(self.dir .. "/lock", { wait = wait, timeout = wait and 30 or nil })
end

--- Removes temporary files an interrupted command left (build and fetch
--- folders, unfinished objects). Call with the workspace lock held: no other
--- bbit can be using them then.
function Scope:clean_temp()
  for _, name in ipairs(fs.glob("tmp-*", { cwd = self.dir })) do
    fs.remove(self.dir .. "/" .. name, { recursive = true })
  end
  for _, name in ipairs(fs.glob("*", { cwd = self.dir .. "/objects/tmp" })) do
    fs.remove(self.dir .. "/objects/tmp/" .. name, { recursive = true })
  end
end

--- The refs (loaded once per scope object).
---@return table
function Scope:refs()
  if not self._refs then
    self._refs = json.read_if_exists(self.dir .. "/refs.json") or { format = 1, components = {} }
    self._refs.components = self._refs.components or {}
  end
  return self._refs
end

--- The ref of component `id`, or nil.
---@param id string
---@return table|nil
function Scope:component(id)
  return self:refs().components[id]
end

--- The versions of a component's ref, sorted ascending.
---@param ref table
---@return string[]
function M.versions_of(ref)
  local list = {}
  for v in pairs(ref.versions or {}) do
    list[#list + 1] = v
  end
  return semver.sort(list)
end

--- A ref's versions (ascending), its staged ones (tagged, never exported)
--- and its newest exported version (or nil), sorting once.
---@param ref table
---@return string[] versions
---@return string[] staged
---@return string|nil exported_head
function M.summary(ref)
  local only = next(ref.versions or {})
  if only and next(ref.versions, only) == nil then -- one version: nothing to sort
    local exported = ref.versions[only].exported
    return { only }, exported and {} or { only }, exported and only or nil
  end
  local versions, staged, head = M.versions_of(ref), {}, nil
  for _, v in ipairs(versions) do
    if ref.versions[v].exported then
      head = v
    else
      staged[#staged + 1] = v
    end
  end
  return versions, staged, head
end

--- The staged (tagged, never exported) versions of a ref, ascending.
---@param ref table
---@return string[]
function M.staged_of(ref)
  local _, staged = M.summary(ref)
  return staged
end

--- The newest exported version of a ref, or nil.
---@param ref table
---@return string|nil
function M.exported_head(ref)
  local _, _, head = M.summary(ref)
  return head
end

--- Stores a version object (canonical compact JSON); returns its id.
---@param obj table
---@return string id
function Scope:put_version(obj)
  return self.store:put(json.encode(obj))
end

--- Reads and decodes the version object `id` (hash verified).
---@param id string
---@return table
function Scope:read_version(id)
  return json.decode(self.store:get(id), { name = "version object " .. id })
end

--- The stat cache (see Workspace:scan): `index.json` = { format = 4,
--- components = { [id] = { sig, main, root, tree, issues } }, deps_key, deps = { [id] =
--- { key, deps, unknown } } }, and the file lists in `index-files/` (a
--- `bbit.shards` map: id -> packed list), read only when a file list is needed.
---@return table
function Scope:index()
  if not self._index then
    local ok, index = pcall(json.read_if_exists, self.dir .. "/index.json")
    -- A damaged or older stat cache is only a cache: start over.
    if not ok or type(index) ~= "table" or index.format ~= 4 then
      index = { format = 4, components = {}, deps = {} }
      -- the one-file caches of format 3 (now index-files/ and cache/tasks/)
      fs.try_remove(self.dir .. "/index-files.json")
      fs.try_remove(self.dir .. "/cache/tasks.json")
    end
    self._index = index
  end
  return self._index
end

--- The cached file lists of the stat cache (see `index`): `:get(id)`, `:set(id, packed)`.
---@return table
function Scope:index_files()
  self._index_files = self._index_files or require("bbit.shards").open(self.dir .. "/index-files")
  return self._index_files
end

--- Writes the stat cache (no fsync: losing it only costs re-hashing).
function Scope:save_index()
  if self._index_files then
    self._index_files:save()
  end
  fs.write(self.dir .. "/index.json", json.encode(self:index()), { fsync = false })
end

-- Journal entries (`journal/NAME.json`): what a command must finish or undo
-- if it is interrupted, e.g. the export's transactions. (The refs + .bitmap
-- update of tag, export, reset and import has its own, see
-- Workspace:commit_changes.)

--- Writes the journal entry `name` (e.g. "export") with `data` (fsynced).
---@param name string
---@param data table
function Scope:journal_write(name, data)
  fs.mkdir(self.dir .. "/journal")
  fs.write(self.dir .. "/journal/" .. name .. ".json", json.encode(data))
end

--- Removes the journal entry `name`.
---@param name string
function Scope:journal_clear(name)
  fs.remove(self.dir .. "/journal/" .. name .. ".json")
end

--- The journal entry `name`, or nil.
---@param name string
---@return table|nil
function Scope:journal_read(name)
  return json.read_if_exists(self.dir .. "/journal/" .. name .. ".json")
end

return M
