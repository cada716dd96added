-- The tag workflow (`bbit tag`): a list of named steps a workspace can wrap
-- or hook into (see `bbit scripts show tag` and the workflow docs).
--
--   select    which components to tag: the patterns given (ids, globs,
--             `name@1.2.0`), else every new or modified one; plus their
--             dependents (auto-tag, patch bump) unless --skip-auto-tag
--   versions  the new version of each
--   route     the target scope of each (a component without one stops the tag)
--   build     the build pipeline of each, in dependency order (scripts/pipeline.lua)
--   store     file blobs and version objects into the local scope
--   commit    the objects' pack, then refs and .bitmap, through the journal
--             (all or nothing)
--   report    the summary
--
-- ctx: workspace, analysis, opts (the command's options), patterns,
-- selected (ids), auto_tagged (set), versions (id -> version), results
-- (pipeline results), objects (id -> version object id), tagged (list),
-- author (a function giving the author of the new versions).
local components = require("bbit.components")
local errors = require("bbit.errors")
local fault = require("bbit.fault")
local json = require("bbit.json")
local proc = require("bbit.proc")
local semver = require("bbit.semver")
local workflow = require("bbit.workflow")

local tag = workflow.new("tag")

-- Splits "ui/button@1.2.0" into the pattern and the version.
local function split_pattern(p)
  local id, version = p:match("^(.-)@(.+)$")
  if id then
    if not semver.valid(version) then
      errors.usage(("invalid version in '%s' (expected NAME@MAJOR.MINOR.PATCH)"):format(p))
    end
    return id, version
  end
  return p, nil
end

-- The author of the new versions: BBIT_AUTHOR_NAME/EMAIL, else git's
-- identity. git runs while the tag does its other work: start_author() starts
-- it and returns the function that gives the answer.
local function start_author()
  local name = os.getenv("BBIT_AUTHOR_NAME")
  local email = os.getenv("BBIT_AUTHOR_EMAIL")
  local git_run
  if not name or not email then -- git's identity, in one run of git
    local ok, p = pcall(proc.spawn, { "git", "config", "--get-regexp", "^user\\.(name|email)$" }, { quiet = true })
    git_run = ok and p or nil
  end
  return function()
    if git_run then
      local ok, r = pcall(git_run.wait, git_run)
      git_run:close()
      git_run = nil
      local git = {}
      for key, value in ((ok and r.code == 0 and r.stdout) or ""):gmatch("user%.(%a+) ([^\n]*)") do
        git[key] = value -- listed from the system to the repository config: the last one wins
      end
      name, email = name or git.name, email or git.email
    end
    name = (name and name ~= "") and name or os.getenv("USER") or "unknown"
    return email and email ~= "" and ("%s <%s>"):format(name, email) or name
  end
end

tag:step("select", function(ctx)
  -- every object of this tag goes into one pack (bbit.store), installed by
  -- the commit step; new and modified files are stored as they are hashed
  ctx.workspace.scope.store:begin_pack()
  ctx.workspace.store_while_scanning = true
  ctx.author = start_author()
  local analysis = components.analyze(ctx.workspace)
  ctx.analysis = analysis
  local selected, explicit_version, seen = {}, {}, {}
  local function select(comp, version)
    if not seen[comp.id] then
      seen[comp.id] = true
      selected[#selected + 1] = comp.id
    end
    if version then
      explicit_version[comp.id] = version
    end
  end
  if #ctx.patterns > 0 then
    for _, p in ipairs(ctx.patterns) do
      local pattern, version = split_pattern(p)
      local hit = false
      for _, comp in ipairs(analysis.list) do
        if components.matches(pattern, comp) then
          hit = true
          if comp.status ~= "unchanged" or version then
            select(comp, version)
          end
        end
      end
      if not hit then
        errors.fail(("no component matches '%s'"):format(pattern), "see `bbit status` for the tracked components")
      end
    end
  else
    for _, comp in ipairs(analysis.list) do
      if comp.status ~= "unchanged" then
        select(comp)
      end
    end
  end
  -- components with issues are never tagged
  local bad = {}
  for _, id in ipairs(selected) do
    local comp = analysis.by_id[id]
    if #comp.issues > 0 then
      bad[#bad + 1] = ("  %s: %s"):format(id, table.concat(comp.issues, "; "))
    end
  end
  if #bad > 0 then
    errors.fail("these components have issues and cannot be tagged:\n" .. table.concat(bad, "\n"),
      "fix them (see `bbit status`), or tag other components by name")
  end
  ctx.auto_tagged = {}
  if not ctx.opts.skip_auto_tag then
    local queue, head = { table.unpack(selected) }, 1
    while head <= #queue do
      local comp = analysis.by_id[queue[head]]
      head = head + 1
      for _, dependent_id in ipairs(comp.dependents) do
        local d = analysis.by_id[dependent_id]
        if not seen[dependent_id] and d.head then
          if #d.issues > 0 then
            errors.fail(("%s depends on %s and would be auto-tagged, but has issues: %s"):format(dependent_id,
              comp.id, table.concat(d.issues, "; ")), "fix it, or use --skip-auto-tag")
          end
          select(d)
          ctx.auto_tagged[dependent_id] = true
          queue[#queue + 1] = dependent_id
        end
      end
    end
  end
  if #selected == 0 then
    print("nothing to tag (no new or modified components; see `bbit status`)")
    ctx.stop = true
    return
  end
  ctx.selected = components.order(selected, analysis.by_id)
  ctx.explicit_version = explicit_version
end)

tag:step("versions", function(ctx)
  local opts = ctx.opts
  local level = opts.major and "major" or opts.minor and "minor" or "patch"
  if opts.ver and not semver.valid(opts.ver) then
    errors.usage(("--ver %s is not a valid version (expected MAJOR.MINOR.PATCH)"):format(opts.ver))
  end
  ctx.versions = {}
  for _, id in ipairs(ctx.selected) do
    local comp = ctx.analysis.by_id[id]
    local version = ctx.explicit_version[id] or (not ctx.auto_tagged[id] and opts.ver) or nil
    if not version then
      local bump = ctx.auto_tagged[id] and "patch" or level
      version = comp.head and semver.bump(comp.head, bump) or (bump == "patch" and "0.0.1" or semver.bump("0.0.0", bump))
    end
    if comp.versions and comp.ref and comp.ref.versions[version] then
      errors.fail(("%s@%s already exists"):format(id, version), "choose another version (--ver, or NAME@VERSION)")
    end
    if comp.head and semver.compare(version, comp.head) <= 0 then
      errors.fail(("%s@%s is not newer than its head %s"):format(id, version, comp.head),
        "choose a higher version")
    end
    ctx.versions[id] = version
  end
end)

tag:step("route", function(ctx)
  ctx.scopes = {}
  for _, id in ipairs(ctx.selected) do
    local comp = ctx.analysis.by_id[id]
    if not comp.scope then
      ctx.workspace:no_scope_error(id)
    end
    ctx.scopes[id] = comp.scope
  end
end)

tag:step("build", function(ctx)
  local pipeline = ctx.workspace:script("pipeline")
  ctx.results = pipeline.run(ctx.selected, ctx.analysis, ctx.workspace,
    { jobs = ctx.opts.jobs, no_cache = ctx.opts.no_cache, versions = ctx.versions })
end)

local function now_iso()
  local epoch = tonumber(os.getenv("SOURCE_DATE_EPOCH") or "")
  return os.date("!%Y-%m-%dT%H:%M:%SZ", epoch and math.floor(epoch) or os.time())
end

tag:step("store", function(ctx)
  local ws = ctx.workspace
  local store = ws.scope.store
  local log_entry = { message = ctx.opts.message or "", author = (ctx.author or start_author())(), date = now_iso() }
  ctx.objects = {}
  for _, id in ipairs(ctx.selected) do
    local comp = ctx.analysis.by_id[id]
    local files = {}
    for _, f in ipairs(comp.files) do
      if not store:has(f.blob) then
        local blob = store:put_file(f.abs)
        if blob ~= f.blob then
          errors.fail(("%s/%s changed while tagging; run `bbit tag` again"):format(comp.root_dir, f.path))
        end
      end
      files[#files + 1] = { path = f.path, mode = f.mode, size = f.size, blob = f.blob }
    end
    local dependencies = {}
    for _, dep in ipairs(comp.deps) do
      local d = ctx.analysis.by_id[dep]
      local version = ctx.versions[dep] or d.head
      local ref = ctx.objects[dep] or (d.ref and d.head and d.ref.versions[d.head].id)
      if version and ref then
        dependencies[#dependencies + 1] = { id = dep, version = version, ref = ref }
      end
    end
    local artifacts = {}
    for name, a in pairs(ctx.results[id].artifacts) do
      artifacts[#artifacts + 1] = { name = name, blob = a.blob, size = a.size, recipe = a.recipe }
    end
    table.sort(artifacts, function(a, b)
      return a.name < b.name
    end)
    local parents = {}
    if comp.head then
      parents[1] = comp.ref.versions[comp.head].id
    end
    local obj = {
      kind = "bbit.version/1",
      name = id,
      version = ctx.versions[id],
      mainFile = comp.entry.mainFile,
      files = json.array(files),
      tree = comp.tree,
      parents = json.array(parents),
      dependencies = json.array(dependencies),
      artifacts = json.array(artifacts),
      log = ctx.auto_tagged[id] and { message = "auto-tag: a dependency changed", author = log_entry.author,
        date = log_entry.date } or log_entry,
    }
    ctx.objects[id] = ws.scope:put_version(obj)
  end
  fault.point("tag:after-objects")
end)

tag:step("commit", function(ctx)
  local ws = ctx.workspace
  if ws.scope.store:packing() then
    ws.scope.store:commit_pack({ sync = true }) -- durable before anything points at its objects
  end
  local refs = ws.scope:refs()
  for _, id in ipairs(ctx.selected) do
    local comp = ctx.analysis.by_id[id]
    local ref = refs.components[id] or { versions = json.object({}) }
    refs.components[id] = ref
    ref.versions[ctx.versions[id]] = { id = ctx.objects[id], tree = comp.tree }
    ref.head = ctx.versions[id]
    local entry = ws.bitmap:get(id)
    entry.version = ctx.versions[id]
    if not entry.scope or entry.scope == "" then
      entry.scope = ""
      entry.defaultScope = ctx.scopes[id]
    end
  end
  ws:commit_changes("tag")
end)

tag:step("report", function(ctx)
  print(("%d component(s) tagged"):format(#ctx.selected))
  for _, id in ipairs(ctx.selected) do
    print(("  > %s@%s%s  → %s"):format(id, ctx.versions[id], ctx.auto_tagged[id] and " (auto-tagged)" or "",
      ctx.scopes[id]))
  end
  print("staged: run `bbit export` to publish them")
end)

return tag
