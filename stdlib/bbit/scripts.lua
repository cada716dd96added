--- Finding and loading workflow scripts, tasks and commands (SPEC §4).
---
--- A script name is a path without `.lua`: `route`, `tag`, `tasks/lint`,
--- `commands/status`. Lookup order, first hit wins:
---   1. `<workspace>/.bbit/scripts/NAME.lua`
---   2. each directory of `$BBIT_SCRIPTS_PATH` (`:`-separated)
---   3. `$BBIT_HOME/scripts/NAME.lua`
---   4. built-in (`$BBIT_DEV_DIR/scripts/` first when set, for development)
---
--- Scripts load as text in their own environment: globals they set stay in
--- that environment, never in the shared `_G`.
local host = require("bbit.core.host")
local errors = require("bbit.errors")

local M = {}

local function readable(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local text = f:read("a")
  f:close()
  return text
end

--- The directories searched, in order, as `{origin=, dir=}` (built-in excluded).
---@param workspace_root? string
---@return table[]
function M.search_dirs(workspace_root)
  local dirs = {}
  if workspace_root then
    dirs[#dirs + 1] = { origin = "workspace", dir = workspace_root .. "/.bbit/scripts", shown = ".bbit/scripts" }
  end
  for dir in (os.getenv("BBIT_SCRIPTS_PATH") or ""):gmatch("[^:]+") do
    dirs[#dirs + 1] = { origin = "BBIT_SCRIPTS_PATH", dir = dir }
  end
  dirs[#dirs + 1] = { origin = "home", dir = require("bbit.config").home() .. "/scripts" }
  if host.dev_dir then
    dirs[#dirs + 1] = { origin = "builtin", dir = host.dev_dir .. "/scripts" }
  end
  return dirs
end

local function check_name(name)
  if type(name) ~= "string" or not name:match("^[%w_%-][%w_%-/%.]*$") or name:find("..", 1, true) then
    errors.fail(("invalid script name '%s': use letters, digits, '-', '_' and '/' (e.g. 'tasks/lint')"):format(tostring(name)))
  end
end

--- Resolves a script name to `{name=, origin=, path=, source=}`, or nil.
--- `origin` is "workspace", "BBIT_SCRIPTS_PATH", "home" or "builtin";
--- `path` is a file, or `[builtin]/scripts/NAME.lua` for a compiled-in one.
---@param name string
---@param workspace_root? string
---@param skip? integer skip this many hits (to find the script an override wraps)
---@return table|nil
function M.find(name, workspace_root, skip)
  check_name(name)
  local rank = 0
  for _, d in ipairs(M.search_dirs(workspace_root)) do
    local path = d.dir .. "/" .. name .. ".lua"
    local source = readable(path)
    if source then
      rank = rank + 1
      if rank > (skip or 0) then
        local shown = d.shown and (d.shown .. "/" .. name .. ".lua") or path
        return { name = name, origin = d.origin, path = path, shown = shown, source = source, rank = rank }
      end
    end
  end
  local rel = "scripts/" .. name .. ".lua"
  local source = host.embedded(rel)
  if source and rank + 1 > (skip or 0) then
    return { name = name, origin = "builtin", path = "[builtin]/" .. rel, source = source, rank = rank + 1 }
  end
  return nil
end

local function is_builtin_source(source)
  if source:sub(1, 10) == "=[builtin]" or source:sub(1, 1) == "=" then
    return true
  end
  local dev = host.dev_dir
  if dev and source:sub(1, #dev + 2) == "@" .. dev .. "/" then
    local rest = source:sub(#dev + 3)
    return rest:match("^stdlib/") ~= nil or rest:match("^scripts/") ~= nil
  end
  return false
end

--- Decides whose fault error `err` is, from the innermost Lua frame of the
--- stack where it was raised (call from a message handler, or pass the dead
--- coroutine `co`): an error in built-in code passes through (a bug, exit 70);
--- an error in a workspace or user script becomes a failure
--- "in workspace script: FILE:LINE: ..." (exit 1). Failures pass through.
---@param err any
---@param co? thread the coroutine the error was raised in
---@param level? integer first stack level to look at (default 2)
---@return any
function M.attribute(err, co, level)
  if errors.is_failure(err) or errors.is_interrupt(err) then
    return err
  end
  level = level or (co and 0 or 2)
  while true do
    local info
    if co then
      info = debug.getinfo(co, level, "Sl")
    else
      info = debug.getinfo(level, "Sl")
    end
    if not info then
      return err
    end
    if info.what ~= "C" then
      if is_builtin_source(info.source) then
        return err
      end
      local message = tostring(err)
      if not message:find(info.short_src, 1, true) then
        message = ("%s:%d: %s"):format(info.short_src, info.currentline, message)
      end
      local traceback = co and debug.traceback(co, message) or debug.traceback(message, level)
      require("bbit.log").debug("%s", traceback)
      return errors.failure("in workspace script: " .. message)
    end
    level = level + 1
  end
end

--- Calls `fn(...)` on behalf of the script `found` (see `find`), attributing
--- errors as `attribute` does.
---@param found table
---@param fn function
---@return any
function M.call(found, fn, ...)
  if found.origin == "builtin" then
    return fn(...)
  end
  local results = table.pack(xpcall(fn, function(err)
    local attributed = M.attribute(err, nil, 3) -- not a tail call: level 3 is the raising function
    return attributed
  end, ...))
  if not results[1] then
    error(results[2], 0)
  end
  return table.unpack(results, 2, results.n)
end

--- Loads a found script (see `find`) and runs its chunk; returns what it returns.
--- The chunk's environment is a fresh table reading through to `_G`.
--- Errors while loading or running a non-built-in script are failures that
--- name the file and line and say "in workspace script".
---@param found table
---@return any
function M.run_chunk(found, workspace_root)
  local env = setmetatable({}, { __index = _G })
  -- base(): the script this one overrides (next in the lookup order), loaded.
  env.base = function()
    local module = M.load_next(found, workspace_root)
    if module == nil then
      errors.fail(("%s: base() called but no script named '%s' comes after it"):format(found.path, found.name))
    end
    return module
  end
  local chunk, err
  local rel = found.path:match("^%[builtin%]/(.*)$") -- not a BBIT_DEV_DIR file
  local code = found.origin == "builtin" and rel and host.embedded_chunk(rel)
  if code then -- precompiled (tools/embed.c), under the same chunk name
    chunk, err = load(code, "@" .. found.path, "b", env)
  else
    chunk, err = load(found.source, "@" .. (found.shown or found.path), "t", env)
  end
  if not chunk then
    if found.origin == "builtin" then
      error(err, 0)
    end
    errors.fail(("in workspace script: %s"):format(err))
  end
  return M.call(found, chunk)
end

--- Finds and loads a script; raises a failure when it does not exist.
---@param name string
---@param workspace_root? string
---@return any module the value the script returns
---@return table found see `find`
function M.load(name, workspace_root)
  local found = M.find(name, workspace_root)
  if not found then
    errors.fail(("no script named '%s' (looked in .bbit/scripts, $BBIT_SCRIPTS_PATH, $BBIT_HOME/scripts and the built-in scripts)"):format(name))
  end
  return M.run_chunk(found, workspace_root), found
end

--- Loads the script that `found` overrides (the next one in the lookup
--- order); returns module, found — or nil when there is none.
---@param found table
---@param workspace_root? string
---@return any|nil
---@return table|nil
function M.load_next(found, workspace_root)
  local next_found = M.find(found.name, workspace_root, found.rank)
  if not next_found then
    return nil
  end
  return M.run_chunk(next_found, workspace_root), next_found
end

--- Every script name visible from `workspace_root`, sorted, each as
--- `{name=, origin=, path=, overrides=bool}` (the winning file per name).
---@param workspace_root? string
---@return table[]
function M.list(workspace_root)
  local fs = require("bbit.core.fs")
  local names = {}
  local function add(name)
    names[name] = true
  end
  for _, d in ipairs(M.search_dirs(workspace_root)) do
    local entries = fs.walk and fs.walk(d.dir) or {}
    for _, rel in ipairs(entries) do
      local name = rel:match("^(.*)%.lua$")
      if name then
        add(name)
      end
    end
  end
  for _, path in ipairs(host.embedded_list()) do
    local name = path:match("^scripts/(.*)%.lua$")
    if name then
      add(name)
    end
  end
  local out = {}
  for name in pairs(names) do
    local found = M.find(name, workspace_root)
    found.source, found.shown = nil, nil
    found.overrides = found.origin ~= "builtin" and host.embedded("scripts/" .. name .. ".lua") ~= nil
    out[#out + 1] = found
  end
  table.sort(out, function(a, b)
    return a.name < b.name
  end)
  return out
end

return M
