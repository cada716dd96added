-- The build pipeline (SPEC §4): the ordered task list of each component, run
-- by `bbit build` and `bbit tag` in dependency order, independent components
-- in parallel, each task's result cached by the hash of its inputs.
--
-- Config: "bbit": {"pipeline": [...]} in workspace.jsonc, overridden per
-- variant by "bbit.pipeline" in a "teambit.workspace/variants" entry. A task is
--   "validate" | "test" | "package" | "NAME"  a Lua task: scripts/tasks/NAME.lua
--                                            (found through the script lookup, so
--                                            .bbit/scripts/tasks/NAME.lua works)
--   "npm run lint -- {rootDir}"              a shell command, run in the component's
--                                            folder; {rootDir} {name} {version}
--                                            {id} are replaced
--   {"shell": "...", "name": "lint", "env": ["NODE_ENV"]}  the long forms
--   {"task": "NAME", ...options}
--
-- A Lua task module: return { run = function(component, ctx) ... end,
--   env = {"VAR"} (env vars that are inputs), inputs = function(component, ctx) ... end
--   (extra cache-key data), cache = false (never cached) }.
-- `ctx` gives: workspace, version (nil for build), options (the long form's
-- table), artifacts_dir (a folder of the task's own), scratch_path(name) (a
-- unique scratch file path), add_artifact(name, path [, {recipe=}]),
-- store_file(path) (stores a file in the local scope: blob, size),
-- sh(command, opts), log(msg), dependencies ({id = {version=, tree=}}).
-- An artifact's recipe says how to rebuild it from blobs: { format = "tar.gz",
-- entries = { {name, mode = "644"|"755", blob, size}, ... } } in archive
-- order (see tasks/package.lua); export then sends it instead of the bytes
-- when the server has most of them (the server checks the rebuilt hash).
local errors = require("bbit.errors")
local fs = require("bbit.fs")
local hash = require("bbit.hash")
local jobs = require("bbit.jobs")
local json = require("bbit.json")
local log = require("bbit.log")
local proc = require("bbit.proc")
local scripts = require("bbit.scripts")
local store = require("bbit.store")
local term = require("bbit.term")

local M = {}

M.DEFAULT = { "validate", "test", "package" }

local OUTPUT_TAIL_LINES = 30

--- The task list of `comp` from config, and where it came from.
function M.tasks_for(comp, ws)
  local list, pattern = ws:variant_value(comp.root_dir, "bbit.pipeline")
  local source = pattern and ("variant \"" .. pattern .. "\"") or nil
  if list == nil then
    list = ws:bbit_config().pipeline
    source = list and "workspace.jsonc bbit.pipeline" or "default"
  end
  list = list or M.DEFAULT
  if type(list) ~= "table" then
    errors.fail(("%s: the pipeline of %s (%s) must be a list of tasks"):format(ws.config_path, comp.id, source))
  end
  return list, source
end

-- Resolves one config entry to a task: {name, kind = "lua"|"shell", module?, found?, command?, options}.
-- `loaded` caches Lua task modules by name for the run: each is found,
-- loaded and hashed once, not once per component.
local function resolve(entry, ws, comp, loaded)
  local options = {}
  if type(entry) == "table" then
    options = entry
    if type(entry.shell) == "string" then
      return { kind = "shell", command = entry.shell, name = entry.name or entry.shell, options = options,
        env = entry.env }
    end
    entry = entry.task
  end
  if type(entry) ~= "string" or entry == "" then
    errors.fail(("%s: invalid task %s in the pipeline of %s (use a task name, a shell command or {\"shell\": ...})"):format(
      ws.config_path, json.encode(entry == nil and json.null or entry), comp.id))
  end
  if entry:match("^[%w_%-/]+$") then
    local lua = loaded[entry]
    if not lua then
      local found = scripts.find("tasks/" .. entry, ws.root)
      if not found then
        errors.fail(("unknown task '%s' in the pipeline of %s"):format(entry, comp.id),
          ("write .bbit/scripts/tasks/%s.lua, or use a shell command (a string with a space), e.g. \"npm run %s\""):format(
            entry, entry))
      end
      local module = scripts.run_chunk(found, ws.root)
      if type(module) ~= "table" or type(module.run) ~= "function" then
        errors.fail(("%s: a task module must return a table with a run(component, ctx) function"):format(found.path))
      end
      lua = { module = module, found = found, source_hash = hash.sha256(found.source) }
      loaded[entry] = lua
    end
    return { kind = "lua", name = options.name or entry, module = lua.module, found = lua.found,
      source_hash = lua.source_hash, options = options }
  end
  return { kind = "shell", command = entry, name = options.name or entry, options = options, env = options.env }
end

local function substitute(command, comp, version)
  return (command:gsub("{(%w+)}", function(key)
    local values = { rootDir = comp.root_dir, name = comp.id, id = comp.id, version = version or "" }
    return values[key] and proc.shell_quote(values[key]) or nil
  end))
end

local function tail(text, lines)
  local all = {}
  for line in (text or ""):gmatch("[^\n]*") do
    all[#all + 1] = line
  end
  while #all > 0 and all[#all] == "" do
    all[#all] = nil
  end
  local first = math.max(1, #all - lines + 1)
  return table.concat(all, "\n", first)
end

-- The cache key of a task run: everything its result depends on.
local function cache_key(task, comp, deps, version_sensitive, version)
  local definition
  if task.kind == "shell" then
    definition = { "shell", task.command }
  else
    definition = { "lua", task.name, task.source_hash, task.options }
  end
  local env = {}
  for _, name in ipairs(task.env or (task.module and task.module.env) or {}) do
    env[name] = os.getenv(name) or json.null
  end
  local extra = json.null
  if task.module and task.module.inputs then
    extra = scripts.call(task.found, task.module.inputs, comp, task) or json.null
  end
  return hash.sha256(json.encode({
    definition = definition,
    tree = comp.tree,
    deps = deps,
    env = env,
    extra = extra,
    version = version_sensitive and version or json.null,
  }))
end

-- The task cache: a `bbit.shards` map in `<scope>/cache/tasks/` (only the
-- shards of the keys a run looks at are read, only changed ones written):
-- key -> { artifacts = {...}, day = D }, D the day it was last used (days
-- since the epoch). A shard being written drops entries unused for
-- CACHE_KEEP_DAYS.
local CACHE_KEEP_DAYS = 30

local function today()
  return os.time() // 86400
end

local function load_cache(ws)
  return require("bbit.shards").open(ws.scope.dir .. "/cache/tasks")
end

local function save_cache(cache)
  local oldest = today() - CACHE_KEEP_DAYS
  cache:save(function(_, entry)
    return type(entry) == "table" and (tonumber(entry.day) or 0) >= oldest
  end)
end

-- An artifact's recipe (see add_artifact), checked and made JSON-ready:
-- { format = "tar.gz"|"tar.zst"|"tar", entries = { {name, mode = "644"|"755", blob, size} } }.
local function check_recipe(recipe, name)
  if recipe == nil then
    return nil
  end
  local function bad(why)
    errors.fail(("add_artifact(%q): bad recipe: %s"):format(name, why),
      "a recipe is { format = \"tar.gz\", entries = { { name =, mode = \"644\", blob =, size = }, ... } }")
  end
  if type(recipe) ~= "table" or type(recipe.entries) ~= "table" then
    bad("expected a table with format and entries")
  end
  if recipe.format ~= "tar.gz" and recipe.format ~= "tar.zst" and recipe.format ~= "tar" then
    bad("format must be tar.gz, tar.zst or tar")
  end
  local entries = {}
  for i, e in ipairs(recipe.entries) do
    if type(e.name) ~= "string" or (e.mode ~= "644" and e.mode ~= "755") or not store.is_id(e.blob)
      or math.type(e.size) ~= "integer" then
      bad(("entry #%d needs name, mode (\"644\" or \"755\"), blob (64 hex) and size (bytes)"):format(i))
    end
    entries[i] = { name = e.name, mode = e.mode, blob = e.blob, size = e.size }
  end
  return { format = recipe.format, entries = json.array(entries) }
end

-- Runs one task of one component; returns {artifacts = {name = {blob, size, recipe}}, cached = bool, output = text}.
local function run_task(task, comp, ws, opts, deps)
  local version_sensitive = task.kind == "shell" and task.command:find("{version}", 1, true) ~= nil
  -- --no-cache runs every task but still records the results
  local cacheable = not (task.module and task.module.cache == false)
  local key = cache_key(task, comp, deps, version_sensitive, opts.versions and opts.versions[comp.id])
  local cache = opts.cache
  if cacheable and not opts.no_cache then
    local entry = cache:get(key)
    if type(entry) == "table" then
      local all_present = true
      for _, a in pairs(entry.artifacts or {}) do
        all_present = all_present and ws.scope.store:has(a.blob)
      end
      if all_present then
        if entry.day ~= today() then
          entry.day = today()
          cache:set(key, entry)
        end
        return { artifacts = entry.artifacts or {}, cached = true, output = "" }
      end
    end
  end
  -- a scratch folder for the task's files, made on first use and removed
  -- however the task ends: error, interruption, or a cancelled job
  local artifacts_dir
  local function scratch()
    artifacts_dir = artifacts_dir or fs.tempdir(ws.scope.dir .. "/tmp-build-")
    return artifacts_dir
  end
  local cleanup <close> = setmetatable({}, {
    __close = function()
      if artifacts_dir then
        fs.try_remove(artifacts_dir, { recursive = true })
      end
    end,
  })
  local artifacts, output = {}, {}
  local version = opts.versions and opts.versions[comp.id]
  local ok, err = pcall(function()
    if task.kind == "shell" then
      local command = substitute(task.command, comp, version)
      local r = proc.run(command, { shell = true, cwd = ws:abs(comp.root_dir), max_output = 1024 * 1024 })
      output[#output + 1] = r.stdout
      output[#output + 1] = r.stderr
      if r.code ~= 0 then
        errors.fail(("%s: task '%s' failed (%s)"):format(comp.id, task.name,
          r.timed_out and "timed out" or r.signal and ("killed by signal " .. r.signal) or ("exit code " .. r.code)))
      end
    else
      local ctx = setmetatable({
        workspace = ws,
        version = version,
        options = task.options,
        dependencies = deps,
        add_artifact = function(name, file, art_opts)
          local blob, size = ws.scope.store:put_file(file)
          artifacts[name] = { blob = blob, size = size, recipe = art_opts and check_recipe(art_opts.recipe, name) }
        end,
        store_file = function(file)
          return ws.scope.store:put_file(file)
        end,
        log = function(msg)
          output[#output + 1] = tostring(msg) .. "\n"
        end,
        sh = function(command, sh_opts)
          sh_opts = sh_opts or {}
          local r = proc.run(command, { shell = type(command) == "string", cwd = sh_opts.cwd or ws:abs(comp.root_dir),
            env = sh_opts.env, max_output = 1024 * 1024 })
          output[#output + 1] = r.stdout
          output[#output + 1] = r.stderr
          if r.code ~= 0 and sh_opts.check ~= false then
            errors.fail(("%s: task '%s': command failed (exit code %s): %s"):format(comp.id, task.name,
              tostring(r.code), type(command) == "string" and command or table.concat(command, " ")))
          end
          return r
        end,
      }, {
        __index = function(_, key)
          if key == "artifacts_dir" then
            return scratch()
          elseif key == "scratch_path" then
            -- a unique file path in the run's scratch folder (no folder per task)
            return function(name)
              opts.scratch_count = (opts.scratch_count or 0) + 1
              return ("%s/%d-%s"):format(opts.scratch_dir(), opts.scratch_count, name)
            end
          end
        end,
      })
      scripts.call(task.found, task.module.run, comp, ctx)
    end
  end)
  local text = table.concat(output)
  if not ok and errors.is_interrupt(err) then
    error(err, 0)
  end
  if not ok then
    local message = errors.message(err)
    if not message:find(comp.id, 1, true) then
      message = ("%s: task '%s' failed: %s"):format(comp.id, task.name, message)
    end
    local t = tail(text, OUTPUT_TAIL_LINES)
    if t ~= "" then
      message = message .. "\n--- output of " .. comp.id .. " / " .. task.name .. " (last lines) ---\n" .. t
    end
    if errors.is_failure(err) or type(err) ~= "table" then
      errors.fail(message)
    end
    error(err, 0)
  end
  if cacheable then
    cache:set(key, { artifacts = json.object(artifacts), day = today() })
  end
  return { artifacts = artifacts, cached = false, output = text }
end

-- A waitable that finishes when `done[id]` is set (to wait for dependencies).
local function dependency_waiter(done, ids)
  return {
    kind = "proc",
    poll_fds = function()
      return {}
    end,
    step = function()
      for _, id in ipairs(ids) do
        if not done[id] then
          return false
        end
      end
      return true
    end,
    cancel = function() end,
  }
end

--- Runs the pipeline of every component in `ids` (already in dependency
--- order), at most `opts.jobs` at once; a component starts when the
--- components it depends on (among `ids`) are done. Returns results by id:
--- `{ tasks = { {name, cached, duration} }, artifacts = { name = {blob, size} } }`.
--- On the first failure nothing more starts, running tasks are stopped, and
--- the failure (naming the component and task, with its output tail) is raised.
---@param ids string[]
---@param analysis table from components.analyze
---@param ws table
---@param opts {jobs?: integer, no_cache?: boolean, versions?: table}
---@return table
function M.run(ids, analysis, ws, opts)
  local by_id = analysis.by_id
  local plans, loaded = {}, {}
  local total = 0
  for _, id in ipairs(ids) do
    local comp = by_id[id]
    local list = M.tasks_for(comp, ws)
    local tasks = {}
    for _, entry in ipairs(list) do
      tasks[#tasks + 1] = resolve(entry, ws, comp, loaded)
    end
    plans[id] = tasks
    total = total + #tasks
  end
  opts = setmetatable({ cache = load_cache(ws) }, { __index = opts })
  -- one scratch folder for the whole run (ctx.scratch_path), removed at the end
  local run_scratch
  opts.scratch_dir = function()
    run_scratch = run_scratch or fs.tempdir(ws.scope.dir .. "/tmp-run-")
    return run_scratch
  end
  local remove_scratch <close> = setmetatable({}, {
    __close = function()
      if run_scratch then
        fs.try_remove(run_scratch, { recursive = true })
      end
    end,
  })
  local progress = log.progress(total, "build")
  local finished_tasks = 0
  local done, results = {}, {}
  local in_set = {}
  for _, id in ipairs(ids) do
    in_set[id] = true
  end
  local work = {}
  for _, id in ipairs(ids) do
    work[#work + 1] = function()
      local comp = by_id[id]
      local wait_for = {}
      for _, dep in ipairs(comp.deps) do
        if in_set[dep] then
          wait_for[#wait_for + 1] = dep
        end
      end
      if #wait_for > 0 then
        jobs.await(dependency_waiter(done, wait_for))
      end
      local deps = {}
      for _, dep in ipairs(comp.deps) do
        local d = by_id[dep]
        deps[dep] = { tree = d and d.tree or json.null,
          version = (opts.versions and opts.versions[dep]) or (d and d.head) or json.null }
      end
      local result = { tasks = {}, artifacts = {} }
      local shown, started_all = {}, term.clock()
      for _, task in ipairs(plans[id]) do
        progress:update(finished_tasks, id .. ": " .. task.name)
        local started = term.clock()
        local r = run_task(task, comp, ws, opts, json.object(deps))
        finished_tasks = finished_tasks + 1
        result.tasks[#result.tasks + 1] = { name = task.name, cached = r.cached, duration = term.clock() - started }
        for name, a in pairs(r.artifacts) do
          result.artifacts[name] = a
        end
        shown[#shown + 1] = task.name .. (r.cached and " (cached)" or "")
        progress:update(finished_tasks, id .. ": " .. task.name)
      end
      progress:line(("%s %s: %s  %.2fs"):format(term.color("green", "✔", 2), id, table.concat(shown, ", "),
        term.clock() - started_all))
      results[id] = result
      done[id] = true
      return result
    end
  end
  local ok, err = pcall(jobs.run, work, { jobs = opts.jobs })
  progress:done()
  -- the results of the tasks that succeeded stay valid even when another failed
  if not errors.is_interrupt(err) then
    save_cache(opts.cache)
  end
  if not ok then
    error(err, 0)
  end
  return results
end

return M
