--- The object store (SPEC §2.3): content-addressed, immutable objects.
---
--- An object's id is the lowercase hex SHA-256 of its bytes (for a file, exactly
--- what `sha256sum FILE` prints). Each object is one zstd frame, either loose in
--- `<dir>/objects/<2 hex>/<62 hex>` or in a pack, `objects/pack/pack-<name>.{pack,idx}`
--- (many objects in two files: see `begin_pack`). Writes are atomic (temp file under
--- `objects/tmp/`, then rename; an existing object is never rewritten) and every read
--- verifies the hash: a corrupt or truncated object is reported with its path and its
--- bytes are never returned.
---
---   local store = require("bbit.store")
---   local s <close> = store.open(".bit", { create = true })
---   local id = s:put("hello")
---   assert(s:get(id) == "hello")
---
--- Failures raise (`errors.fail`) with messages such as
--- `object store: /w/.bit/objects/ab/cd...: corrupt object (content hash is X, expected Y)`;
--- the `try_*` variants return `nil, err` instead.
local core = require("bbit.core.store")
local errors = require("bbit.errors")

local M = {}

---@class bbit.Store
---@field dir string the directory the store was opened at
---@field private _handle userdata
---@field private _packing boolean
local Store = {}
Store.__index = Store

--- Is `s` an object id (exactly 64 lowercase hex digits)?
---@param s any
---@return boolean
function M.is_id(s)
  return core.is_id(s)
end

--- Opens the store at `dir`, or returns `nil, err`.
---@param dir string the store directory (e.g. the local scope `.bit`)
---@param opts? {create?: boolean, fsync?: boolean} `create`: make `dir`, `objects/` and
--- `objects/tmp/` when missing (default false: `dir/objects` must exist); `fsync`: sync each
--- new object and its directory before it counts as stored (default false: a process crash
--- cannot tear a renamed file, and the refs that make objects reachable are fsynced by their
--- writers)
---@return bbit.Store|nil store
---@return string? err
function M.try_open(dir, opts)
  local handle, err = core.open(dir, opts)
  if not handle then
    return nil, err
  end
  return setmetatable({ dir = handle:dir(), _handle = handle }, Store)
end

--- Opens the store at `dir`; raises a failure when it is not a store (or cannot be created).
--- Close it with `s:close()` or `local s <close> = store.open(...)`.
---@param dir string the store directory
---@param opts? {create?: boolean, fsync?: boolean} see `try_open`
---@return bbit.Store
function M.open(dir, opts)
  return errors.check(M.try_open(dir, opts))
end

--- Closes the store (idempotent); also run by `<close>` and the garbage collector.
function Store:close()
  self._handle:close()
end

Store.__close = Store.close

--- Stores `data`; returns its id. Storing the same bytes again returns the same id and
--- leaves the existing object untouched.
---@param data string the object's bytes
---@return string id
function Store:put(data)
  return (errors.check(self._handle:put(data)))
end

--- Stores the contents of the file at `path`, streamed (any size, constant memory).
---@param path string a regular file
---@return string id the file's SHA-256 (what `sha256sum` prints)
---@return integer size the file's size in bytes
function Store:put_file(path)
  local id, size = errors.check(self._handle:put_file(path))
  return id, size
end

--- Like `put_file`, but returns `nil, err` (e.g. the file vanished).
---@param path string
---@return string? id
---@return integer|string size_or_err
function Store:try_put_file(path)
  return self._handle:put_file(path)
end

--- Stores an object file in its on-disk (compressed) form, e.g. one fetched from a server;
--- the bytes are stored as they are after their content was hashed and checked.
--- Raises, storing nothing, when the file is not one zstd frame, when its content exceeds
--- `max_size`, or when it does not hash to `expected_id`
--- (`hash mismatch: received bytes hash to X, expected Y`).
---@param path string the compressed object file
---@param expected_id? string the id the content must hash to
---@param max_size? integer the largest accepted uncompressed size in bytes (default: no limit)
---@return string id
function Store:put_raw_file(path, expected_id, max_size)
  return (errors.check(self._handle:put_raw_file(path, expected_id, max_size)))
end

--- Does the object exist? (Does not read it: see `verify`.) Raises on an invalid id.
---@param id string an object id
---@return boolean
function Store:has(id)
  return (errors.check(self._handle:has(id)))
end

--- The path the object has, or would have, as a loose (compressed) file, whether it exists
--- or not (a packed object has none); raises on an invalid id. Readers use `get`/`get_file`;
--- `write_pack` sends objects as they are stored.
---@param id string an object id
---@return string path
function Store:path(id)
  return (errors.check(self._handle:path(id)))
end

--- The object's bytes, or `nil, err` when it is missing, corrupt, truncated, larger than
--- `max_size`, or `id` is not an id.
---@param id string an object id
---@param max_size? integer the largest accepted size in bytes (default: no limit)
---@return string|nil data
---@return string? err
function Store:try_get(id, max_size)
  return self._handle:get(id, max_size)
end

--- The object's bytes, verified against `id`; raises when it is missing, corrupt,
--- truncated or larger than `max_size`.
---@param id string an object id
---@param max_size? integer the largest accepted size in bytes (default: no limit)
---@return string data
function Store:get(id, max_size)
  return (errors.check(self._handle:get(id, max_size)))
end

--- Writes the object to `dest` (replacing it) with permissions `mode`, or returns
--- `nil, err`. Atomic: the bytes go to a temp file beside `dest`, renamed only after the
--- hash matched, so on failure `dest` is untouched (absent if it was absent).
---@param id string an object id
---@param dest string the destination file; its directory must exist
---@param mode? integer permission bits, applied as given (default 420, octal 644: Lua has no
--- octal literals, write `tonumber("755", 8)`)
---@return true|nil ok
---@return string? err
function Store:try_get_file(id, dest, mode)
  return self._handle:get_file(id, dest, mode)
end

--- Like `try_get_file`, raising on failure.
---@param id string an object id
---@param dest string the destination file; its directory must exist
---@param mode? integer permission bits (default 420, octal 644)
function Store:get_file(id, dest, mode)
  errors.check(self._handle:get_file(id, dest, mode))
end

--- Reads the whole object and checks its hash; returns its size, or `nil, err`.
---@param id string an object id
---@return integer|nil size the uncompressed size in bytes
---@return string? err
function Store:try_verify(id)
  local ok, size_or_err = self._handle:verify(id)
  if not ok then
    return nil, size_or_err
  end
  return size_or_err
end

--- Reads the whole object and checks its hash; raises when it is missing, corrupt or
--- truncated.
---@param id string an object id
---@return integer size the uncompressed size in bytes
function Store:verify(id)
  return (errors.check(self:try_verify(id)))
end

--- The size in bytes of the object as stored (compressed); raises when it is missing.
---@param id string an object id
---@return integer bytes
function Store:size_on_disk(id)
  return (errors.check(self._handle:size_on_disk(id)))
end

--- Starts a pack: every later write of this store goes into one new pack file instead of
--- a file per object, until `commit_pack` or `abort_pack` (closing the store aborts it).
--- The objects are readable through this store meanwhile. For writes of many objects at
--- once (`bbit tag` uses one per run): creating thousands of small files is what such
--- writes cost. Raises when a pack is already open.
function Store:begin_pack()
  errors.check(self._handle:begin_pack())
  self._packing = true
end

--- Is a pack open (`begin_pack` without `commit_pack` or `abort_pack` yet)?
---@return boolean
function Store:packing()
  return self._packing == true
end

--- Installs the objects written since `begin_pack`: as a pack when there are at least 64
--- of them, else as loose objects (objects of 1 MiB or more are always stored loose). Packs are merged as they accumulate (a store
--- keeps at most 16: past that the 9 smallest become one). Raises, installing nothing, on
--- failure.
---@param opts? {sync?: boolean} `sync`: durable before returning (default false, as for
--- loose objects: see `open`)
---@return {objects: integer, packed: boolean, merged: integer} result new objects, whether
--- they went into a pack, and how many packs were merged into one afterwards (0: none)
function Store:commit_pack(opts)
  self._packing = false
  return (errors.check(self._handle:commit_pack(opts and opts.sync)))
end

--- Drops the objects written since `begin_pack` (no-op without one).
function Store:abort_pack()
  self._packing = false
  self._handle:abort_pack()
end

--- Writes the objects `ids` as they are stored into the file `path`, in the upload format
--- of `POST /api/v1/scopes/{scope}/objects/pack`: for each, `<id> <size>\n` then its bytes.
---@param ids string[] object ids (each must exist)
---@param path string the file to (re)write
---@return integer bytes the file's size
function Store:write_pack(ids, path)
  return (errors.check(self._handle:write_pack(ids, path)))
end

return M
