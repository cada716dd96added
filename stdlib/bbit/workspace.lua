--- The workspace: the folder holding `workspace.jsonc` (found by walking up),
--- its `.bitmap`, its local scope, and the state of each tracked component.
local core_fs = require("bbit.core.fs")
local bitmap = require("bbit.bitmap")
local errors = require("bbit.errors")
local fault = require("bbit.fault")
local fs = require("bbit.fs")
local hash = require("bbit.hash")
local json = require("bbit.json")
local localscope = require("bbit.localscope")
local path = require("bbit.path")

local M = {}

M.CONFIG_FILE = "workspace.jsonc"
M.WORKSPACE_ASPECT = "teambit.workspace/workspace"
M.VARIANTS_ASPECT = "teambit.workspace/variants"

--- Folders never part of a component (besides the `bbit.ignore` config list).
M.DEFAULT_IGNORE = { ".git", "node_modules", ".bit", ".bbit", ".DS_Store" }

--- The workspace root containing `dir` (default: the current directory), or nil.
---@param dir? string
---@return string|nil
function M.find_root(dir)
  dir = dir or fs.cwd()
  while true do
    if fs.is_file(dir .. "/" .. M.CONFIG_FILE) then
      return dir
    end
    local parent = path.dirname(dir)
    if parent == dir then
      return nil
    end
    dir = parent
  end
end

--- Is `id` a valid component id (`name` or `namespace/name`)?
---@param id string
---@return boolean
function M.valid_id(id)
  if type(id) ~= "string" or id == "" or #id > 200 then
    return false
  end
  for segment in (id .. "/"):gmatch("(.-)/") do
    if not segment:match("^[a-z0-9][a-z0-9_.%-]*$") or segment:match("%.%.") then
      return false
    end
  end
  return true
end

--- Is `scope` a valid scope name (`owner.scope`, or a bare name)?
---@param scope string
---@return boolean
function M.valid_scope(scope)
  return type(scope) == "string" and scope:match("^[a-z0-9][a-z0-9_%-]*%.?[a-z0-9_%-]*$") ~= nil and #scope <= 100
end

local Workspace = {}
Workspace.__index = Workspace

--- Opens the workspace at `root` (default: found from the current directory).
--- With `opts.lock`, takes the workspace lock first ("fail": a second bbit
--- fails with "locked by pid N"; "wait": waits up to 30 s) and rolls forward
--- an update that an interrupted command left in the journal. Then reads
--- workspace.jsonc and .bitmap (errors name file:line:column).
---@param root? string
---@param opts? {lock?: "fail"|"wait"}
---@return table workspace
function M.open(root, opts)
  opts = opts or {}
  root = root or M.find_root()
  if not root then
    errors.fail(("not in a bbit workspace (no %s in %s or any parent folder)"):format(M.CONFIG_FILE, fs.cwd()),
      "run `bbit init` to create one here")
  end
  local ws = setmetatable({ root = root, _prescanned = {} }, Workspace)
  ws.config_path = root .. "/" .. M.CONFIG_FILE
  ws.scope = localscope.open(root)
  if opts.lock then
    ws.lock = ws.scope:lock({ wait = opts.lock == "wait" })
    ws.scope:clean_temp()
    ws:recover()
  else
    ws:recover_if_free()
  end
  ws.config = json.read(ws.config_path)
  if type(ws.config) ~= "table" or json.is_array(ws.config) then
    errors.fail(ws.config_path .. ": expected a JSON object")
  end
  ws.bitmap = bitmap.read(root .. "/.bitmap")
  return ws
end

--- Releases the workspace lock (also released when the process exits).
function Workspace:close()
  if self._prescan then
    self._prescan:close()
    self._prescan = nil
  end
  if self.lock then
    self.lock:release()
    self.lock = nil
  end
end

-- A change of the refs and .bitmap together goes through the journal: the
-- new refs files (NAME.refs-NN.json, NAME.refs-staged.json) are first
-- written complete into .bit/journal/ and made durable, then NAME.bitmap
-- (durable too); then the refs files are renamed into refs/ and NAME.bitmap
-- over .bitmap, in that order, each step durable before the next. So
-- NAME.bitmap present means the update was decided: the next command
-- finishes it (roll forward); refs files alone mean it was interrupted
-- before, and nothing had changed. An update that leaves .bitmap as it is
-- (an export of components already in it with their scope and version)
-- marks its decision with an empty NAME.keep instead of a NAME.bitmap:
-- .bitmap is neither re-encoded nor rewritten. (NAME.refs.json is the refs.json of an
-- update journaled by an earlier bbit: finished the same way. NAME.migrate
-- marks the update that moves an earlier refs.json to refs/: refs.json goes
-- before NAME.bitmap does.)
local function journal_paths(ws, name)
  local dir = ws.scope.dir .. "/journal/" .. name
  return dir .. ".refs.json", dir .. ".bitmap", dir .. ".keep"
end

-- The refs files of journal `name`, as {journal file, file in refs/}.
local function journal_refs(ws, name, listing)
  local dir, prefix, out = ws.scope.dir .. "/journal/", name .. ".refs-", {}
  for _, f in ipairs(listing) do
    if f:sub(1, #prefix) == prefix then
      out[#out + 1] = { dir .. f, ws.scope.dir .. "/refs/" .. f:sub(#prefix + 1) }
    end
  end
  return out
end

local function journal_listing(ws)
  return fs.glob("*", { cwd = ws.scope.dir .. "/journal" })
end

-- .bit/journal and the workspace root can be on different filesystems (a
-- mounted .git): then the new .bitmap is copied (atomically, synced) instead
local function move(from, to)
  local ok, err, code = core_fs.rename(from, to)
  if not ok then
    if code ~= core_fs.errno.EXDEV then
      errors.fail(err)
    end
    fs.write(to, fs.read(from), { mode = fs.stat(from).mode })
    fs.remove(from)
  end
end

-- `files`: the journal's refs files still to rename, {journal file, file in refs/}.
local function apply_journal(ws, name, files)
  local refs_new, bitmap_new, keep = journal_paths(ws, name)
  if #files > 0 then -- else renamed before an interruption
    local refs_dir = ws.scope.dir .. "/refs"
    if not fs.is_dir(refs_dir) then
      fs.mkdir(refs_dir)
      fs.sync(ws.scope.dir)
    end
    for i, f in ipairs(files) do
      fs.rename(f[1], f[2])
      if i == 1 and #files > 1 then
        fault.point(name .. ":among-refs")
      end
    end
    fs.sync(refs_dir) -- durable before NAME.bitmap, the mark of the update, goes
  end
  if fs.exists(refs_new) then -- an earlier bbit's journal
    fs.rename(refs_new, ws.scope.dir .. "/refs.json")
    fs.sync(ws.scope.dir)
  end
  local marker = ws.scope.dir .. "/journal/" .. name .. ".migrate"
  if fs.exists(marker) then -- refs/ now holds what refs.json did
    fs.try_remove(ws.scope.dir .. "/refs.json")
    fs.sync(ws.scope.dir)
    fs.remove(marker)
  end
  fault.point(name .. ":after-refs")
  if fs.exists(keep) then
    fs.remove(keep)
  else
    move(bitmap_new, ws.root .. "/.bitmap")
    fs.sync(ws.root)
  end
  ws.scope:refs_reload()
end

--- Finishes an update an interrupted command left in the journal.
function Workspace:recover()
  local listing = journal_listing(self)
  if #listing == 0 then
    return
  end
  local present = {}
  for _, f in ipairs(listing) do
    present[f] = true
  end
  for _, name in ipairs({ "tag", "reset", "export-local", "import" }) do
    local refs_new = journal_paths(self, name)
    local decided = present[name .. ".bitmap"] or present[name .. ".keep"]
    local old = present[name .. ".json"] and self.scope:journal_read(name) -- the one-file journal of earlier versions
    if decided or old then
      require("bbit.log").warn("finishing an interrupted `bbit %s` (from %s)", name, self.scope.dir .. "/journal")
    end
    if decided then
      apply_journal(self, name, journal_refs(self, name, listing))
      listing = journal_listing(self)
    elseif old then
      fs.write(self.scope.dir .. "/refs.json", old.refs)
      fs.write(self.root .. "/.bitmap", old.bitmap)
      self.scope:journal_clear(name)
      self.scope:refs_reload()
    else
      for _, f in ipairs(journal_refs(self, name, listing)) do
        fs.remove(f[1])
      end
      if present[name .. ".refs.json"] then
        fs.remove(refs_new)
      end
      if present[name .. ".migrate"] then
        fs.remove(self.scope.dir .. "/journal/" .. name .. ".migrate")
      end
    end
  end
end

--- For a command that reads without the lock: finishes an interrupted
--- update first when no other bbit holds the lock (else it reads as is).
function Workspace:recover_if_free()
  if #journal_listing(self) == 0 then
    return
  end
  local lock = fs.try_lock(self.scope.dir .. "/lock")
  if lock then
    local ok, err = pcall(self.recover, self)
    lock:release()
    if not ok then
      require("bbit.log").warn("cannot finish the interrupted update in %s: %s", self.scope.dir .. "/journal",
        errors.message(err))
    end
  end
end

--- Writes the changed refs and .bitmap together, through the journal `name`.
--- `opts.bitmap = false`: the caller knows .bitmap did not change (it is
--- left alone).
---@param name string the command, e.g. "tag"
---@param opts? {bitmap?: boolean}
function Workspace:commit_changes(name, opts)
  local _, bitmap_new, keep = journal_paths(self, name)
  local journal = self.scope.dir .. "/journal"
  fs.mkdir(journal)
  for _, f in ipairs(journal_refs(self, name, journal_listing(self))) do
    fs.remove(f[1]) -- left by an attempt that failed in this process
  end
  -- the refs files, each flushed, then their folder: all durable before NAME.bitmap
  local changes, migrating = self.scope:refs_changes()
  if migrating then
    fs.write(journal .. "/" .. name .. ".migrate", "", { fsync = false })
  end
  local files = {}
  for _, c in ipairs(changes) do
    local path = ("%s/%s.refs-%s"):format(journal, name, c.file)
    fs.write(path, c.text, { fsync = false })
    fs.sync(path)
    files[#files + 1] = { path, self.scope.dir .. "/refs/" .. c.file }
  end
  if #changes > 0 or migrating then
    fs.sync(journal)
  end
  if opts and opts.bitmap == false then
    fs.write(keep, "") -- decided
  else
    local st = fs.stat(self.root .. "/.bitmap") -- the new file keeps the old one's permissions
    fs.write(bitmap_new, self.bitmap:encode(), { mode = st and st.mode & 511 or nil }) -- decided
  end
  fault.point(name .. ":after-journal")
  apply_journal(self, name, files)
end

--- The workspace aspect config (`teambit.workspace/workspace`).
---@return table
function Workspace:workspace_config()
  local c = self.config[M.WORKSPACE_ASPECT]
  return type(c) == "table" and c or {}
end

--- The `bbit` section of workspace.jsonc.
---@return table
function Workspace:bbit_config()
  local c = self.config.bbit
  return type(c) == "table" and c or {}
end

--- An absolute path for a workspace-relative one.
---@param rel string
---@return string
function Workspace:abs(rel)
  if rel == "" or rel == "." then
    return self.root
  end
  return self.root .. "/" .. rel
end

--- The workspace-relative form of an absolute path, or nil when outside.
---@param abs string
---@return string|nil
function Workspace:rel(abs)
  abs = path.normalize(abs)
  if abs == self.root then
    return "."
  end
  if abs:sub(1, #self.root + 1) == self.root .. "/" then
    return abs:sub(#self.root + 2)
  end
  return nil
end

-- How specific a variants pattern is: literal segments count most, then
-- literal characters; `*`/`**` count less.
local function specificity(pattern)
  local score = 0
  for segment in pattern:gmatch("[^/]+") do
    if segment == "**" then
      score = score + 1
    elseif segment:find("[*?]") then
      score = score + 100 + #segment:gsub("[*?]", "")
    else
      score = score + 1000 + #segment
    end
  end
  return score
end

local function variant_matches(pattern, root_dir)
  pattern = pattern:gsub("^%./", ""):gsub("/+$", "")
  if pattern == "" or pattern == "*" or pattern == "**" then
    return true
  end
  if root_dir == pattern or root_dir:sub(1, #pattern + 1) == pattern .. "/" then
    return true
  end
  if pattern:find("[*?%[]") then
    -- the pattern names a folder: it matches the rootDir or any folder above it
    local prefix = root_dir
    while prefix and prefix ~= "" do
      if fs.match(pattern, prefix) then
        return true
      end
      prefix = prefix:match("^(.*)/[^/]*$")
    end
  end
  return false
end

--- The variants entries matching `root_dir`, most specific first, as
--- `{pattern=, config=}` (SPEC §2.1: the most specific matching pattern wins).
---@param root_dir string
---@return table[]
function Workspace:matching_variants(root_dir)
  local variants = self.config[M.VARIANTS_ASPECT]
  local out = {}
  if type(variants) ~= "table" then
    return out
  end
  for pattern, config in pairs(variants) do
    if type(config) == "table" and variant_matches(pattern, root_dir) then
      out[#out + 1] = { pattern = pattern, config = config, score = specificity(pattern) }
    end
  end
  table.sort(out, function(a, b)
    if a.score ~= b.score then
      return a.score > b.score
    end
    return a.pattern < b.pattern
  end)
  return out
end

--- The value of `key` from the most specific variant of `root_dir` that sets it.
---@param root_dir string
---@param key string
---@return any value
---@return string|nil pattern the variant it came from
function Workspace:variant_value(root_dir, key)
  for _, v in ipairs(self:matching_variants(root_dir)) do
    if v.config[key] ~= nil then
      return v.config[key], v.pattern
    end
  end
  return nil
end

--- The workspace's ignore patterns for component files.
---@return string[]
function Workspace:ignore_patterns()
  if self._ignore then
    return self._ignore
  end
  local list = {}
  for _, p in ipairs(M.DEFAULT_IGNORE) do
    list[#list + 1] = p
  end
  local extra = self:bbit_config().ignore
  if type(extra) == "table" then
    for _, p in ipairs(extra) do
      list[#list + 1] = p
    end
  end
  self._ignore = list
  return list
end

--- The target scope of component `id` (SPEC §4 "Scope routing"): its
--- `.bitmap` scope once exported, an explicit `--scope` given at add, then the
--- routing script `route` (overridable). Returns nil when no rule gives one.
---@param id string
---@return string|nil scope
---@return string how "exported", "--scope", or what the route script says
function Workspace:target_scope(id)
  local entry = self.bitmap:get(id)
  if entry.scope and entry.scope ~= "" then
    return entry.scope, "exported"
  end
  local cfg = type(entry.config) == "table" and type(entry.config.bbit) == "table" and entry.config.bbit or {}
  if type(cfg.scope) == "string" and cfg.scope ~= "" then
    return cfg.scope, "--scope"
  end
  local route = self:script("route")
  local scope, why = route.route({ id = id, name = id, root_dir = entry.rootDir, entry = entry }, self)
  return scope, why or "route"
end

--- The error for a component with no scope: says how to set one.
---@param id string
function Workspace:no_scope_error(id)
  errors.fail(("component '%s' has no target scope"):format(id),
    "set \"defaultScope\" under \"teambit.workspace/workspace\" in workspace.jsonc, "
      .. "add a \"teambit.workspace/variants\" entry with a \"defaultScope\" for its folder, "
      .. "or run `bbit add " .. self.bitmap:get(id).rootDir .. " --scope OWNER.SCOPE`")
end

--- Loads a workflow script by name through the lookup order of SPEC §4
--- (cached per workspace).
---@param name string
---@return any
function Workspace:script(name)
  self._scripts = self._scripts or {}
  if self._scripts[name] == nil then
    local module = require("bbit.scripts").load(name, self.root)
    self._scripts[name] = module
  end
  return self._scripts[name]
end

-- Mtimes from this instant on count as racy: such stat-cache entries are
-- re-hashed next time, since a file changed twice within the filesystem's
-- timestamp granularity would otherwise look unchanged (git's "racy"
-- problem). The window depends on the filesystem (0.1 s on ext4 and the
-- like, 2 s elsewhere): see core.fs.racy_since.
local function racy_ns(ws)
  return core_fs.racy_since(ws.root)
end

local function file_mode(st)
  return (st.mode & 73) ~= 0 and "755" or "644" -- 73 = 0111, any exec bit
end

-- The stat cache keeps, per component, a signature of its folder (every
-- entry's path, type, size, mtime, inode, mode), the file list it produced
-- (packed in one string) and its tree hash. An unchanged signature means an
-- unchanged component: nothing is read or hashed, and the file list is only
-- unpacked when someone asks for it. A changed one re-hashes that component.

local function pack_files(files)
  local out = {}
  for i, f in ipairs(files) do
    out[i] = f.path .. "\t" .. f.mode .. "\t" .. f.size .. "\t" .. f.blob
  end
  return table.concat(out, "\n")
end

local function unpack_files(packed, abs_root)
  local files = {}
  for p, mode, size, blob in packed:gmatch("([^\t\n]+)\t(%d+)\t(%d+)\t(%x+)") do
    files[#files + 1] = { path = p, mode = mode, size = math.tointeger(tonumber(size)), blob = blob,
      abs = abs_root .. "/" .. p }
  end
  return files
end

-- Reads a component's files (hashing each) and adds its issues: symlinks
-- out of the component, vanished files, no files, a missing main file.
local function read_files(ws, comp, abs_root)
  local root_dir, files = comp.root_dir, {}
  for _, e in ipairs(fs.walk(abs_root, { stat = true, ignore = ws:ignore_patterns() })) do
    local abs = abs_root .. "/" .. e.path
    local info = e
    if e.type == "link" then
      local real = fs.try_realpath(abs)
      if not real or not path.is_within(abs_root, real) then
        comp.issues[#comp.issues + 1] = ("%s/%s is a symlink pointing outside the component"):format(root_dir, e.path)
        info = nil
      else
        info = fs.stat(real)
      end
    end
    if info and info.type == "file" then
      -- a command about to store the files (tag) hashes them by storing them:
      -- one read per file instead of two
      local digest
      if ws.store_while_scanning then
        digest = ws.scope.store:try_put_file(abs)
      else
        digest = hash.try_sha256_file(abs)
      end
      if not digest then
        comp.issues[#comp.issues + 1] = ("missing files: %s/%s vanished while reading"):format(root_dir, e.path)
      else
        files[#files + 1] = { path = e.path, mode = file_mode(info), size = info.size, blob = digest, abs = abs }
      end
    end
  end
  if #files == 0 and #comp.issues == 0 then
    comp.issues[#comp.issues + 1] = ("missing files: %s has no files"):format(root_dir)
  end
  local main = comp.entry.mainFile
  if #files > 0 then
    local has_main = false
    for _, f in ipairs(files) do
      if f.path == main then
        has_main = true
      end
    end
    if not has_main then
      comp.issues[#comp.issues + 1] = ("missing main file: %s/%s"):format(root_dir, tostring(main))
    end
  end
  return files
end

-- A component whose `files` are unpacked from the cache on first use (read
-- again from the folder if the cached list is gone).
local lazy_files = {
  __index = function(comp, key)
    if key == "files" then
      local packed = comp._ws.scope:index_files():get(comp.id)
      local files = packed and unpack_files(packed, comp._abs_root) or read_files(comp._ws, comp, comp._abs_root)
      rawset(comp, "files", files)
      return files
    end
  end,
}

-- The rest of `scan`, once the folder's stat digest `sig` is known: the
-- cached result when the digest matches, else the folder is read again.
local function scan_with_digest(self, comp, abs_root, sig, unstable)
  local id, entry = comp.id, comp.entry
  local cache = self.scope:index().components
  local cached = cache:get(id)
  if cached and cached.sig and cached.sig == sig and cached.main == entry.mainFile and cached.dir == comp.root_dir then
    comp.tree = cached.tree
    for _, issue in ipairs(cached.issues or {}) do
      comp.issues[#comp.issues + 1] = issue
    end
    comp._ws, comp._abs_root = self, abs_root
    return setmetatable(comp, lazy_files)
  end
  comp.files = read_files(self, comp, abs_root)
  comp.tree = M.tree_hash(comp.files)
  -- the dependencies found in the same tree stay (components.lua)
  local kept = cached and cached.tree == comp.tree and cached or {}
  -- a racy or symlinked folder is re-read next time: no sig
  cache:set(id, { sig = not unstable and sig or nil, main = entry.mainFile, dir = comp.root_dir,
    tree = comp.tree, issues = #comp.issues > 0 and comp.issues or nil,
    deps = kept.deps, unknown = kept.unknown, deps_for = kept.deps_for, deps_key = kept.deps_key })
  if not unstable then
    self.scope:index_files():set(id, pack_files(comp.files))
  end
  self._index_dirty = true
  return comp
end

--- Scans component `id`'s files: `{id, root_dir, files = {{path, mode, size, blob, abs}},
--- tree, issues = {...}}`. Uses the stat cache: an unchanged folder is not re-read.
---@param id string
---@return table
function Workspace:scan(id)
  local entry = self.bitmap:get(id)
  local root_dir = entry.rootDir
  local comp = { id = id, root_dir = root_dir, entry = entry, issues = {} }
  local abs_root = self:abs(root_dir)
  local i = self._prescanned[id]
  if i then
    self._prescanned[id] = nil
    local sig, unstable = self._prescan:get(i)
    if sig then -- a plain folder
      return scan_with_digest(self, comp, abs_root, sig, unstable)
    end
  end
  local st = fs.lstat(abs_root)
  if not st then
    comp.files = {}
    comp.issues[1] = ("missing files: folder %s does not exist"):format(root_dir)
    return comp
  end
  if st.type == "link" then
    local real = fs.try_realpath(abs_root)
    if not real or not path.is_within(self.root, real) then
      comp.files = {}
      comp.issues[1] = ("%s is a symlink to a folder outside the workspace"):format(root_dir)
      return comp
    end
    abs_root = real
  elseif st.type ~= "dir" then
    comp.files = {}
    comp.issues[1] = ("%s is not a folder"):format(root_dir)
    return comp
  end
  local digest, _, racy = fs.walk_digest(abs_root, { ignore = self:ignore_patterns() }, racy_ns(self))
  return scan_with_digest(self, comp, abs_root, digest, racy)
end

--- Starts computing the stat digests of the folders of components `ids` on
--- worker threads, in that order, and returns at once; the next `scan` of
--- each uses its digest (waiting for it if needed) instead of walking the
--- folder itself. For commands that scan every component: the folders are
--- read while the caches are decoded and the first components looked at.
---@param ids string[]
function Workspace:prescan(ids)
  local roots = {}
  self._prescanned = {}
  for i, id in ipairs(ids) do
    roots[i] = self:abs(self.bitmap:get(id).rootDir)
    self._prescanned[id] = i
  end
  if self._prescan then
    self._prescan:close()
  end
  -- folder listings are cached (cache/dirs): an unchanged folder is not read again
  self._prescan = fs.walk_digests(roots, { ignore = self:ignore_patterns(), dircache = self.scope.dir .. "/cache/dirs" },
    racy_ns(self))
end

--- The hash of a file list (path, mode, blob), as stored in version objects.
---@param files table[]
---@return string
function M.tree_hash(files)
  local list = {}
  for _, f in ipairs(files) do
    list[#list + 1] = { f.path, f.mode, f.blob }
  end
  table.sort(list, function(a, b)
    return a[1] < b[1]
  end)
  return hash.sha256(json.encode(list))
end

--- When true, `scan` stores the files it reads into the local scope (their
--- ids are their hashes): for commands that store them anyway (tag).
Workspace.store_while_scanning = false

--- Saves the stat cache if scanning changed it.
function Workspace:save_index()
  if self._index_dirty then
    self.scope:save_index()
    self._index_dirty = false
  end
end

return M
