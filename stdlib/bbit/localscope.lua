--- The workspace's local scope (SPEC §2.3): `.git/bit/` when the workspace
--- root has a `.git` directory, else `.bit/`. It holds the object store, the
--- component refs (`refs/`), the stat cache (`index.json`), the journal of
--- multi-file updates and the build cache.
---
--- The refs of each component:
---   { "head": "0.0.2",                                   -- the local head version
---     "versions": { "0.0.1": { "id": "<version object id>", "tree": "<files hash>",
---                              "exported": true } },
---     "remote": { "scope": "my-org.ui", "head": "0.0.1" } } -- last known remote head
--- are kept in 16 files, `refs/NN.json` (`{ "<id>": ref }`, NN the first
--- byte of the id's SHA-256 divided by 16), each read when one of its
--- components is first needed (few files: a command reading every ref opens
--- them all, one that reads a few decodes a sixteenth), and
--- `refs/staged.json`, the ids that have staged versions: an export reads
--- the refs of what it sends, not of every component. All of them change
--- through `Workspace:commit_changes` (the journal). A workspace with the
--- earlier single `refs.json` is read from it, and moves to `refs/` at its
--- next update.
local errors = require("bbit.errors")
local fs = require("bbit.fs")
local hash = require("bbit.hash")
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

-- ---------------------------------------------------------------- refs

local SHARDS = 16
local shard_names = {} -- id -> "NN" (hashing each id once per process)
local function shard_of(id)
  local name = shard_names[id]
  if not name then
    name = ("%02d"):format(tonumber(hash.sha256(id):sub(1, 2), 16) // 16)
    shard_names[id] = name
  end
  return name
end

local function has_staged(ref)
  for _, v in pairs(ref and ref.versions or {}) do
    if not v.exported then
      return true
    end
  end
  return false
end

-- The loaded state of the refs: `loaded[NN]` the shard tables read (or
-- made), `text[NN]` what each was read from (nil: not on disk as it is, to
-- be written), `touched[NN]` the shards whose refs were handed out through
-- `refs()` (only those can have changed: `component` is for reading),
-- `staged` the set of refs/staged.json (nil until read).
local function refs_state(scope)
  local st = scope._refs_state
  if st then
    return st
  end
  st = { dir = scope.dir .. "/refs", loaded = {}, text = {}, touched = {} }
  scope._refs_state = st
  local legacy_file = scope.dir .. "/refs.json"
  local sharded = fs.is_dir(st.dir)
  if sharded and fs.exists(legacy_file) then
    if #fs.glob("*.migrate", { cwd = scope.dir .. "/journal" }) > 0 then
      sharded = false -- refs/ is being filled from refs.json by another bbit: still the truth
    else
      errors.fail(("%s and %s both hold the component refs"):format(legacy_file, st.dir),
        "an earlier bbit wrote refs.json after this workspace moved to refs/: remove refs/ to keep the "
          .. "refs.json (it moves to refs/ again at the next update), or remove refs.json")
    end
  end
  if not sharded then
    -- format 1, one refs.json: read whole, every shard written at the next update
    local legacy = json.read_if_exists(legacy_file)
    for i = 0, SHARDS - 1 do -- nothing is read from refs/ (another bbit may be filling it)
      local name = ("%02d"):format(i)
      st.loaded[name], st.text[name] = {}, ""
    end
    for id, ref in pairs(legacy and legacy.components or {}) do
      local name = shard_of(id)
      st.loaded[name][id] = ref
      st.text[name] = nil -- written at the next update
    end
    st.migrating = legacy ~= nil
  end
  return st
end

local function shard(scope, name)
  local st = refs_state(scope)
  local t = st.loaded[name]
  if not t then
    local file = st.dir .. "/" .. name .. ".json"
    local text = fs.try_read(file)
    t = text and json.decode(text, { name = file }) or {}
    local bad = type(t) ~= "table" or (not json.is_object(t) and next(t) ~= nil)
    for _, ref in pairs(type(t) == "table" and t or {}) do
      bad = bad or type(ref) ~= "table"
    end
    if bad then
      errors.fail(("%s: expected a JSON object of component refs"):format(file),
        "restore it from a backup (it holds the local history of some components)")
    end
    st.loaded[name], st.text[name] = t, text or ""
  end
  return t
end

-- Every shard, and `all`: id -> ref over all of them (kept up to date by
-- the components proxy), so a command looking at every component indexes
-- one table.
local function all_shards(scope)
  local st = refs_state(scope)
  if not st.all then
    local all = {}
    for i = 0, SHARDS - 1 do
      for id, ref in pairs(shard(scope, ("%02d"):format(i))) do
        all[id] = ref
      end
    end
    st.all = all
  end
  return st.loaded, st.all
end

--- The refs, to read and change: `{ components = <id -> ref> }`.
--- `components` reads the shard of an id when it is first indexed; `pairs`
--- over it reads them all (use `pairs`, not `next`, `#` or `json.encode`: it
--- is a proxy). Assign `components[id] = ref` (or nil) for a new or removed
--- component; change a ref's fields in place. `Workspace:commit_changes`
--- writes what changed among the refs handed out here (`component` is for
--- reading: a ref changed through it is not written).
---@return table
function Scope:refs()
  if not self._refs then
    local scope = self
    local components = setmetatable({}, {
      __index = function(_, id)
        if type(id) ~= "string" then
          return nil
        end
        local st = refs_state(scope)
        st.touched[shard_of(id)] = true
        return scope:component(id)
      end,
      __newindex = function(_, id, ref)
        local st = refs_state(scope)
        local name = shard_of(id)
        st.touched[name] = true
        shard(scope, name)[id] = ref
        if st.all then
          st.all[id] = ref
        end
      end,
      __pairs = function()
        local loaded, all = all_shards(scope)
        for name in pairs(loaded) do
          refs_state(scope).touched[name] = true
        end
        local copy = {} -- assigning while iterating stays allowed
        for id, ref in pairs(all) do
          copy[id] = ref
        end
        return next, copy, nil
      end,
    })
    self._refs = { components = components }
  end
  return self._refs
end

--- The ref of component `id`, or nil, to read (see `refs` to change it).
---@param id string
---@return table|nil
function Scope:component(id)
  local st = refs_state(self)
  if st.all then
    return st.all[id]
  end
  return type(id) == "string" and shard(self, shard_of(id))[id] or nil
end

--- Reads every component's ref now (for a command that looks at all of
--- them: one pass over the files, then plain lookups).
function Scope:read_all_refs()
  all_shards(self)
end

--- The ids of the components with staged versions, sorted (refs/staged.json;
--- worked out from every ref when that file is missing or damaged).
---@return string[]
function Scope:staged_ids()
  local st = refs_state(self)
  if not st.staged then
    local text = not st.migrating and fs.try_read(st.dir .. "/staged.json")
    local ok, set = pcall(function()
      return text and json.decode(text)
    end)
    if ok and json.is_object(set) then
      st.staged, st.staged_text = set, text
    else
      st.staged = {}
      local _, all = all_shards(self)
      for id, ref in pairs(all) do
        st.staged[id] = has_staged(ref) or nil
      end
    end
  end
  local ids = {}
  for id in pairs(st.staged) do
    if has_staged(self:component(id)) then -- the refs are the truth
      ids[#ids + 1] = id
    end
  end
  table.sort(ids)
  return ids
end

--- What an update writes: the refs files that changed since they were read,
--- as `{ {file = "NN.json" | "staged.json", text = ...} }` (for
--- Workspace:commit_changes), and whether this update moves an earlier
--- `refs.json` to `refs/` (then it writes every component's shard).
---@return table[] changes
---@return boolean migrating
function Scope:refs_changes()
  local st = refs_state(self)
  local changes, staged_dirty = {}, false
  if not st.staged then
    self:staged_ids()
  end
  local names = {}
  for name in pairs(st.loaded) do
    if st.touched[name] or st.text[name] == nil then -- only these can differ from their file
      names[#names + 1] = name
    end
  end
  table.sort(names)
  for _, name in ipairs(names) do
    local t = st.loaded[name]
    local text = json.encode(json.object(t), { pretty = true })
    if text ~= st.text[name] and not (st.text[name] == "" and next(t) == nil) then -- "": no file
      changes[#changes + 1] = { file = name .. ".json", text = text }
      for id in pairs(st.staged) do -- this shard's part of the staged set, again
        if shard_of(id) == name then
          st.staged[id] = nil
        end
      end
      for id, ref in pairs(t) do
        st.staged[id] = has_staged(ref) or nil
      end
      staged_dirty = true
    end
  end
  if staged_dirty then
    local text = json.encode(json.object(st.staged), { pretty = true })
    if text ~= st.staged_text then
      changes[#changes + 1] = { file = "staged.json", text = text }
    end
  end
  return changes, st.migrating == true
end

--- Forgets the refs read (after an update, or to read them again).
function Scope:refs_reload()
  self._refs, self._refs_state = nil, nil
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

local INDEX_FORMAT = 6

--- The stat cache (see Workspace:scan): `{ components }`, a `bbit.shards`
--- map in `index/` (16 files, so a command that changes a few components
--- rewrites a few small files, not the whole cache): id -> { sig, main, dir,
--- tree, issues, deps, unknown, deps_for, deps_key } (`dir`: the rootDir the
--- entry is for; `deps`/`unknown`: the dependencies found in that tree,
--- `deps_for` the entry's config and `deps_key` the workspace layout they
--- were found with). `index.json` holds the format. The file lists are in
--- `index-files/` (see `index_files`), read only when a list is needed.
---@return table
function Scope:index()
  if not self._index then
    local ok, head = pcall(json.read_if_exists, self.dir .. "/index.json")
    local components = require("bbit.shards").open(self.dir .. "/index", { count = 16 })
    -- A damaged or older stat cache is only a cache: start over.
    if not ok or type(head) ~= "table" or head.format ~= INDEX_FORMAT then
      components:clear()
      self._index_head_dirty = true
      -- the one-file caches of format 3 (now index-files/ and cache/tasks/)
      fs.try_remove(self.dir .. "/index-files.json")
      fs.try_remove(self.dir .. "/cache/tasks.json")
    end
    self._index = { components = components }
  end
  return self._index
end

--- The cached file lists of the stat cache (see `index`): `:get(id)`, `:set(id, packed)`.
---@return table
function Scope:index_files()
  self._index_files = self._index_files or require("bbit.shards").open(self.dir .. "/index-files")
  return self._index_files
end

--- Writes what changed in the stat cache (no fsync: losing it only costs
--- re-hashing).
function Scope:save_index()
  if self._index_files then
    self._index_files:save()
  end
  if self._index then
    self._index.components:save()
    if self._index_head_dirty then
      fs.write(self.dir .. "/index.json", json.encode({ format = INDEX_FORMAT }), { fsync = false })
      self._index_head_dirty = false
    end
  end
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
