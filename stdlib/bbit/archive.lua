--- Tar archives: deterministic creation (`.tar.gz`, `.tar.zst`, `.tar`),
--- listing, and hardened extraction.
---
--- **Deterministic**: the same entries give the same bytes, wherever the files
--- live and whatever their mtimes, owners or umask: entries are sorted by name
--- (byte order), every entry gets mtime 1985-10-26T08:15:00Z (as `npm pack`),
--- uid/gid 0 and no user/group names, file modes become 0644 or 0755 (the
--- executable bit is the only one kept), directories 0755; gzip is written
--- without its timestamp at level 6, zstd at level 3 single-threaded.
--- The compressed bytes are only stable for one zlib/libzstd version: to name
--- an archive's *content*, use `content_sha256`, which hashes the entries
--- (names, types, modes, data), not the compressed bytes.
---
--- **Atomic**: `create` writes `PATH.tmp-XXXXXX` next to PATH and renames it
--- into place when complete; a failed create leaves no archive and no temp file.
---
--- **Streaming**: file contents are copied in 64 KiB chunks, never read whole.
---
--- **Two writers, one result**: `.tar.gz` and `.tar` archives whose names are
--- printable ASCII of at most 100 bytes (what a package usually holds) are
--- written by bbit itself (`runtime/core/tarball_native.c`), byte for byte
--- what libarchive writes for them (the tests compare the two); any other
--- name, and every `.tar.zst`, is written by libarchive. Packaging a
--- component then does not load libarchive and its libraries (libxml2,
--- ICU: ~6 ms of dynamic linking).
---
--- **Hardened extraction**: only regular files and directories are accepted.
--- Absolute names, names with a `..` component, symlinks, hard links, devices,
--- fifos and sockets are refused with an error naming the archive and the entry.
--- Names are checked by bbit and libarchive's SECURE_NODOTDOT, SECURE_SYMLINKS
--- and SECURE_NOABSOLUTEPATHS flags are set as well. Everything is written into
--- a fresh staging directory inside DEST (`DEST/.bbit-extract-XXXXXX`), which is
--- moved into DEST only once the whole archive extracted: on any refusal,
--- corruption or limit, DEST is left exactly as it was. Existing files in DEST
--- are never overwritten (an archive entry whose top-level name exists in DEST
--- is refused), and an archive naming one file twice is refused. DEST is
--- created when missing (its parent must exist) and removed again when the
--- extraction fails. Sizes and entry counts are bounded (archive bombs). A
--- killed process may leave a `DEST/.bbit-extract-*` directory behind.
---
---   local archive = require("bbit.archive")
---   archive.create("dist/button.tgz", { "index.js", "lib/util.js",
---     { name = "LICENSE", path = "../LICENSE" },
---     { name = "package.json", data = json_text } }, { root = "components/button" })
---   for _, e in ipairs(archive.list("dist/button.tgz")) do print(e.name, e.size) end
---   archive.extract("dist/button.tgz", "out/button")
local core = require("bbit.core.archive")
local hash = require("bbit.core.hash")
local errors = require("bbit.errors")

local M = {}

--- Default extraction limits (override per call with `opts`).
M.MAX_BYTES = 8 * 1024 * 1024 * 1024
M.MAX_ENTRIES = 100000

--- The fixed mtime of every entry bbit writes (seconds since the epoch).
M.MTIME = core.mtime

local FORMATS = { ["tar.gz"] = true, ["tar.zst"] = true, ["tar"] = true }

---@class bbit.archive.Entry
---@field name string the name inside the archive: relative, `/`-separated, no `.`/`..`/empty components
---@field path? string the file on disk to copy (relative to `opts.root` when that is given and `path` is relative)
---@field data? string the content, instead of `path` (e.g. a generated LICENSE or package.json)
---@field mode? integer for `data`: 0755 when any execute bit is set, else 0644 (default 0644)
---@field dir? boolean an (empty) directory entry instead of a file

---@class bbit.archive.CreateOptions
---@field format? "tar.gz"|"tar.zst"|"tar" default: from PATH's extension (`.tar.zst`/`.tzst` → tar.zst, `.tar` → tar), else tar.gz
---@field root? string directory that string entries and relative `path`s are relative to
---@field fsync? boolean flush the archive to disk before the rename (default true; false for scratch archives)

---@class bbit.archive.Listing
---@field name string
---@field size integer bytes of data (0 for directories and links)
---@field type "file"|"dir"|"symlink"|"hardlink"|"fifo"|"char"|"block"|"socket"|"unknown"
---@field mode integer permission bits (e.g. 420 = 0644)
---@field link? string the target of a symlink or hard link

---@class bbit.archive.ExtractOptions
---@field max_bytes? integer refuse archives whose files total more bytes (default `M.MAX_BYTES`, 8 GiB)
---@field max_entries? integer refuse archives with more entries (default `M.MAX_ENTRIES`, 100000)

-- Byte-order comparison, independent of the locale's collation.
local function byte_less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

--- Starts loading libarchive on another thread (it is loaded on first use):
--- a command about to list or extract archives, or to write `.tar.zst` ones,
--- can call this first, so the load overlaps its other work.
function M.prefetch()
  core.prefetch()
end

--- The order `create` writes entries in: bytewise by name (true when `a`
--- comes before `b`), whatever the locale.
---@param a string
---@param b string
---@return boolean
function M.name_less(a, b)
  return byte_less(a, b)
end

-- Why `name` is not a valid entry name, or nil.
local function bad_name(name)
  if type(name) ~= "string" or name == "" then
    return "a name must be a non-empty string"
  end
  if name:find("\0", 1, true) then
    return "contains a NUL byte"
  end
  if not utf8.len(name) then
    return "not valid UTF-8"
  end
  if name:sub(1, 1) == "/" then
    return "absolute name"
  end
  for part in (name .. "/"):gmatch("([^/]*)/") do
    if part == "" then
      return "empty path component (// or a trailing /)"
    elseif part == "." or part == ".." then
      return "'" .. part .. "' component"
    end
  end
  return nil
end

local function join(root, path)
  if root and path:sub(1, 1) ~= "/" then
    return root .. "/" .. path
  end
  return path
end

-- The entries as a sorted list of {name, path|data|dir, mode}; nil, err when invalid.
local function normalize(entries, root)
  if type(entries) ~= "table" then
    error("archive.create: entries must be a list", 3)
  end
  local list, seen = {}, {}
  for i, e in ipairs(entries) do
    if type(e) == "string" then
      if not root then
        error(("archive.create: entry %d is a bare name but opts.root is not set"):format(i), 3)
      end
      e = { name = e, path = e }
    elseif type(e) ~= "table" then
      error(("archive.create: entry %d must be a name or a table"):format(i), 3)
    end
    local why = bad_name(e.name)
    if why then
      return nil, ("entry %q: invalid name: %s"):format(tostring(e.name), why)
    end
    if seen[e.name] then
      return nil, ("entry %q: listed twice"):format(e.name)
    end
    seen[e.name] = true
    local kinds = (e.path and 1 or 0) + (e.data and 1 or 0) + (e.dir and 1 or 0)
    if kinds ~= 1 then
      error(("archive.create: entry %q needs exactly one of path, data, dir"):format(e.name), 3)
    end
    list[#list + 1] = {
      name = e.name,
      path = e.path and join(root, e.path),
      data = e.data,
      mode = e.mode,
      dir = e.dir,
    }
  end
  table.sort(list, function(a, b)
    return byte_less(a.name, b.name)
  end)
  return list
end

local function format_of(path, opts)
  local format = opts.format
  if format == nil then
    if path:match("%.tar%.zst$") or path:match("%.tzst$") then
      format = "tar.zst"
    elseif path:match("%.tar$") then
      format = "tar"
    else
      format = "tar.gz"
    end
  end
  if not FORMATS[format] then
    error(("archive.create: unknown format %q (expected tar.gz, tar.zst or tar)"):format(tostring(format)), 3)
  end
  return format
end

-- "archive.add_file: x: reason" -> "x: reason"
local function strip(err)
  return (tostring(err):gsub("^archive%.[%w_]+: ", ""))
end

-- Writes the sorted `list`; `engine` "libarchive" forces libarchive. The
-- third result is true when an entry needs libarchive (see core.writer).
local function write(path, format, list, opts, engine)
  local w <close>, werr = core.writer(path, format, engine)
  if not w then
    return nil, "archive.create: " .. strip(werr)
  end
  for _, e in ipairs(list) do
    local ok, aerr, unsupported
    if e.dir then
      ok, aerr, unsupported = w:add_dir(e.name)
    elseif e.data then
      ok, aerr, unsupported = w:add_data(e.name, e.data, e.mode)
    else
      ok, aerr, unsupported = w:add_file(e.name, e.path)
    end
    if not ok then
      return nil, ("archive.create: %s: entry %q: %s"):format(path, e.name, strip(aerr)), unsupported ~= nil
    end
  end
  local ok, ferr = w:finish(opts.fsync ~= false)
  if not ok then
    return nil, "archive.create: " .. strip(ferr)
  end
  return { path = path, format = format, entries = #list }
end

local function create(path, entries, opts)
  opts = opts or {}
  local format = format_of(path, opts)
  local list, err = normalize(entries, opts.root)
  if not list then
    return nil, ("archive.create: %s: %s"):format(path, err)
  end
  local info, werr, unsupported = write(path, format, list, opts)
  if unsupported then -- a name or size only libarchive writes (the same bytes otherwise)
    return write(path, format, list, opts, "libarchive")
  end
  return info, werr
end

--- Creates a deterministic archive at `path` from `entries`, atomically.
--- Entries are given as names relative to `opts.root` (`"lib/a.js"`) or as
--- tables (`bbit.archive.Entry`); they are sorted by name before writing.
--- Raises a failure naming the archive and the entry (missing file, invalid or
--- duplicate name, a directory given as a file); no archive or temp file is left.
--- `opts`: `format` ("tar.gz", "tar.zst", "tar"; default from the extension),
--- `root` (what relative entries are relative to), `fsync` (default true).
---@param path string the archive to write (replaced atomically if it exists)
---@param entries (string|bbit.archive.Entry)[]
---@param opts? bbit.archive.CreateOptions
---@return {path: string, format: string, entries: integer} info
function M.create(path, entries, opts)
  return (errors.check(create(path, entries, opts)))
end

--- Like `create`, but returns `nil, err` instead of raising on a failure.
---@param path string
---@param entries (string|bbit.archive.Entry)[]
---@param opts? bbit.archive.CreateOptions
---@return {path: string, format: string, entries: integer}? info
---@return string? err
function M.try_create(path, entries, opts)
  return create(path, entries, opts)
end

local function list(path)
  local r <close>, err = core.reader(path)
  if not r then
    return nil, "archive.list: " .. strip(err)
  end
  local out = {}
  while true do
    local e, nerr = r:next()
    if not e then
      if nerr then
        return nil, "archive.list: " .. strip(nerr)
      end
      return out
    end
    out[#out + 1] = e
  end
end

--- The entries of an archive, in archive order (any tar: plain, gz, zst, xz,
--- bz2). Hostile entries are listed as they are (nothing is written). Raises a
--- failure naming the archive when it is missing, not a tar, or corrupt.
---@param path string
---@return bbit.archive.Listing[]
function M.list(path)
  return (errors.check(list(path)))
end

--- Like `list`, but returns `nil, err` instead of raising.
---@param path string
---@return bbit.archive.Listing[]? entries
---@return string? err
function M.try_list(path)
  return list(path)
end

local function extract(path, dest, opts)
  opts = opts or {}
  local info, err = core.extract(path, dest, opts.max_bytes or M.MAX_BYTES, opts.max_entries or M.MAX_ENTRIES)
  if not info then
    return nil, err
  end
  return info
end

--- Extracts an archive into `dest` (created when missing; its parent must
--- exist). All or nothing: see the module notes. Extracted files get mode
--- 0644 or 0755 (minus the umask), directories 0755; times are not restored. Raises a failure such as
--- `archive.extract: PATH: entry "../evil": refused: path escapes the target (..)`.
---@param path string the archive
---@param dest string the target directory
---@param opts? bbit.archive.ExtractOptions
---@return {entries: integer, bytes: integer} info what was written
function M.extract(path, dest, opts)
  return (errors.check(extract(path, dest, opts)))
end

--- Like `extract`, but returns `nil, err` instead of raising.
---@param path string
---@param dest string
---@param opts? bbit.archive.ExtractOptions
---@return {entries: integer, bytes: integer}? info
---@return string? err
function M.try_extract(path, dest, opts)
  return extract(path, dest, opts)
end

local function content_sha256(path)
  local r <close>, err = core.reader(path)
  if not r then
    return nil, "archive.content_sha256: " .. strip(err)
  end
  local h <close> = hash.sha256_new()
  while true do
    local e, nerr = r:next()
    if not e then
      if nerr then
        return nil, "archive.content_sha256: " .. strip(nerr)
      end
      return h:hexdigest()
    end
    h:update(("%s\0%s\0%o\0%d\0%s\0"):format(e.name, e.type, e.mode, e.size, e.link or ""))
    while true do
      local data, rerr = r:read()
      if not data then
        if rerr then
          return nil, "archive.content_sha256: " .. strip(rerr)
        end
        break
      end
      h:update(data)
    end
  end
end

--- SHA-256 of an archive's content, independent of its compression: over each
--- entry's name, type, mode, size, link target and data, in archive order. A
--- `.tar.gz` and a `.tar.zst` of the same entries give the same value.
---@param path string
---@return string hex
function M.content_sha256(path)
  return (errors.check(content_sha256(path)))
end

---@class bbit.archive.Reader
--- A handle reading an archive entry by entry (`local r <close> = archive.reader(p)`).
--- After `close` any call raises "attempt to use a closed archive reader".
---@field next fun(self: bbit.archive.Reader): bbit.archive.Listing?, string? the next entry; nil at the end; nil, err when corrupt
---@field read fun(self: bbit.archive.Reader, max?: integer): string?, string? the current entry's next bytes (at most `max`, default 64 KiB, capped at 1 MiB); nil at its end; nil, err when corrupt
---@field close fun(self: bbit.archive.Reader) idempotent; also on `<close>` and garbage collection

--- Opens an archive for reading entry by entry (any tar: plain, gz, zst, xz,
--- bz2). Raises a failure naming the path when it cannot be opened.
---@param path string
---@return bbit.archive.Reader
function M.reader(path)
  local r, err = core.reader(path)
  if not r then
    errors.fail("archive.reader: " .. strip(err))
  end
  return r
end

return M
