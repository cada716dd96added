--- SHA-256 hashing: of strings, of files (streamed in bounded memory, so a
--- multi-GiB file costs no more memory than a small one), and incrementally.
--- Digests are lowercase hex unless a function says it returns raw bytes.
---
---   local hash = require("bbit.hash")
---   hash.sha256("abc")              --> "ba7816bf..."
---   hash.sha256_file("dist/a.tgz")  --> hex, size in bytes
---   local h <close> = hash.hasher()
---   h:update("a"):update("bc")
---   h:hexdigest()                   --> same as hash.sha256("abc")
local core = require("bbit.core.hash")
local errors = require("bbit.errors")

local M = {}

---@class bbit.hash.Hasher
--- An incremental SHA-256 (a handle: `local h <close> = hash.hasher()`).
--- `hexdigest`/`digest` finish it; calling `update`, `update_file`, `hexdigest`
--- or `digest` afterwards raises "the hasher is finished"; after `close`
--- any call raises "attempt to use a closed hasher".
---@field update fun(self: bbit.hash.Hasher, data: string): bbit.hash.Hasher adds bytes; returns the hasher (chainable)
---@field update_file fun(self: bbit.hash.Hasher, path: string): integer?, string? adds a file's content streamed; its size, or nil and "hash.update_file: PATH: reason"
---@field hexdigest fun(self: bbit.hash.Hasher): string finishes; 64 lowercase hex characters
---@field digest fun(self: bbit.hash.Hasher): string finishes; the 32 raw bytes
---@field close fun(self: bbit.hash.Hasher) frees it (idempotent; also on `<close>` and garbage collection)

--- SHA-256 of a string.
---@param data string any bytes
---@return string hex 64 lowercase hex characters
function M.sha256(data)
  return (errors.check(core.sha256(data)))
end

--- SHA-256 of a string, as the 32 raw digest bytes.
---@param data string any bytes
---@return string bytes 32 bytes
function M.sha256_bytes(data)
  return (errors.check(core.sha256_raw(data)))
end

--- SHA-256 of a file's content, read in fixed-size chunks (bounded memory).
--- Raises a failure naming the path when it cannot be read
--- ("hash.sha256_file: PATH: No such file or directory").
---@param path string a regular file
---@return string hex 64 lowercase hex characters
---@return integer size the number of bytes hashed
function M.sha256_file(path)
  local hex, size = errors.check(core.sha256_file(path))
  return hex, size
end

--- Like `sha256_file`, but returns `nil, err` instead of raising.
---@param path string a regular file
---@return string? hex 64 lowercase hex characters, or nil
---@return integer|string size the number of bytes hashed, or the error message
function M.try_sha256_file(path)
  local hex, size_or_err = core.sha256_file(path)
  return hex, size_or_err
end

--- A new incremental hasher.
---@return bbit.hash.Hasher
function M.hasher()
  return core.sha256_new()
end

--- Lowercase hex of raw bytes (e.g. of `hasher():digest()`).
---@param bytes string
---@return string hex two characters per byte
function M.to_hex(bytes)
  return (bytes:gsub(".", function(c)
    return ("%02x"):format(c:byte())
  end))
end

--- `n` random bytes from the kernel (/dev/urandom), as hex: for ids and
--- nonces (export transaction ids, the sign-in `state`).
---@param n integer
---@return string hex 2n characters
function M.random_hex(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local raw = f:read(n)
  f:close()
  return M.to_hex(raw)
end

return M
