--- The state of every tracked component: files, issues, target scope,
--- dependencies, and where it stands (new, modified, staged, pending
--- auto-tag). Shared by status, build, tag and export.
local hash = require("bbit.hash")
local json = require("bbit.json")
local localscope = require("bbit.localscope")

local M = {}

-- Dependencies are cached in the component's stat cache entry with the tree
-- they were found in, so an unchanged component's sources are not re-read.
-- The result depends on the files, the entry (declared dependencies), the
-- other components' folders and the deps script itself: the last two are
-- the same for every component (`deps_key`, a hash of them), so an entry's
-- dependencies hold while its `tree`, its config (`deps_for`) and the
-- `deps_key` it records are the current ones. Each entry checks itself: the
-- cache's files can come from two commands that ran at once.
local function dependencies(ws, comp, entries, deps_key)
  local cache = ws.scope:index().components
  local cached = cache:get(comp.id)
  local config = comp.entry.config ~= nil and json.encode(comp.entry.config) or nil
  if cached and cached.deps and cached.tree == comp.tree and cached.deps_for == config
    and cached.deps_key == deps_key then
    return cached.deps, cached.unknown
  end
  local deps, unknown = ws:script("deps").dependencies(comp, ws, entries)
  if not cached or cached.tree ~= comp.tree then -- a folder not cached (racy): the dependencies alone
    cached = { tree = comp.tree }
  end
  cached.deps, cached.unknown, cached.deps_for, cached.deps_key = deps, unknown, config, deps_key
  cache:set(comp.id, cached)
  ws._index_dirty = true
  return deps, unknown
end

--- Analyses the workspace. Returns `{ list = {...}, by_id = {...} }`; each
--- component: `id, root_dir, entry, files, tree, issues, scope, scope_reason,
--- ref, versions, staged, head, exported_head, status ("new" | "modified" |
--- "unchanged"), deps, dependents, unknown_deps, pending_auto_tag`.
---@param ws table an open workspace
---@return table
function M.analyze(ws)
  local entries = ws.bitmap.entries
  local ids = ws.bitmap:ids()
  ws:prescan(ids) -- the folders are read on other threads meanwhile
  local found = require("bbit.scripts").find("deps", ws.root)
  local layout = { found and (found.origin .. ":" .. found.source) or "none" }
  for i, id in ipairs(ids) do -- sorted: the same layout gives the same key
    layout[i + 1] = id .. "\0" .. entries[id].rootDir
  end
  local deps_key = hash.sha256(table.concat(layout, "\n")):sub(1, 16) -- in every entry: short
  ws.scope:read_all_refs() -- every component's is looked at below
  ws.scope:index().components:load_all() -- and every stat cache entry
  local result = { list = {}, by_id = {} }
  for _, id in ipairs(ids) do
    local comp = ws:scan(id)
    local routed, scope, reason = pcall(ws.target_scope, ws, id)
    if routed then
      comp.scope, comp.scope_reason = scope, reason
    else
      comp.issues[#comp.issues + 1] = "routing: " .. require("bbit.errors").message(scope)
    end
    local ref = ws.scope:component(id)
    comp.ref = ref
    if ref then
      comp.versions, comp.staged, comp.exported_head = localscope.summary(ref)
      comp.head = ref.head
    else
      comp.versions, comp.staged = {}, {}
    end
    if not comp.head then
      comp.status = "new"
    elseif comp.tree and ref.versions[comp.head] and ref.versions[comp.head].tree ~= comp.tree then
      comp.status = "modified"
    else
      comp.status = "unchanged"
    end
    if comp.tree then
      comp.deps, comp.unknown_deps = dependencies(ws, comp, entries, deps_key)
    else
      comp.deps, comp.unknown_deps = {}, {}
    end
    for _, name in ipairs(comp.unknown_deps) do
      comp.issues[#comp.issues + 1] = ("unknown dependency: %s (not a component of this workspace)"):format(name)
    end
    comp.dependents = {}
    result.list[#result.list + 1] = comp
    result.by_id[id] = comp
  end
  for _, comp in ipairs(result.list) do
    for _, dep in ipairs(comp.deps) do
      local d = result.by_id[dep]
      if d then
        d.dependents[#d.dependents + 1] = comp.id
      end
    end
  end
  -- pending auto-tag: tagged components depending, directly or not, on a
  -- new or modified one (they get a patch bump when it is tagged)
  local function mark(comp, seen)
    for _, id in ipairs(comp.dependents) do
      local d = result.by_id[id]
      if not seen[id] then
        seen[id] = true
        if d.status == "unchanged" then
          d.pending_auto_tag = true
        end
        mark(d, seen)
      end
    end
  end
  for _, comp in ipairs(result.list) do
    if comp.status ~= "unchanged" then
      mark(comp, { [comp.id] = true })
    end
  end
  ws:save_index()
  return result
end

--- Does a command-line pattern select the component? A pattern is an id, a
--- rootDir, or a glob over either (`ui/*`, `components/**`).
---@param pattern string
---@param comp table
---@return boolean
function M.matches(pattern, comp)
  local fs = require("bbit.fs")
  pattern = pattern:gsub("/+$", "")
  return pattern == comp.id or pattern == comp.root_dir or fs.match(pattern, comp.id)
    or fs.match(pattern, comp.root_dir)
end

--- The components of `analysis` selected by `patterns` (all when empty);
--- a pattern that selects nothing is a failure.
---@param analysis table
---@param patterns string[]
---@return table[]
function M.select(analysis, patterns)
  if #patterns == 0 then
    return analysis.list
  end
  local out, seen = {}, {}
  for _, p in ipairs(patterns) do
    local hit = false
    for _, comp in ipairs(analysis.list) do
      if M.matches(p, comp) then
        hit = true
        if not seen[comp.id] then
          seen[comp.id] = true
          out[#out + 1] = comp
        end
      end
    end
    if not hit then
      require("bbit.errors").fail(("no component matches '%s'"):format(p), "see `bbit status` for the tracked components")
    end
  end
  return out
end

--- Orders `ids` so each comes after its dependencies among them (Kahn's
--- algorithm, ties by id); raises a failure naming a dependency cycle.
---@param ids string[]
---@param by_id table components from `analyze`
---@return string[]
function M.order(ids, by_id)
  local wanted, indegree, out = {}, {}, {}
  for _, id in ipairs(ids) do
    wanted[id] = true
  end
  for _, id in ipairs(ids) do
    indegree[id] = 0
    for _, dep in ipairs(by_id[id].deps) do
      if wanted[dep] then
        indegree[id] = indegree[id] + 1
      end
    end
  end
  -- Kahn's algorithm, the smallest ready id first (a binary heap: sorting the
  -- ready list at every step was quadratic at 10,000 components)
  local heap = {}
  local function push(id)
    local i = #heap + 1
    heap[i] = id
    while i > 1 and heap[i // 2] > id do
      heap[i], heap[i // 2] = heap[i // 2], id
      i = i // 2
    end
  end
  local function pop()
    local top, last = heap[1], heap[#heap]
    heap[#heap] = nil
    local n, i = #heap, 1
    if n > 0 then
      heap[1] = last
      while true do
        local l, r, m = 2 * i, 2 * i + 1, i
        if l <= n and heap[l] < heap[m] then
          m = l
        end
        if r <= n and heap[r] < heap[m] then
          m = r
        end
        if m == i then
          break
        end
        heap[i], heap[m] = heap[m], heap[i]
        i = m
      end
    end
    return top
  end
  for _, id in ipairs(ids) do
    if indegree[id] == 0 then
      push(id)
    end
  end
  while #heap > 0 do
    local id = pop()
    out[#out + 1] = id
    for _, dependent in ipairs(by_id[id].dependents) do
      if wanted[dependent] then
        indegree[dependent] = indegree[dependent] - 1
        if indegree[dependent] == 0 then
          push(dependent)
        end
      end
    end
  end
  if #out < #ids then
    local stuck = {}
    for _, id in ipairs(ids) do
      if indegree[id] > 0 then
        stuck[#stuck + 1] = id
      end
    end
    table.sort(stuck)
    require("bbit.errors").fail("dependency cycle between components: " .. table.concat(stuck, ", "),
      "remove one of the imports or declared dependencies that form the cycle")
  end
  return out
end

return M
