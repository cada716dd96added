--- Files and directories: stat, whole-file read, atomic write, tree walks with
--- ignore patterns, globs, mkdir -p, remove, rename, copy, links, temp dirs and
--- advisory lock files.
---
---   local fs = require("bbit.fs")
---   fs.write("out/a.txt", "hello\n")                 -- atomic; creates nothing else
---   for _, p in ipairs(fs.walk("src", { ignore = { "node_modules", "*.log" } })) do ... end
---   fs.glob("components/**/*.js")                    --> sorted paths
---   local lock <close> = fs.lock(".bit/lock")        -- released at scope end
---
--- Failures raise with the path and the reason
--- ("fs.read: a/b.txt: No such file or directory"); the `try_*` variants return
--- `nil, err` instead. Misuse (a wrong argument type) raises in both.
---
--- Modes are integers (Lua has no octal literals: write `tonumber("644", 8)` or
--- `0x1a4`) or octal strings ("644", "0755"). Symlinks are never followed by
--- `walk`, `glob` or `remove`.
local core = require("bbit.core.fs")
local errors = require("bbit.errors")

local M = {}

local ENOENT, ENOTDIR = core.errno.ENOENT, core.errno.ENOTDIR

---@class bbit.fs.Entry
--- One entry of `walk(root, {stat = true})`.
---@field path string relative to the walked root, '/'-separated
---@field type "file"|"dir"|"link"
---@field size integer bytes (of the link itself for a symlink)
---@field mode integer permission bits
---@field mtime_ns integer modification time, nanoseconds since the epoch
---@field ino integer inode number

---@class bbit.fs.Lock
--- An advisory lock (a handle: `local l <close> = fs.lock(path)`). Released by
--- `release`, at the end of a `<close>` scope, on garbage collection, and by
--- the kernel when the process exits (even by SIGKILL).
---@field release fun(self: bbit.fs.Lock) releases it (idempotent)
---@field path fun(self: bbit.fs.Lock): string the lock file; raises "attempt to use a closed lock" after release

-- stat/lstat raw result: info, or nil for "does not exist", or raise.
local function stat_or_nil(info, err, code)
  if info then
    return info
  end
  if code == ENOENT or code == ENOTDIR then
    return nil
  end
  errors.fail(err)
end

--- Information about `path`, following symlinks: `type`, `size` in bytes,
--- `mode` the permission bits (420 == 0o644), `mtime_ns` the modification
--- time in nanoseconds since the epoch, `ino` and `dev`. nil when it does not
--- exist (also when a parent is not a directory); other failures (a symlink
--- loop, a name too long) raise "fs.stat: PATH: reason".
---@param path string
---@return {type: "file"|"dir"|"link"|"other", size: integer, mode: integer, mtime_ns: integer, ino: integer, dev: integer}? info
function M.stat(path)
  return stat_or_nil(core.stat(path))
end

--- Like `stat`, but a symlink itself is described (type "link").
---@param path string
---@return {type: "file"|"dir"|"link"|"other", size: integer, mode: integer, mtime_ns: integer, ino: integer, dev: integer}? info
function M.lstat(path)
  return stat_or_nil(core.lstat(path))
end

--- Does `path` exist? A dangling symlink exists (the link is there).
--- Never raises for a missing path; other failures raise like `lstat`.
---@param path string
---@return boolean
function M.exists(path)
  return M.lstat(path) ~= nil
end

--- Is `path` a directory (following symlinks)?
---@param path string
---@return boolean
function M.is_dir(path)
  local info = M.stat(path)
  return info ~= nil and info.type == "dir"
end

--- Is `path` a regular file (following symlinks)?
---@param path string
---@return boolean
function M.is_file(path)
  local info = M.stat(path)
  return info ~= nil and info.type == "file"
end

--- The whole content of a file. Raises "fs.read: PATH: reason" (missing file,
--- a directory, ...).
---@param path string
---@return string data
function M.read(path)
  return (errors.check(core.read(path)))
end

--- Like `read`, but returns `nil, err` instead of raising.
---@param path string
---@return string? data
---@return string? err "fs.read: PATH: reason"
function M.try_read(path)
  local data, err = core.read(path)
  return data, err
end

--- Writes `data` to `path` atomically: a unique temp file in the same
--- directory (O_EXCL), all bytes written, fsync, rename over `path`, fsync of
--- the directory. Readers see the old or the new content, never a mix; on any
--- failure the temp file is removed and the old file is untouched. A symlink
--- at `path` is replaced by a regular file. The parent directory must exist.
--- Options: `mode` the permission bits (default: the existing file's, else
--- 0o644; set exactly, the umask does not apply); `fsync = false` skips the
--- flushes (faster, not durable across a crash). Raises "fs.write: PATH: reason".
---@param path string
---@param data string
---@param opts? {mode?: integer|string, fsync?: boolean}
function M.write(path, data, opts)
  errors.check(M.try_write(path, data, opts))
end

--- Like `write`, but returns `nil, err` instead of raising.
---@param path string
---@param data string
---@param opts? {mode?: integer|string, fsync?: boolean}
---@return true? ok
---@return string? err "fs.write: PATH: reason"
function M.try_write(path, data, opts)
  opts = opts or {}
  local ok, err = core.write(path, data, opts.mode, opts.fsync ~= false)
  return ok, err
end

--- Flushes a file, or a directory (the entries created, renamed or removed
--- in it), to disk. Raises "fs.sync: PATH: reason".
---@param path string
function M.sync(path)
  errors.check(core.sync(path))
end

--- Every regular file and symlink below `root` (symlinks are listed, never
--- followed), as paths relative to `root` ('/'-separated), sorted bytewise.
--- Raises "fs.walk: PATH: reason" when `root` or a directory below it cannot
--- be read. Options:
--- - `ignore`: glob patterns (syntax of `match`), .gitignore style: without
---   '/' a pattern matches any one path segment (`node_modules`, `*.log`);
---   with '/' the whole relative path (`docs/*.md`); a trailing '/' matches
---   directories only (`build/`); a leading '/' anchors at the root (`/dist`).
---   An ignored directory is not descended into.
--- - `include_dirs`: list directories too (default false).
--- - `stat`: return entries `{path, type = "file"|"dir"|"link", size, mode,
---   mtime_ns, ino}` instead of paths (one lstat per entry; a stat cache).
--- - `max_depth`: only this many levels (1: the root's own entries).
---@param root string
---@param opts? {ignore?: string[], include_dirs?: boolean, stat?: boolean, max_depth?: integer}
---@return string[]|bbit.fs.Entry[] entries
function M.walk(root, opts)
  return (errors.check(core.walk(root, opts)))
end

--- Like `walk`, but returns `nil, err` instead of raising.
---@param root string
---@param opts? {ignore?: string[], include_dirs?: boolean, stat?: boolean, max_depth?: integer}
---@return (string[]|bbit.fs.Entry[])? entries
---@return string? err "fs.walk: PATH: reason"
function M.try_walk(root, opts)
  local list, err = core.walk(root, opts)
  return list, err
end

--- A digest of what `walk(root, opts)` with `stat = true` would list (every
--- entry's path, type, size, mtime, inode and mode), computed without building
--- the list: equal digests mean nothing in the folder changed, as far as stat
--- can tell. `unstable` is true when an entry is a symlink or changed at or
--- after `recent_ns` (a later change could keep the same mtime, so a cache
--- should not trust this digest). Raises "fs.walk_digest: PATH: reason".
---@param root string
---@param opts? table the `walk` options (`ignore`, `max_depth`)
---@param recent_ns? integer mtimes at or after this (ns since the epoch) count as unstable
---@return string digest 64 hex characters
---@return integer count the number of entries
---@return boolean unstable
function M.walk_digest(root, opts, recent_ns)
  local digest, count, unstable = core.walk_digest(root, opts, recent_ns)
  if not digest then
    errors.fail(count)
  end
  return digest, count, unstable
end

--- `walk_digest` for many folders at once, on worker threads (one per core
--- but the caller's; `opts.threads` sets a lower maximum, 0 for none),
--- returning at once: the caller goes on while the folders are read.
--- `job:get(i)` returns the digest of `roots[i]` (digesting folders not yet
--- started itself rather than sleeping until it is done), or false when it
--- is not a plain folder (missing, a symlink, a file) or could not be read
--- (call `walk_digest` on it to get the error), and whether that digest
--- should not be trusted (`unstable`, see `walk_digest`). Roots are done in
--- order. `job:close()` (or `<close>`) waits for the threads and frees it.
---
--- `opts.dircache` names a cache file of folder listings: a folder whose
--- inode, mtime, ctime and size are those recorded is not read again (its
--- entries are still stat'ed), and the file is rewritten at `close` when a
--- walk of every root changed it. Folders changed at or after `recent_ns`
--- (required with it) are not recorded. Used only when every root is an
--- absolute path, and not on network or FUSE filesystems (NFS, SMB, 9P,
--- Ceph, GPFS, FUSE), whose folder stats may come from a client cache.
---
---   local job <close> = fs.walk_digests(roots, { ignore = { "node_modules" } })
---   for i = 1, #roots do local digest, unstable = job:get(i) ... end
---@param roots string[] absolute folder paths
---@param opts? table the `walk` options (`ignore`, `max_depth`), `threads`, `dircache`
---@param recent_ns? integer mtimes at or after this (ns since the epoch) count as unstable
---@return {get: fun(self, i: integer): (string|false), boolean, close: fun(self)} job
function M.walk_digests(roots, opts, recent_ns)
  return core.walk_digests(roots, opts, recent_ns)
end

--- Does the whole of `path` match glob `pattern`? Pure string matching, no
--- filesystem access. Syntax: `*` any characters within one segment (also a
--- leading '.'), `?` one character, `[abc]` `[a-z]` `[!a-z]` a class, `\c` a
--- literal c, `**` as a whole segment zero or more segments
--- (`components/**/legacy` matches `components/legacy` and `components/a/b/legacy`).
---@param pattern string
---@param path string
---@return boolean
function M.match(pattern, path)
  return core.glob_match(pattern, path)
end

--- Does .gitignore-style `pattern` (see the `ignore` option of `walk`) match `path`?
---@param pattern string
---@param path string a relative path
---@param is_dir? boolean whether `path` is a directory (for patterns ending in '/')
---@return boolean
function M.ignored(pattern, path, is_dir)
  return core.ignore_match(pattern, path, is_dir)
end

local function has_magic(segment)
  return segment:find("[%*%?%[\\]") ~= nil
end

--- The existing paths (files, directories, symlinks) matching `pattern`,
--- sorted. A relative pattern is resolved against `opts.cwd` (default: the
--- current directory) and gives paths relative to it; an absolute one gives
--- absolute paths. The walk starts at the pattern's literal prefix (its
--- leading segments without wildcards, which may go through a symlink); below
--- it symlinks are matched as entries but never entered. A missing directory
--- gives `{}`.
---@param pattern string see `match` for the syntax
---@param opts? {cwd?: string}
---@return string[] paths
function M.glob(pattern, opts)
  opts = opts or {}
  local cwd = opts.cwd
  local absolute = pattern:sub(1, 1) == "/"
  local segments = {}
  for seg in pattern:gmatch("[^/]+") do
    segments[#segments + 1] = seg
  end
  local prefix, i = {}, 1
  while i <= #segments and not has_magic(segments[i]) do
    prefix[#prefix + 1] = segments[i]
    i = i + 1
  end
  local prefix_path = (absolute and "/" or "") .. table.concat(prefix, "/")
  local function on_disk(p)
    if absolute or not cwd then
      return p == "" and "." or p
    end
    return p == "" and cwd or (cwd .. "/" .. p)
  end
  if i > #segments then -- no wildcard at all
    if #segments == 0 and not absolute then
      return {}
    end
    return M.lstat(on_disk(prefix_path)) and { prefix_path } or {}
  end
  local rest = table.concat(segments, "/", i)
  local depth = #segments - i + 1
  for j = i, #segments do
    if segments[j] == "**" then
      depth = nil
    end
  end
  local base = on_disk(prefix_path)
  local info = M.stat(base)
  if not info or info.type ~= "dir" then
    return {}
  end
  local list = M.walk(base, { include_dirs = true, max_depth = depth })
  local out = {}
  local function joined(rel)
    if prefix_path == "" then
      return rel
    end
    return prefix_path == "/" and ("/" .. rel) or (prefix_path .. "/" .. rel)
  end
  if prefix_path ~= "" and core.glob_match(rest, "") then
    out[1] = prefix_path
  end
  for _, rel in ipairs(list) do
    if core.glob_match(rest, rel) then
      out[#out + 1] = joined(rel)
    end
  end
  table.sort(out)
  return out
end

--- Creates directory `path` and its missing parents (like `mkdir -p`); an
--- existing directory is fine. Raises "fs.mkdir: PATH: reason" (e.g. "File
--- exists" when `path` is a file, "Not a directory" when a parent is one).
---@param path string
---@param mode? integer|string permission bits of created directories (default 0o777, less the umask)
function M.mkdir(path, mode)
  errors.check(core.mkdir(path, mode))
end

--- Like `mkdir`, but returns `nil, err` instead of raising.
---@param path string
---@param mode? integer|string
---@return true? ok
---@return string? err
function M.try_mkdir(path, mode)
  local ok, err = core.mkdir(path, mode)
  return ok, err
end

--- Removes a file, a symlink (not its target) or an empty directory; with
--- `{recursive = true}` a whole tree (symlinks inside are removed, never
--- followed; "/" is refused). A missing path is not an error (like
--- `rm -f`): the result says whether something was removed. Raises
--- "fs.remove: PATH: reason" (e.g. "Directory not empty" without `recursive`).
---@param path string
---@param opts? {recursive?: boolean}
---@return boolean removed false when `path` did not exist
function M.remove(path, opts)
  return (errors.check(core.remove(path, opts and opts.recursive)))
end

--- Like `remove`, but returns `nil, err` instead of raising.
---@param path string
---@param opts? {recursive?: boolean}
---@return boolean? removed
---@return string? err
function M.try_remove(path, opts)
  local removed, err = core.remove(path, opts and opts.recursive)
  return removed, err
end

--- Renames (moves) `from` to `to` (rename(2): atomic, same filesystem only;
--- replaces an existing file `to`). Raises "fs.rename: FROM -> TO: reason".
---@param from string
---@param to string
function M.rename(from, to)
  errors.check(core.rename(from, to))
end

--- Like `rename`, but returns `nil, err` instead of raising.
---@param from string
---@param to string
---@return true? ok
---@return string? err
function M.try_rename(from, to)
  local ok, err = core.rename(from, to)
  return ok, err
end

--- Copies regular file `from` to `to` (atomically, through a temp file beside
--- `to`), keeping the permission bits (so the executable bit). Raises
--- "fs.copy: PATH: reason" ("Is a directory" for a directory source).
---@param from string
---@param to string
function M.copy(from, to)
  errors.check(core.copy(from, to))
end

--- Like `copy`, but returns `nil, err` instead of raising.
---@param from string
---@param to string
---@return true? ok
---@return string? err
function M.try_copy(from, to)
  local ok, err = core.copy(from, to)
  return ok, err
end

--- Creates symlink `link` pointing at `target` (stored as given, not checked).
--- Raises "fs.symlink: LINK: reason".
---@param target string
---@param link string
function M.symlink(target, link)
  errors.check(core.symlink(target, link))
end

--- The target stored in symlink `path`. Raises "fs.readlink: PATH: reason"
--- ("Invalid argument" when `path` is not a symlink).
---@param path string
---@return string target
function M.readlink(path)
  return (errors.check(core.readlink(path)))
end

--- The absolute path of an existing `path`, symlinks and `..` resolved.
--- Raises "fs.realpath: PATH: reason".
---@param path string
---@return string absolute
function M.realpath(path)
  return (errors.check(core.realpath(path)))
end

--- Like `realpath`, but returns `nil, err` (e.g. for a dangling symlink).
---@param path string
---@return string? absolute
---@return string? err
function M.try_realpath(path)
  return core.realpath(path)
end

--- Sets the permission bits of `path` (following symlinks).
--- Raises "fs.chmod: PATH: reason".
---@param path string
---@param mode integer|string e.g. tonumber("755", 8) or "755"
function M.chmod(path, mode)
  errors.check(core.chmod(path, mode))
end

--- Creates a new private (0700) directory with a unique name and returns its
--- path. A `prefix` without '/' is placed in $TMPDIR (default /tmp); one with
--- '/' is used as given ("build/tmp-"). Removing it is the caller's job.
---@param prefix? string default "bbit-"
---@return string dir
function M.tempdir(prefix)
  return (errors.check(core.tempdir(prefix)))
end

--- The current directory.
---@return string
function M.cwd()
  return (errors.check(core.cwd()))
end

--- Changes the current directory. Raises "fs.chdir: PATH: reason".
---@param path string
function M.chdir(path)
  errors.check(core.chdir(path))
end

-- wait option -> seconds for the raw module (0: try once).
local function wait_seconds(opts)
  if not (opts and opts.wait) then
    return 0
  end
  return opts.timeout or math.huge
end

--- Takes an exclusive advisory lock on file `path` (created if missing; its
--- parent must exist) and writes this process's pid into it. The lock is
--- flock(2)-based: the kernel releases it when the holder exits, however it
--- dies. Two locks on one file conflict even within one process. The handle
--- has `:release()` (idempotent) and `:path()`; it is also released at the
--- end of a `<close>` scope and on garbage collection. By default a held lock
--- fails at once; `wait = true` waits for it, up to `timeout` seconds
--- (default: forever). When another holder keeps it, raises
--- "PATH is locked by pid N (another bbit running? if not, the lock is
--- released when that process exits)". Other failures raise "fs.lock: PATH: reason".
---@param path string
---@param opts? {wait?: boolean, timeout?: number}
---@return bbit.fs.Lock lock
function M.lock(path, opts)
  return (errors.check(core.lock(path, wait_seconds(opts))))
end

--- Like `lock`, but returns `nil, err, pid` instead of raising; `pid` is the
--- holder's pid when the lock is held by another (0 when unknown), else nil.
---@param path string
---@param opts? {wait?: boolean, timeout?: number}
---@return bbit.fs.Lock? lock
---@return string? err
---@return integer? pid
function M.try_lock(path, opts)
  local lock, err, code, pid = core.lock(path, wait_seconds(opts))
  if lock then
    return lock
  end
  if code == core.errno.EWOULDBLOCK then
    return nil, err, pid
  end
  return nil, err
end

return M
