-- The export workflow (`bbit export`, SPEC §5): named steps a workspace can
-- wrap or hook into (see `bbit scripts show export`).
--
--   resume     finish an export an interruption left in the journal
--   collect    the staged versions to send (the patterns given, else all),
--              plus staged dependencies they need
--   group      by target scope
--   resolve    the server of each scope (bbit remote, bbit.remotes, hub)
--   negotiate  ask each scope which objects it lacks; an artifact with a
--              recipe whose blobs the server mostly has is left for the
--              server to rebuild (the incremental case: one changed file).
--              When every component sent to a scope was exported there
--              before, the scope has its last exported version's objects:
--              no request, what the new versions add is sent (a server
--              that lacks more says so at prepare: then it is asked)
--   upload     send only those, in parallel
--   prepare    one transaction per server (all its scopes): objects verified,
--              heads checked, components locked; nothing visible yet. With a
--              single server there is nothing to coordinate: it commits as
--              soon as it has prepared (one request), nothing is journaled
--              (interrupted, it is committed or absent: the next export ends
--              it), and commit has nothing to do
--   commit     the decision is journaled, then every server commits
--   update     refs and .bitmap (SPEC §2.2), through the journal
--   report     the summary and the git hint
--
-- ctx: workspace, opts, patterns, staged ({id, scope, versions = {{version, id}}}),
-- scopes (scope -> list), servers (url -> {scopes, client}), objects (scope ->
-- ids), missing (scope -> ids), recipes (artifact id -> recipe), rebuilt (how
-- many artifacts the servers rebuild), rebuild (scope -> set of those artifacts), inferred (scope -> true: missing was
-- worked out, not asked), txns (url -> txn id), uploaded (count, bytes).
local errors = require("bbit.errors")
local fault = require("bbit.fault")
local fs = require("bbit.fs")
local inspect = require("bbit.inspect")
local jobs = require("bbit.jobs")
local json = require("bbit.json")
local localscope = require("bbit.localscope")
local log = require("bbit.log")
local remote = require("bbit.remote")
local workflow = require("bbit.workflow")

local export = workflow.new("export")

local JOURNAL = "export"

-- Marks the exported versions in the refs and .bitmap (SPEC §2.2).
local function update_local(ws, components)
  local refs = ws.scope:refs()
  local bitmap_changed = false
  for _, c in ipairs(components) do
    local ref = refs.components[c.name]
    if ref then
      local head
      for _, v in ipairs(c.versions) do
        if ref.versions[v.version] and ref.versions[v.version].id == v.id then
          ref.versions[v.version].exported = true
          head = v.version
        end
      end
      if head then
        ref.remote = { scope = c.scope, head = head }
        local entry = ws.bitmap:get(c.name)
        if entry and (entry.scope ~= c.scope or entry.version ~= ref.head or entry.defaultScope ~= nil) then
          entry.scope = c.scope
          entry.version = ref.head
          entry.defaultScope = nil
          bitmap_changed = true
        end
      end
    end
  end
  -- a component exported before to the same scope: .bitmap stays as it is
  ws:commit_changes("export-local", { bitmap = bitmap_changed })
end

-- Finishes the journaled export `j`: commits everywhere when the decision
-- was made, else aborts what was prepared. Returns true when it committed.
local function finish_journal(ws, j, quiet)
  if j.state == "committing" then
    for _, s in ipairs(j.servers) do
      remote.client(s.url):commit(s.txn)
    end
    update_local(ws, j.components)
    ws.scope:journal_clear(JOURNAL)
    if not quiet then
      print(("finished the interrupted export %s (%d component(s))"):format(j.id, #j.components))
    end
    return true
  end
  for _, s in ipairs(j.servers) do
    if s.txn then
      pcall(function()
        remote.client(s.url):abort(s.txn)
      end)
    end
  end
  ws.scope:journal_clear(JOURNAL)
  return false
end

-- A one-phase prepare (one server) failed: its answer may have been lost
-- after the server committed. Asking to abort tells: "already committed"
-- means the export is done. Anything else leaves nothing behind on the
-- server (aborted, or never arrived and now refused), or it is unreachable:
-- then a later `bbit export` sends the same versions again, which the
-- server accepts as they are (or has already).
local function committed_anyway(url, txn)
  local ok, err = pcall(function()
    remote.client(url):abort(txn)
  end)
  return not ok and type(err) == "table" and err.code == "transaction_committed"
end

export:step("resume", function(ctx)
  local ws = ctx.workspace
  local j = ws.scope:journal_read(JOURNAL)
  if ctx.opts.resume and (not j or j.id ~= ctx.opts.resume) then
    errors.fail(("no interrupted export with id %s"):format(ctx.opts.resume),
      j and ("the pending one is " .. j.id) or "nothing is pending: run `bbit export`")
  end
  if j then
    log.info("resuming the interrupted export %s", j.id)
    ctx.resumed = finish_journal(ws, j)
    ws.bitmap = require("bbit.bitmap").read(ws.root .. "/.bitmap")
    if ctx.opts.resume then
      ctx.stop = true
    end
  end
end)

export:step("collect", function(ctx)
  local ws = ctx.workspace
  local refs = ws.scope:refs()
  local components = require("bbit.components")
  local wanted = {}
  local ids = ws.scope:staged_ids() -- only these refs are read
  local function staged(id)
    local ref = refs.components[id]
    return ref and localscope.staged_of(ref) or {}
  end
  for _, id in ipairs(ids) do
    local entry = ws.bitmap:get(id)
    local comp = { id = id, root_dir = entry and entry.rootDir or id }
    local selected = #ctx.patterns == 0
    for _, p in ipairs(ctx.patterns) do
      selected = selected or components.matches(p, comp)
    end
    if selected and #staged(id) > 0 then
      wanted[id] = true
    end
  end
  if #ctx.patterns > 0 and next(wanted) == nil then
    errors.fail("nothing staged matches " .. table.concat(ctx.patterns, " "), "see `bbit status`")
  end
  -- staged dependencies of what is exported go along (their versions are referenced)
  local queue = {}
  for id in pairs(wanted) do
    queue[#queue + 1] = id
  end
  while #queue > 0 do
    local id = table.remove(queue)
    local ref = refs.components[id]
    for _, v in ipairs(staged(id)) do
      local obj = ws.scope:read_version(ref.versions[v].id)
      for _, dep in ipairs(obj.dependencies or {}) do
        local dep_ref = refs.components[dep.id]
        if dep_ref and dep_ref.versions[dep.version] and not dep_ref.versions[dep.version].exported
            and not wanted[dep.id] then
          wanted[dep.id] = true
          queue[#queue + 1] = dep.id
          log.info("also exporting %s: %s@%s depends on its staged version %s", dep.id, id, v, dep.version)
        end
      end
    end
  end
  ctx.staged = {}
  local sorted = {} -- the staged ids and the staged dependencies added
  for id in pairs(wanted) do
    sorted[#sorted + 1] = id
  end
  table.sort(sorted)
  for _, id in ipairs(sorted) do
    local versions = {}
    for _, v in ipairs(staged(id)) do
      versions[#versions + 1] = { version = v, id = refs.components[id].versions[v].id }
    end
    ctx.staged[#ctx.staged + 1] = { id = id, versions = versions }
  end
  if #ctx.staged == 0 then
    if not ctx.resumed then
      print("nothing to export (no staged versions; `bbit tag` creates them)")
    end
    ctx.stop = true
  end
end)

export:step("group", function(ctx)
  local ws = ctx.workspace
  ctx.scopes = {}
  ctx.scope_names = {}
  for _, c in ipairs(ctx.staged) do
    if not ws.bitmap:get(c.id) then
      errors.fail(("%s has staged versions but is not in .bitmap"):format(c.id),
        "restore .bitmap from version control, or `bbit reset " .. c.id .. "`")
    end
    local scope = ws:target_scope(c.id)
    if not scope then
      ws:no_scope_error(c.id)
    end
    c.scope = scope
    if not ctx.scopes[scope] then
      ctx.scopes[scope] = {}
      ctx.scope_names[#ctx.scope_names + 1] = scope
    end
    table.insert(ctx.scopes[scope], c)
  end
  table.sort(ctx.scope_names)
end)

export:step("resolve", function(ctx)
  ctx.servers, ctx.server_urls = {}, {}
  for _, scope in ipairs(ctx.scope_names) do
    local url, how = remote.server_for(scope, ctx.workspace)
    if not url then
      remote.no_server_error(scope)
    end
    log.verbose("scope %s -> %s (%s)", scope, url, how)
    if not ctx.servers[url] then
      ctx.servers[url] = { url = url, scopes = {}, client = remote.client(url) }
      ctx.server_urls[#ctx.server_urls + 1] = url
    end
    table.insert(ctx.servers[url].scopes, scope)
  end
  table.sort(ctx.server_urls)
end)

-- "0.0.1, 0.0.2": the versions of a staged component.
local function versions_text(c)
  local vs = {}
  for _, v in ipairs(c.versions) do
    vs[#vs + 1] = v.version
  end
  return table.concat(vs, ", ")
end

-- Every object a version needs on the server: the version object, its files,
-- its artifacts and the blobs their recipes name (recipes[artifact id] = recipe).
local function objects_of(ws, versions, into, seen, recipes)
  local function add(id)
    if not seen[id] then
      seen[id] = true
      into[#into + 1] = id
    end
  end
  for _, v in ipairs(versions) do
    local obj = ws.scope:read_version(v.id)
    add(v.id)
    for _, f in ipairs(obj.files or {}) do
      add(f.blob)
    end
    for _, a in ipairs(obj.artifacts or {}) do
      add(a.blob)
      if type(a.recipe) == "table" and type(a.recipe.entries) == "table" then
        recipes[a.blob] = a.recipe
        for _, e in ipairs(a.recipe.entries) do
          add(e.blob)
        end
      end
    end
  end
end

-- A missing artifact with a recipe is not sent when the server already has
-- at least half of its bytes (as blobs): the server rebuilds it at prepare
-- and checks its hash (if it cannot, prepare asks for it and it is sent then).
-- On a first export, when the server has none of the blobs, the artifact is
-- sent: rebuilding would cost the server more than the upload saves.
local function drop_rebuildable(missing, recipes)
  local absent = {}
  for _, id in ipairs(missing) do
    absent[id] = true
  end
  local send, rebuilt = {}, {}
  for _, id in ipairs(missing) do
    local recipe, present, total = recipes[id], 0, 0
    for _, e in ipairs(recipe and recipe.entries or {}) do
      total = total + e.size
      present = present + (absent[e.blob] and 0 or e.size)
    end
    if recipe and present * 2 >= total then
      rebuilt[#rebuilt + 1] = id
    else
      send[#send + 1] = id
    end
  end
  return send, rebuilt
end

-- Beyond this many components a scope is asked: working out what it has
-- reads a version object per component, one request answers for all.
local INFER_MAX_COMPONENTS = 64

-- The objects `scope` surely has, or nil: those of the last version of each
-- component exported there (the refs record it), when every one has such a
-- version. The objects the new versions add are then what it lacks.
local function known_in_scope(ws, scope, components)
  if #components > INFER_MAX_COMPONENTS then
    return nil
  end
  local known = {}
  for _, c in ipairs(components) do
    local ref = ws.scope:component(c.id)
    local last = ref and ref.remote
    local base = last and last.scope == scope and ref.versions[last.head]
    if not (base and base.exported and ws.scope.store:has(base.id)) then
      return nil
    end
    objects_of(ws, { { id = base.id } }, {}, known, {})
  end
  return known
end

export:step("negotiate", function(ctx)
  local ws = ctx.workspace
  ctx.objects, ctx.missing, ctx.recipes, ctx.rebuilt, ctx.rebuilt_in, ctx.rebuild = {}, {}, {}, 0, {}, {}
  ctx.inferred = {}
  for _, scope in ipairs(ctx.scope_names) do
    local ids, seen = {}, {}
    for _, c in ipairs(ctx.scopes[scope]) do
      objects_of(ws, c.versions, ids, seen, ctx.recipes)
    end
    ctx.objects[scope] = ids
  end
  if ctx.opts.dry_run then
    print("dry run: nothing is sent")
    for _, url in ipairs(ctx.server_urls) do
      for _, scope in ipairs(ctx.servers[url].scopes) do
        local bytes = 0
        for _, id in ipairs(ctx.objects[scope]) do
          bytes = bytes + ws.scope.store:size_on_disk(id)
        end
        print(("%s → %s  (%d objects, %s compressed)"):format(scope, url, #ctx.objects[scope], inspect.size(bytes)))
        for _, c in ipairs(ctx.scopes[scope]) do
          print(("  > %s@%s"):format(c.id, versions_text(c)))
        end
      end
    end
    ctx.stop = true
    return
  end
  for _, url in ipairs(ctx.server_urls) do
    local server = ctx.servers[url]
    for _, scope in ipairs(server.scopes) do
      local known, lacking = known_in_scope(ws, scope, ctx.scopes[scope]), {}
      for _, id in ipairs(known and ctx.objects[scope] or {}) do
        if not known[id] then
          lacking[#lacking + 1] = id
        end
      end
      ctx.inferred[scope] = known and true or nil
      local missing, rebuilt = drop_rebuildable(known and lacking or server.client:missing(scope, ctx.objects[scope]),
        ctx.recipes)
      ctx.missing[scope], ctx.rebuilt_in[scope], ctx.rebuilt = missing, #rebuilt, ctx.rebuilt + #rebuilt
      ctx.rebuild[scope] = {}
      for _, id in ipairs(rebuilt) do
        ctx.rebuild[scope][id] = true
      end
    end
  end
end)

-- Objects go in packs (one request for many objects); a pack is cut at
-- PACK_MAX_BYTES or PACK_MAX_OBJECTS, and packs go up in parallel.
local PACK_MAX_BYTES = 32 * 1024 * 1024
local PACK_MAX_OBJECTS = 4000

-- Adds objects `ids` for `scope` to `packs`, cut at PACK_MAX_BYTES or PACK_MAX_OBJECTS.
local function cut_packs(store, packs, client, scope, ids)
  local pack
  for _, id in ipairs(ids) do
    local size = store:size_on_disk(id)
    if not pack or pack.bytes + size > PACK_MAX_BYTES or #pack.ids >= PACK_MAX_OBJECTS then
      pack = { client = client, scope = scope, ids = {}, bytes = 0 }
      packs[#packs + 1] = pack
    end
    pack.ids[#pack.ids + 1] = id
    pack.bytes = pack.bytes + size
  end
end

-- Sends `packs` (`jobs` at a time), counted in ctx.uploaded.
local function send_packs(ctx, packs)
  if #packs == 0 then
    return
  end
  local store = ctx.workspace.scope.store
  local tmp = fs.tempdir(ctx.workspace.scope.dir .. "/tmp-upload-")
  local cleanup <close> = setmetatable({}, {
    __close = function()
      fs.try_remove(tmp, { recursive = true })
    end,
  })
  local total = 0
  for _, pack in ipairs(packs) do
    total = total + #pack.ids
  end
  local progress = log.progress(total, "upload")
  local list = {}
  for i, pack in ipairs(packs) do
    list[i] = function()
      local file = ("%s/pack-%d"):format(tmp, i)
      store:write_pack(pack.ids, file)
      pack.client:upload_pack(pack.scope, file, #pack.ids)
      fs.remove(file)
      ctx.uploaded.count = ctx.uploaded.count + #pack.ids
      ctx.uploaded.bytes = ctx.uploaded.bytes + pack.bytes
      progress:update(ctx.uploaded.count, ("%s: %d objects"):format(pack.scope, #pack.ids))
      fault.point("export:during-upload")
    end
  end
  local ok, err = pcall(jobs.run, list, { jobs = ctx.opts.jobs or 4 })
  progress:done()
  if not ok then
    error(err, 0)
  end
end

export:step("upload", function(ctx)
  local store = ctx.workspace.scope.store
  local packs = {}
  ctx.uploaded = { count = 0, bytes = 0, skipped = 0 }
  for _, url in ipairs(ctx.server_urls) do
    local server = ctx.servers[url]
    for _, scope in ipairs(server.scopes) do
      ctx.uploaded.skipped = ctx.uploaded.skipped + #ctx.objects[scope] - #ctx.missing[scope]
        - ctx.rebuilt_in[scope]
      cut_packs(store, packs, server.client, scope, ctx.missing[scope])
    end
  end
  send_packs(ctx, packs)
end)


-- Uploads objects `ids` to `scope` (during prepare), in packs as the upload step does.
local function send(ctx, server, scope, ids)
  local packs = {}
  cut_packs(ctx.workspace.scope.store, packs, server.client, scope, ids)
  send_packs(ctx, packs)
end

-- Prepares on one server. When it lacks an object of a scope whose missing
-- objects were worked out rather than asked (see negotiate), it is asked
-- now and sent what it lacks; when it lacks an object we meant it to
-- rebuild (an artifact from its recipe), that object is sent. Then prepare
-- is asked again (once per scope or such object at most).
local function prepare(ctx, server, body, txn, commit)
  local store = ctx.workspace.scope.store
  local tries = ctx.rebuilt + #server.scopes
  for _ = 1, tries do
    local ok, result = pcall(server.client.prepare, server.client, body, txn, commit)
    if ok then
      return result
    end
    local d = type(result) == "table" and result.code == "missing_object" and result.details
    local planned = d and ctx.rebuild[d.scope] and ctx.rebuild[d.scope][d.id]
    if d and (planned or (ctx.recipes[d.id] and not ctx.inferred[d.scope])) and store:has(d.id) then
      log.verbose("%s: the server did not rebuild %s from its recipe: uploading it", d.scope, d.id)
      send(ctx, server, d.scope, { d.id })
      if planned then
        ctx.rebuild[d.scope][d.id] = nil
        ctx.rebuilt = ctx.rebuilt - 1
      end
    elseif d and ctx.inferred[d.scope] then
      log.verbose("%s lacks %s, which its last export should have left: asking what it lacks", d.scope, d.id)
      ctx.inferred[d.scope] = nil
      local lacking = {}
      for _, id in ipairs(server.client:missing(d.scope, ctx.objects[d.scope])) do
        if not ctx.rebuild[d.scope][id] then -- still the server's to rebuild
          lacking[#lacking + 1] = id
        end
      end
      if #lacking > 0 then
        send(ctx, server, d.scope, lacking)
      end
      ctx.uploaded.skipped = ctx.uploaded.skipped - #lacking
    else
      error(result, 0)
    end
  end
  return server.client:prepare(body, txn, commit)
end

export:step("prepare", function(ctx)
  local ws = ctx.workspace
  local j = { id = require("bbit.hash").random_hex(16), state = "preparing", servers = {}, components = {} }
  -- one server: it commits when prepared (see the top of this file), and
  -- nothing needs journaling: an interrupted one-phase export is either
  -- committed or absent, and the next `bbit export` completes it either way
  local one_phase = #ctx.server_urls == 1
  for _, url in ipairs(ctx.server_urls) do
    -- the transaction id is ours and journaled first, so an interrupted
    -- export can always commit or abort what a server prepared
    j.servers[#j.servers + 1] = { url = url, txn = j.id }
    for _, scope in ipairs(ctx.servers[url].scopes) do
      for _, c in ipairs(ctx.scopes[scope]) do
        j.components[#j.components + 1] = { scope = scope, name = c.id, versions = c.versions }
      end
    end
  end
  ctx.journal = j
  if not one_phase then
    ws.scope:journal_write(JOURNAL, j)
    ctx.journaled = true
  end
  local changed = false
  for i, url in ipairs(ctx.server_urls) do
    local server = ctx.servers[url]
    local body = {}
    for _, scope in ipairs(server.scopes) do
      for _, c in ipairs(ctx.scopes[scope]) do
        local versions = {}
        for _, v in ipairs(c.versions) do
          versions[#versions + 1] = { version = v.version, id = v.id }
        end
        body[#body + 1] = { scope = scope, name = c.id, versions = json.array(versions) }
      end
    end
    local ok, result = pcall(prepare, ctx, server, body, j.id, one_phase)
    if not ok then
      if one_phase then
        if not errors.is_interrupt(result) and committed_anyway(url, j.id) then
          ctx.committed = true
          return
        end
      else -- presumed abort: release what the other servers prepared
        finish_journal(ws, j, true)
      end
      error(result, 0)
    end
    ctx.committed = result.state == "committed" -- else a server without one-phase commits
    j.servers[i].txn = result.id or j.id
    changed = changed or j.servers[i].txn ~= j.id
  end
  if changed and ctx.journaled then -- a server chose its own id: the journal must know it
    ws.scope:journal_write(JOURNAL, j)
  end
  fault.point("export:after-prepare")
end)

export:step("commit", function(ctx)
  if ctx.committed then
    return
  end
  local ws = ctx.workspace
  local j = ctx.journal
  j.state = "committing" -- the decision: from here on, every server commits
  ws.scope:journal_write(JOURNAL, j) -- (also for a server that ignored one-phase)
  ctx.journaled = true
  for _, s in ipairs(j.servers) do
    remote.client(s.url):commit(s.txn)
    fault.point("export:after-commit")
  end
end)

export:step("update", function(ctx)
  local ws = ctx.workspace
  update_local(ws, ctx.journal.components)
  if ctx.journaled then
    ws.scope:journal_clear(JOURNAL)
  end
end)

export:step("report", function(ctx)
  local count = 0
  for _, scope in ipairs(ctx.scope_names) do
    count = count + #ctx.scopes[scope]
  end
  print(("exported %d component(s) to %d scope(s):"):format(count, #ctx.scope_names))
  for _, url in ipairs(ctx.server_urls) do
    for _, scope in ipairs(ctx.servers[url].scopes) do
      print(("  %s (%s)"):format(scope, url))
      for _, c in ipairs(ctx.scopes[scope]) do
        print(("    > %s@%s"):format(c.id, versions_text(c)))
      end
    end
  end
  print(("uploaded %d object(s), %s (%d already on the server%s)"):format(ctx.uploaded.count,
    inspect.size(ctx.uploaded.bytes), ctx.uploaded.skipped,
    ctx.rebuilt > 0 and (", %d rebuilt by it from their recipes"):format(ctx.rebuilt) or ""))
  print("")
  print(".bitmap was updated; commit it:")
  print("  git commit -am 'updated .bitmap file after a successful export'")
end)

return export
