--- Reading components and versions out of a scope, for `log`, `show` and
--- `list` (the local scope now; remote scopes through the same shapes).
local errors = require("bbit.errors")
local localscope = require("bbit.localscope")

local M = {}

--- Splits "id@version" (the version is optional).
---@param s string
---@return string id
---@return string|nil version
function M.split_id(s)
  local id, version = s:match("^(.-)@(.+)$")
  if id then
    return id, version
  end
  return s, nil
end

--- The ref of component `id` in the local scope of `ws`; a failure when unknown.
function M.local_ref(ws, id)
  local ref = ws.scope:component(id)
  if not ref then
    if ws.bitmap:get(id) then
      errors.fail(("%s has no versions yet"):format(id), "run `bbit tag " .. id .. "` to create one")
    end
    errors.fail(("no component '%s' in the local scope"):format(id), "see `bbit list` for the components")
  end
  return ref
end

--- The version objects of a ref, newest first: { {version, id, exported, object} }.
function M.history(ws, ref)
  local out = {}
  local versions = localscope.versions_of(ref)
  for i = #versions, 1, -1 do
    local v = versions[i]
    local entry = ref.versions[v]
    out[#out + 1] = { version = v, id = entry.id, exported = entry.exported == true,
      object = ws.scope:read_version(entry.id) }
  end
  return out
end

--- Formats a byte count for people: 512 B, 2.0 KB, 1.5 MB.
---@param n integer
---@return string
function M.size(n)
  if n < 1024 then
    return ("%d B"):format(n)
  elseif n < 1024 * 1024 then
    return ("%.1f KB"):format(n / 1024)
  elseif n < 1024 * 1024 * 1024 then
    return ("%.1f MB"):format(n / 1024 / 1024)
  end
  return ("%.1f GB"):format(n / 1024 / 1024 / 1024)
end

--- A store to keep fetched objects in: the workspace's local scope, else a
--- cache under $BBIT_HOME.
function M.object_store()
  local root = require("bbit.workspace").find_root()
  if root then
    return require("bbit.localscope").open(root).store
  end
  local dir = require("bbit.config").home() .. "/cache"
  return require("bbit.store").open(dir, { create = true })
end

--- Reads a component of a remote scope: `arg` is OWNER.SCOPE/NAME[@VERSION].
--- Returns scope, name, version (or nil), the server's component info, and a client.
function M.remote_component(arg)
  local remote = require("bbit.remote")
  local id, version = M.split_id(arg)
  local scope, name = id:match("^([^/]+)/(.+)$")
  if not scope then
    errors.usage(("'%s' is not a full component id (expected OWNER.SCOPE/NAME, e.g. my-org.ui/ui/button)"):format(arg))
  end
  local root = require("bbit.workspace").find_root()
  local ws = root and require("bbit.workspace").open(root) or nil
  local url = remote.server_for(scope, ws) or remote.no_server_error(scope)
  local client = remote.client(url)
  return scope, name, version, client:component(scope, name), client
end

--- The history of a remote component, newest first, like `history`.
function M.remote_history(client, scope, info)
  local fetch = require("bbit.fetch")
  local store = M.object_store()
  local ids = {}
  for _, v in ipairs(info.versions) do
    ids[#ids + 1] = v.id
  end
  fetch.objects(client, scope, store, ids)
  local out = {}
  for i = #info.versions, 1, -1 do
    local v = info.versions[i]
    out[#out + 1] = { version = v.version, id = v.id, exported = true,
      object = require("bbit.json").decode(store:get(v.id), { name = "version object " .. v.id }) }
  end
  return out
end

return M
