-- bbit add PATH...: track directories as components.
local errors = require("bbit.errors")
local fs = require("bbit.fs")
local path = require("bbit.path")
local workspace = require("bbit.workspace")

-- "components/ui/button" -> "ui/button"
local function derive_id(rel)
  local id = rel:gsub("^components/", ""):lower():gsub("[^a-z0-9_./%-]", "-"):gsub("^[._%-]+", "")
  return id
end

local function detect_main(ws, rel)
  local files = fs.walk(ws:abs(rel), { ignore = ws:ignore_patterns() })
  local index = {}
  for _, f in ipairs(files) do
    if f:match("^index%.[^/]+$") then
      index[#index + 1] = f
    end
  end
  if #index == 1 then
    return index[1]
  end
  if #index > 1 then
    errors.fail(("cannot tell the main file of %s: several index files (%s)"):format(rel, table.concat(index, ", ")),
      "name it with --main FILE")
  end
  if #files == 1 then
    return files[1]
  end
  if #files == 0 then
    errors.fail(("%s has no files to track"):format(rel))
  end
  local shown = {}
  for i = 1, math.min(#files, 5) do
    shown[i] = files[i]
  end
  errors.fail(("cannot tell the main file of %s (no index.* file; files: %s%s)"):format(rel,
    table.concat(shown, ", "), #files > 5 and ", ..." or ""), "name it with --main FILE")
end

return {
  summary = "track directories as components",
  usage = "bbit add PATH... [--id NAME] [--main FILE] [--scope OWNER.SCOPE]",
  description = [[
Each PATH is a folder inside the workspace; it becomes one component. Its id is
the path without a leading "components/" (components/ui/button -> ui/button),
or --id. The main file is index.* or the only file, or --main. The target
scope comes from --scope, else the routing script (variants' defaultScope,
then the workspace defaultScope).]],
  options = {
    { "id", type = "string", arg = "NAME", help = "the component id (one PATH only)" },
    { "main", type = "string", arg = "FILE", help = "the main file, relative to the component folder" },
    { "scope", type = "string", arg = "OWNER.SCOPE", help = "export this component to this scope" },
  },
  run = function(ctx)
    if #ctx.args == 0 then
      errors.usage("bbit add needs at least one folder: bbit add PATH...")
    end
    if ctx.opts.id and #ctx.args > 1 then
      errors.usage("--id names one component: give one PATH with it")
    end
    if ctx.opts.scope and not workspace.valid_scope(ctx.opts.scope) then
      errors.usage(("--scope '%s' is not a valid scope name (expected owner.scope)"):format(ctx.opts.scope))
    end
    local ws = workspace.open(nil, { lock = "fail" })
    local cwd = fs.cwd()
    local added = {}
    -- rootDir -> id, and every folder above a rootDir -> that component
    local roots, ancestors = {}, {}
    local function track(id, dir)
      roots[dir] = id
      local up = dir:match("^(.*)/[^/]*$")
      while up and not ancestors[up] do
        ancestors[up] = { id = id, dir = dir }
        up = up:match("^(.*)/[^/]*$")
      end
    end
    for _, other_id in ipairs(ws.bitmap:ids()) do
      track(other_id, ws.bitmap:get(other_id).rootDir)
    end
    for _, arg in ipairs(ctx.args) do
      local abs = path.normalize(path.is_absolute(arg) and arg or (cwd .. "/" .. arg))
      local real = fs.try_realpath(abs)
      if not real then
        errors.fail(("%s does not exist"):format(arg))
      end
      local rel = ws:rel(real)
      if not rel or rel == "." then
        errors.fail(("%s is outside the workspace %s"):format(arg, ws.root), "components must be folders inside the workspace")
      end
      if not fs.is_dir(real) then
        errors.fail(("%s is not a folder"):format(arg), "bbit add tracks folders: give the component's folder")
      end
      -- nesting, in O(depth): a tracked folder above `rel`, or `rel` above one
      local above = roots[rel] and rel
      local parent = rel
      while not above do
        parent = parent:match("^(.*)/[^/]*$")
        if not parent then
          break
        end
        above = roots[parent] and parent
      end
      if above == rel then
        errors.fail(("%s is already tracked as %s"):format(rel, roots[rel]))
      elseif above then
        errors.fail(("%s is inside the component %s (%s): components cannot be nested"):format(rel, roots[above], above))
      elseif ancestors[rel] then
        errors.fail(("%s contains the component %s (%s): components cannot be nested"):format(rel, ancestors[rel].id,
          ancestors[rel].dir))
      end
      local id = ctx.opts.id or derive_id(rel)
      if not workspace.valid_id(id) then
        errors.fail(("'%s' is not a valid component id (lowercase letters, digits, '-', '_', '.', '/')"):format(id),
          "give one with --id NAME")
      end
      if ws.bitmap:get(id) then
        errors.fail(("a component with id '%s' already exists (%s)"):format(id, ws.bitmap:get(id).rootDir),
          "choose another id with --id NAME")
      end
      local main = ctx.opts.main or detect_main(ws, rel)
      if not fs.is_file(real .. "/" .. main) then
        errors.fail(("main file %s/%s does not exist"):format(rel, main))
      end
      local entry = { name = id, scope = "", version = "", mainFile = main, rootDir = rel }
      if ctx.opts.scope then
        entry.config = { bbit = { scope = ctx.opts.scope } }
      end
      ws.bitmap:set(id, entry)
      track(id, rel)
      local scope, reason = ws:target_scope(id)
      if not scope then
        ws:no_scope_error(id)
      end
      entry.defaultScope = scope
      added[#added + 1] = { id = id, rel = rel, main = main, scope = scope, reason = reason }
    end
    ws.bitmap:write()
    for _, a in ipairs(added) do
      print(("added %s (%s, main file %s) → %s (%s)"):format(a.id, a.rel, a.main, a.scope, a.reason))
    end
    return 0
  end,
}
