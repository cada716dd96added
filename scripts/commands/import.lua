-- bbit import: fetch components from remote scopes into the workspace.
local errors = require("bbit.errors")
local fetch = require("bbit.fetch")
local fs = require("bbit.fs")
local inspect = require("bbit.inspect")
local json = require("bbit.json")
local path = require("bbit.path")
local remote = require("bbit.remote")
local workspace = require("bbit.workspace")

-- "my-org.ui/ui/button@0.0.1" -> scope, name, version
local function parse(arg)
  local id, version = inspect.split_id(arg)
  local scope, name = id:match("^([^/]+)/(.+)$")
  if not scope or not workspace.valid_scope(scope) or not workspace.valid_id(name) then
    errors.usage(("'%s' is not a full component id (expected OWNER.SCOPE/NAME[@VERSION], e.g. my-org.ui/ui/button)"):format(arg))
  end
  return scope, name, version
end

local function import_one(ws, arg, opts)
  local scope, name, version = parse(arg)
  local url = remote.server_for(scope, ws) or remote.no_server_error(scope)
  local client = remote.client(url)
  local info = client:component(scope, name)
  version = version or info.head
  local wanted
  for _, v in ipairs(info.versions) do
    if v.version == version then
      wanted = v
    end
  end
  if not wanted then
    errors.fail(("%s/%s has no version %s on %s"):format(scope, name, tostring(version), url),
      "see `bbit log " .. scope .. "/" .. name .. " --remote`")
  end
  local store = ws.scope.store
  -- every version object (the history), then the files of the wanted one
  local ids = {}
  for _, v in ipairs(info.versions) do
    ids[#ids + 1] = v.id
  end
  fetch.objects(client, scope, store, ids)
  local obj = json.decode(store:get(wanted.id), { name = "version object " .. wanted.id })
  if obj.name ~= name or obj.version ~= version then
    errors.fail(("%s: the server's version object %s is for %s@%s"):format(arg, wanted.id, tostring(obj.name),
      tostring(obj.version)))
  end
  local blobs = {}
  for _, f in ipairs(obj.files) do
    if not path.safe_relative(f.path) then
      errors.fail(("%s@%s: refusing the unsafe file path '%s'"):format(name, version, tostring(f.path)))
    end
    blobs[#blobs + 1] = f.blob
  end
  for _, a in ipairs(obj.artifacts or {}) do
    blobs[#blobs + 1] = a.blob
  end
  fetch.objects(client, scope, store, blobs)

  -- where the files go; an existing component is updated only when unmodified
  local entry = ws.bitmap:get(name)
  local root_dir = opts.path and (ws:rel(path.normalize(path.is_absolute(opts.path) and opts.path
    or (fs.cwd() .. "/" .. opts.path)))) or (entry and entry.rootDir) or ("components/" .. name)
  if not root_dir or root_dir == "." or not path.safe_relative(root_dir) then
    errors.fail(("--path %s is outside the workspace"):format(tostring(opts.path)))
  end
  if entry then
    local comp = require("bbit.components").analyze(ws).by_id[name]
    if comp.status ~= "unchanged" or #comp.staged > 0 then
      errors.fail(("%s is %s in this workspace; importing would overwrite local work"):format(name,
        #comp.staged > 0 and "staged" or comp.status), "tag and export it, or `bbit reset` and restore its files first")
    end
    if entry.rootDir ~= root_dir then
      errors.fail(("%s is already tracked in %s"):format(name, entry.rootDir))
    end
  elseif fs.exists(ws:abs(root_dir)) and #fs.walk(ws:abs(root_dir)) > 0 then
    errors.fail(("%s already exists and is not empty"):format(root_dir), "import into another folder with --path DIR")
  end
  local abs_root = ws:abs(root_dir)
  fs.mkdir(abs_root)
  local keep = {}
  for _, f in ipairs(obj.files) do
    local dest = abs_root .. "/" .. f.path
    fs.mkdir(path.dirname(dest))
    store:get_file(f.blob, dest, f.mode == "755" and "755" or "644")
    keep[f.path] = true
  end
  if entry then
    for _, rel in ipairs(fs.walk(abs_root, { ignore = ws:ignore_patterns() })) do
      if not keep[rel] then
        fs.remove(abs_root .. "/" .. rel)
      end
    end
  end
  -- refs: the remote history, all exported; head = the imported version
  local refs = ws.scope:refs()
  local ref = refs.components[name] or { versions = json.object({}) }
  refs.components[name] = ref
  for _, v in ipairs(info.versions) do
    local existing = ref.versions[v.version]
    if not existing or existing.id == v.id then
      local vo = json.decode(store:get(v.id), { name = "version object " .. v.id })
      ref.versions[v.version] = { id = v.id, tree = vo.tree, exported = true }
    end
  end
  ref.head = version
  ref.remote = { scope = scope, head = info.head }
  ws.bitmap:set(name, {
    name = name,
    scope = scope,
    version = version,
    mainFile = obj.mainFile,
    rootDir = root_dir,
  })
  return ("imported %s/%s@%s into %s (%d files)"):format(scope, name, version, root_dir, #obj.files)
end

return {
  summary = "fetch components from remote scopes into the workspace",
  usage = "bbit import OWNER.SCOPE/NAME[@VERSION]... [--path DIR]",
  description = [[
Fetches the component's versions (only objects the local scope lacks, each
verified by its hash), writes the files of the requested version (default: the
latest) into the workspace, and tracks it in .bitmap as exported. Re-importing
a component updates it when its workspace copy is unmodified.]],
  options = { { "path", type = "string", arg = "DIR", help = "the folder to write the component to (one id only)" } },
  run = function(ctx)
    if #ctx.args == 0 then
      errors.usage("bbit import needs a component id: bbit import OWNER.SCOPE/NAME[@VERSION]")
    end
    if ctx.opts.path and #ctx.args > 1 then
      errors.usage("--path goes with one component id")
    end
    local ws = workspace.open(nil, { lock = "fail" })
    require("bbit.remote").prefetch(ws) -- libcurl, if a server needs it, loads meanwhile
    local lines = {}
    for _, arg in ipairs(ctx.args) do
      lines[#lines + 1] = import_one(ws, arg, ctx.opts)
    end
    ws:commit_changes("import")
    for _, l in ipairs(lines) do
      print(l)
    end
    ws:close()
    return 0
  end,
}
