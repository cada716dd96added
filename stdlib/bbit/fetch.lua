--- Fetching objects from a remote scope into a local store: only the objects
--- the store lacks, each verified by its hash before it counts as stored.
local fs = require("bbit.fs")
local jobs = require("bbit.jobs")
local json = require("bbit.json")
local log = require("bbit.log")

local M = {}

--- Fetches the objects `ids` of `scope` (through `client`) that `store` lacks,
--- in parallel. A download lands in a temp file and enters the store only
--- when its content hashes to its id.
---@param client table a bbit.remote client
---@param scope string
---@param store table a bbit.store
---@param ids string[]
---@param opts? {jobs?: integer}
---@return integer fetched how many were downloaded
function M.objects(client, scope, store, ids, opts)
  local wanted, seen = {}, {}
  for _, id in ipairs(ids) do
    if not seen[id] and not store:has(id) then
      seen[id] = true
      wanted[#wanted + 1] = id
    end
  end
  if #wanted == 0 then
    return 0
  end
  local tmp = fs.tempdir(store.dir .. "/tmp-fetch-")
  local progress = log.progress(#wanted, "fetch")
  local done = 0
  local list = {}
  for i, id in ipairs(wanted) do
    list[i] = function()
      local file = tmp .. "/" .. id
      client:fetch_object(scope, id, file)
      store:put_raw_file(file, id)
      fs.remove(file)
      done = done + 1
      progress:update(done, id:sub(1, 12))
    end
  end
  local ok, err = pcall(jobs.run, list, { jobs = opts and opts.jobs or 8 })
  progress:done()
  fs.remove(tmp, { recursive = true })
  if not ok then
    error(err, 0)
  end
  return #wanted
end

--- Fetches (if needed) and decodes the version object `id`.
function M.version(client, scope, store, id)
  M.objects(client, scope, store, { id })
  return json.decode(store:get(id), { name = "version object " .. id })
end

return M
