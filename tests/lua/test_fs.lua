-- bbit.fs and bbit.path: good and bad input, messages naming the path, nothing left behind.
local t = require("testlib")
local fs = require("bbit.fs")
local path = require("bbit.path")

local root = t.tmpdir()
local n = 0
-- A fresh directory for one test.
local function dir()
  n = n + 1
  local d = root .. "/d" .. n
  fs.mkdir(d)
  return d
end

local function put(p, data)
  local f = assert(io.open(p, "wb"))
  f:write(data)
  f:close()
end

local function get(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function sh(cmd)
  local ok = os.execute(cmd)
  assert(ok, "command failed: " .. cmd)
end

local function octal(s)
  return tonumber(s, 8)
end

-- Names in d (not recursive), sorted, dotfiles included.
local function listing(d)
  local out = {}
  local p = io.popen("ls -A '" .. d .. "'")
  for line in p:lines() do
    out[#out + 1] = line
  end
  p:close()
  table.sort(out)
  return out
end

-- stat / lstat / exists --------------------------------------------------------

t.test("stat describes files, dirs and links", function()
  local d = dir()
  put(d .. "/f", "12345")
  sh("chmod 640 '" .. d .. "/f'")
  fs.symlink("f", d .. "/l")
  local s = fs.stat(d .. "/f")
  t.eq(s.type, "file")
  t.eq(s.size, 5)
  t.eq(s.mode, octal("640"))
  t.ok(math.type(s.mtime_ns) == "integer" and s.mtime_ns > 1600000000 * 1000000000, "mtime_ns in ns")
  t.ok(s.ino > 0 and math.type(s.dev) == "integer", "ino/dev")
  t.eq(fs.stat(d).type, "dir")
  t.eq(fs.stat(d .. "/l").type, "file")
  t.eq(fs.lstat(d .. "/l").type, "link")
  t.eq(fs.stat(d .. "/l").ino, s.ino)
end)

t.test("stat returns nil for missing paths, raises on other errors", function()
  local d = dir()
  put(d .. "/file", "x")
  t.eq(fs.stat(d .. "/missing"), nil)
  t.eq(fs.lstat(d .. "/missing"), nil)
  t.eq(fs.stat(d .. "/file/below"), nil, "ENOTDIR counts as missing")
  fs.symlink("loop2", d .. "/loop1")
  fs.symlink("loop1", d .. "/loop2")
  t.raises(function() fs.stat(d .. "/loop1") end, "fs.stat: " .. d .. "/loop1: Too many levels of symbolic links")
  t.eq(fs.lstat(d .. "/loop1").type, "link")
  t.raises(function() fs.stat(d .. "/" .. string.rep("n", 300)) end, "File name too long")
end)

t.test("exists, is_dir, is_file", function()
  local d = dir()
  put(d .. "/f", "")
  fs.symlink("nowhere", d .. "/dangling")
  t.eq(fs.exists(d .. "/f"), true)
  t.eq(fs.exists(d .. "/nope"), false)
  t.eq(fs.exists(d .. "/dangling"), true)
  t.eq(fs.is_file(d .. "/dangling"), false)
  t.eq(fs.is_file(d .. "/f"), true)
  t.eq(fs.is_file(d), false)
  t.eq(fs.is_dir(d), true)
  t.eq(fs.is_dir(d .. "/f"), false)
  t.eq(fs.is_dir(d .. "/nope"), false)
end)

-- read / write --------------------------------------------------------------------

t.test("read returns whole files, binary-safe", function()
  local d = dir()
  local big = string.rep("abc\0\255", 50000)
  put(d .. "/big", big)
  t.eq(fs.read(d .. "/big"), big)
  put(d .. "/empty", "")
  t.eq(fs.read(d .. "/empty"), "")
end)

t.test("read failures name the path", function()
  local d = dir()
  put(d .. "/file", "x")
  t.raises(function() fs.read(d .. "/missing.txt") end, "fs.read: " .. d .. "/missing.txt: No such file or directory")
  t.raises(function() fs.read(d) end, "fs.read: " .. d .. ": Is a directory")
  t.raises(function() fs.read(d .. "/file/x") end, "fs.read: " .. d .. "/file/x: Not a directory")
  local data, err = fs.try_read(d .. "/missing.txt")
  t.eq(data, nil)
  t.eq(err, "fs.read: " .. d .. "/missing.txt: No such file or directory")
  t.eq(fs.try_read(d .. "/file"), "x")
  t.raises(function() fs.read(nil) end, "bad argument #1")
end)

t.test("write creates and replaces atomically with modes", function()
  local d = dir()
  fs.write(d .. "/a.txt", "one")
  t.eq(get(d .. "/a.txt"), "one")
  t.eq(fs.stat(d .. "/a.txt").mode, octal("644"))
  fs.write(d .. "/a.txt", "two", { fsync = false })
  t.eq(get(d .. "/a.txt"), "two")
  fs.sync(d) -- a folder (its entries) or a file
  fs.sync(d .. "/a.txt")
  t.raises(function()
    fs.sync(d .. "/missing")
  end, "fs.sync: " .. d .. "/missing")
  fs.write(d .. "/secret", "s", { mode = "600" })
  t.eq(fs.stat(d .. "/secret").mode, octal("600"))
  fs.write(d .. "/run.sh", "#!/bin/sh\n", { mode = octal("755") })
  t.eq(fs.stat(d .. "/run.sh").mode, octal("755"))
  fs.write(d .. "/run.sh", "#!/bin/sh\necho\n")
  t.eq(fs.stat(d .. "/run.sh").mode, octal("755"), "keeps the existing mode")
  local bin = string.rep("\0\1\2", 100000)
  fs.write(d .. "/bin", bin)
  t.eq(get(d .. "/bin"), bin)
  t.eq(listing(d), { "a.txt", "bin", "run.sh", "secret" }, "no temp files remain")
end)

t.test("write replaces a symlink by a file, not its target", function()
  local d = dir()
  put(d .. "/target", "old")
  fs.symlink("target", d .. "/link")
  fs.write(d .. "/link", "new")
  t.eq(get(d .. "/target"), "old")
  t.eq(fs.lstat(d .. "/link").type, "file")
  t.eq(get(d .. "/link"), "new")
end)

t.test("write failures leave the old content and no temp file", function()
  local d = dir()
  put(d .. "/file", "keep")
  -- a parent that is a file: the temp file cannot be created
  t.raises(function() fs.write(d .. "/file/x", "data") end, "fs.write: " .. d .. "/file/x: Not a directory")
  t.eq(get(d .. "/file"), "keep")
  -- a target that is a directory: written, then the rename fails
  fs.mkdir(d .. "/sub/inner")
  t.raises(function() fs.write(d .. "/sub", "data") end, "fs.write: " .. d .. "/sub: Is a directory")
  t.eq(fs.is_dir(d .. "/sub/inner"), true)
  t.eq(listing(d), { "file", "sub" }, "no temp file left")
  -- a missing parent
  local ok, err = fs.try_write(d .. "/nodir/x", "data")
  t.eq(ok, nil)
  t.eq(err, "fs.write: " .. d .. "/nodir/x: No such file or directory")
  t.raises(function() fs.write(d .. "/m", "x", { mode = "9" }) end, "invalid octal mode '9'")
  t.raises(function() fs.write(d .. "/m", "x", { mode = 70000 }) end, "mode out of range")
  t.raises(function() fs.write(d .. "/m", {}) end, "bad argument #2")
  t.eq(fs.exists(d .. "/m"), false)
end)

-- copy / rename / remove / mkdir -----------------------------------------------

t.test("copy keeps content and the exec bit", function()
  local d = dir()
  put(d .. "/tool", "#!/bin/sh\necho hi\n")
  fs.chmod(d .. "/tool", "755")
  fs.copy(d .. "/tool", d .. "/tool2")
  t.eq(get(d .. "/tool2"), "#!/bin/sh\necho hi\n")
  t.eq(fs.stat(d .. "/tool2").mode, octal("755"))
  put(d .. "/plain", "p")
  fs.chmod(d .. "/plain", octal("640"))
  fs.copy(d .. "/plain", d .. "/tool2") -- replaces
  t.eq(get(d .. "/tool2"), "p")
  t.eq(fs.stat(d .. "/tool2").mode, octal("640"))
  t.eq(listing(d), { "plain", "tool", "tool2" })
end)

t.test("copy failures", function()
  local d = dir()
  put(d .. "/f", "x")
  t.raises(function() fs.copy(d .. "/missing", d .. "/g") end, "fs.copy: " .. d .. "/missing: No such file or directory")
  t.raises(function() fs.copy(d, d .. "/g") end, "fs.copy: " .. d .. ": Is a directory")
  t.raises(function() fs.copy(d .. "/f", d .. "/f/g") end, "fs.copy: " .. d .. "/f/g: Not a directory")
  local ok, err = fs.try_copy(d .. "/f", d .. "/no/g")
  t.eq(ok, nil)
  t.contains(err, "/no/g: No such file or directory")
  t.eq(listing(d), { "f" })
end)

t.test("rename moves and reports both paths", function()
  local d = dir()
  put(d .. "/a", "A")
  fs.rename(d .. "/a", d .. "/b")
  t.eq(fs.exists(d .. "/a"), false)
  t.eq(get(d .. "/b"), "A")
  t.raises(function() fs.rename(d .. "/a", d .. "/c") end,
    "fs.rename: " .. d .. "/a -> " .. d .. "/c: No such file or directory")
  local ok, err = fs.try_rename(d .. "/b", d .. "/b/x")
  t.eq(ok, nil)
  t.contains(err, "Not a directory")
end)

t.test("mkdir creates parents and accepts existing dirs", function()
  local d = dir()
  fs.mkdir(d .. "/a/b/c/")
  t.eq(fs.is_dir(d .. "/a/b/c"), true)
  fs.mkdir(d .. "/a/b") -- exists: fine
  fs.mkdir(d .. "//x//y", "700")
  t.eq(fs.stat(d .. "/x/y").mode, octal("700"))
  put(d .. "/file", "")
  t.raises(function() fs.mkdir(d .. "/file") end, "fs.mkdir: " .. d .. "/file: File exists")
  t.raises(function() fs.mkdir(d .. "/file/sub/deeper") end, "fs.mkdir: " .. d .. "/file/sub/deeper: Not a directory")
  local ok, err = fs.try_mkdir(d .. "/file/z")
  t.eq(ok, nil)
  t.contains(err, "Not a directory")
end)

t.test("remove: files, empty dirs, trees, missing", function()
  local d = dir()
  put(d .. "/f", "")
  t.eq(fs.remove(d .. "/f"), true)
  t.eq(fs.exists(d .. "/f"), false)
  t.eq(fs.remove(d .. "/f"), false, "missing is not an error")
  fs.mkdir(d .. "/tree/a/b")
  put(d .. "/tree/a/b/x", "1")
  put(d .. "/tree/.hidden", "1")
  t.raises(function() fs.remove(d .. "/tree") end, "fs.remove: " .. d .. "/tree: Directory not empty")
  t.eq(fs.remove(d .. "/tree", { recursive = true }), true)
  t.eq(fs.exists(d .. "/tree"), false)
  fs.mkdir(d .. "/empty")
  t.eq(fs.remove(d .. "/empty"), true)
  put(d .. "/file", "")
  local ok, err = fs.try_remove(d .. "/file/x")
  t.eq(ok, nil)
  t.eq(err, "fs.remove: " .. d .. "/file/x: Not a directory")
  t.raises(function() fs.remove("/", { recursive = true }) end, "fs.remove: /: Operation not permitted")
end)

t.test("remove never follows symlinks out of the tree", function()
  local d = dir()
  fs.mkdir(d .. "/outside")
  put(d .. "/outside/precious", "keep")
  fs.mkdir(d .. "/tree/sub")
  fs.symlink(d .. "/outside", d .. "/tree/sub/link-to-dir")
  fs.symlink(d .. "/outside/precious", d .. "/tree/link-to-file")
  fs.remove(d .. "/tree", { recursive = true })
  t.eq(fs.exists(d .. "/tree"), false)
  t.eq(get(d .. "/outside/precious"), "keep")
  -- a symlink to a directory given directly: the link goes, not the target
  fs.symlink(d .. "/outside", d .. "/dirlink")
  fs.remove(d .. "/dirlink", { recursive = true })
  t.eq(fs.exists(d .. "/dirlink"), false)
  t.eq(get(d .. "/outside/precious"), "keep")
end)

-- links, realpath, chmod, tempdir, cwd ------------------------------------------

t.test("symlink, readlink, realpath", function()
  local d = dir()
  put(d .. "/f", "")
  fs.symlink("f", d .. "/l")
  t.eq(fs.readlink(d .. "/l"), "f")
  t.eq(fs.realpath(d .. "/l"), fs.realpath(d) .. "/f")
  fs.mkdir(d .. "/x")
  t.eq(fs.realpath(d .. "/./x/../f"), fs.realpath(d) .. "/f")
  t.raises(function() fs.symlink("f", d .. "/l") end, "fs.symlink: " .. d .. "/l: File exists")
  t.raises(function() fs.readlink(d .. "/f") end, "fs.readlink: " .. d .. "/f: Invalid argument")
  t.raises(function() fs.realpath(d .. "/missing") end, "fs.realpath: " .. d .. "/missing: No such file or directory")
end)

t.test("chmod", function()
  local d = dir()
  put(d .. "/f", "")
  fs.chmod(d .. "/f", "751")
  t.eq(fs.stat(d .. "/f").mode, octal("751"))
  fs.chmod(d .. "/f", octal("604"))
  t.eq(fs.stat(d .. "/f").mode, octal("604"))
  t.raises(function() fs.chmod(d .. "/missing", "644") end, "fs.chmod: " .. d .. "/missing: No such file or directory")
  t.raises(function() fs.chmod(d .. "/f") end, "bad argument #2 to 'chmod' (mode expected)")
  t.raises(function() fs.chmod(d .. "/f", "rwx") end, "invalid octal mode 'rwx'")
end)

t.test("tempdir", function()
  local d = dir()
  local a = fs.tempdir(d .. "/tmp-")
  local b = fs.tempdir(d .. "/tmp-")
  t.ok(a ~= b, "unique")
  t.ok(a:find(d .. "/tmp-", 1, true) == 1, a)
  t.eq(fs.stat(a).mode, octal("700"))
  local c = fs.tempdir()
  t.ok(fs.is_dir(c) and path.basename(c):find("^bbit%-") ~= nil, c)
  fs.remove(c)
  t.raises(function() fs.tempdir(d .. "/missing/tmp-") end, "fs.tempdir: " .. d .. "/missing/tmp-XXXXXX: No such file or directory")
end)

t.test("cwd and chdir", function()
  local here = fs.cwd()
  local d = dir()
  fs.chdir(d)
  t.eq(fs.cwd(), fs.realpath(d))
  fs.chdir(here)
  t.eq(fs.cwd(), here)
  t.raises(function() fs.chdir(d .. "/nope") end, "fs.chdir: " .. d .. "/nope: No such file or directory")
end)

-- walk ------------------------------------------------------------------------------

local function tree()
  local d = dir()
  for _, p in ipairs({ "a-c", "a/b", "a/z/deep.txt", "src/main.c", "src/debug.log", ".hidden",
    "node_modules/x/index.js", "pkg/node_modules/y.js", "build/out.o", "docs/a.md", "docs/sub/b.md" }) do
    fs.mkdir(path.dirname(d .. "/" .. p))
    put(d .. "/" .. p, p)
  end
  fs.symlink("/etc", d .. "/etc-link")
  fs.mkdir(d .. "/emptydir")
  return d
end

t.test("walk lists files and links, sorted bytewise, relative", function()
  local d = tree()
  t.eq(fs.walk(d), { ".hidden", "a-c", "a/b", "a/z/deep.txt", "build/out.o", "docs/a.md", "docs/sub/b.md",
    "etc-link", "node_modules/x/index.js", "pkg/node_modules/y.js", "src/debug.log", "src/main.c" })
end)

t.test("walk ignore patterns", function()
  local d = tree()
  t.eq(fs.walk(d, { ignore = { "node_modules", "*.log", "/build", "docs/*.md", ".*" } }),
    { "a-c", "a/b", "a/z/deep.txt", "docs/sub/b.md", "etc-link", "src/main.c" })
  t.eq(fs.walk(d, { ignore = { "a/", "**/sub", "etc-link" }, include_dirs = true }),
    { ".hidden", "a-c", "build", "build/out.o", "docs", "docs/a.md", "emptydir", "node_modules",
      "node_modules/x", "node_modules/x/index.js", "pkg", "pkg/node_modules", "pkg/node_modules/y.js",
      "src", "src/debug.log", "src/main.c" })
  t.raises(function() fs.walk(d, { ignore = { 1 } }) end, "bad ignore pattern #1")
  t.raises(function() fs.walk(d, { ignore = "x" }) end, "ignore must be a list")
end)

t.test("walk with stat entries and max_depth", function()
  local d = tree()
  local entries = fs.walk(d, { stat = true, include_dirs = true, max_depth = 1 })
  local by = {}
  for _, e in ipairs(entries) do
    by[e.path] = e
  end
  t.eq(by["a-c"].type, "file")
  t.eq(by["a-c"].size, 3)
  t.eq(by["a-c"].mode, fs.stat(d .. "/a-c").mode)
  t.eq(by["a-c"].ino, fs.stat(d .. "/a-c").ino)
  t.eq(by["a-c"].mtime_ns, fs.stat(d .. "/a-c").mtime_ns)
  t.eq(by["etc-link"].type, "link")
  t.eq(by["a"].type, "dir")
  t.eq(by["a/b"], nil, "max_depth 1")
  t.eq(#entries, 10)
end)

t.test("walk failures and symlinked root", function()
  local d = dir()
  put(d .. "/f", "")
  t.raises(function() fs.walk(d .. "/missing") end, "fs.walk: " .. d .. "/missing: No such file or directory")
  t.raises(function() fs.walk(d .. "/f") end, "fs.walk: " .. d .. "/f: Not a directory")
  local list, err = fs.try_walk(d .. "/missing")
  t.eq(list, nil)
  t.contains(err, "No such file or directory")
  fs.symlink(".", d .. "/self")
  t.eq(fs.walk(d), { "f", "self" }, "a symlink loop is listed, not followed")
  t.eq(fs.walk(d .. "/self"), { "f", "self" }, "the root itself may be a link")
  t.eq(require("bbit.core.fs").walk(d .. "/nope"), nil, "raw walk: nil on a missing root")
end)

t.test("walk is fast on 10,000 dirs x 5 files", function()
  local d = dir()
  for i = 1, 100 do
    for j = 1, 100 do
      local sub = ("%s/d%d/s%d"):format(d, i, j)
      fs.mkdir(sub)
      for k = 1, 5 do
        assert(io.open(sub .. "/" .. k, "w")):close()
      end
    end
  end
  local t0 = os.clock()
  local list = fs.walk(d)
  local plain = os.clock() - t0
  t0 = os.clock()
  local stats = fs.walk(d, { stat = true })
  local with_stat = os.clock() - t0
  t0 = os.clock()
  local ignored = fs.walk(d, { ignore = { "s1*", "*.log", "node_modules" } })
  local with_ignore = os.clock() - t0
  t.eq(#list, 50000)
  t.eq(#stats, 50000)
  t.eq(#ignored, 50000 - 100 * 12 * 5) -- s1, s10..s19, s100
  t.eq(list[1], "d1/s1/1")
  print(("# walk 10000 dirs x 5 files: %.3fs paths, %.3fs stat, %.3fs ignore (cpu)"):format(plain, with_stat, with_ignore))
  t.ok(plain < 5 and with_stat < 5, "walk took too long")
  fs.remove(d, { recursive = true })
end)

-- glob / match ------------------------------------------------------------------------

t.test("match", function()
  t.eq(fs.match("components/**/legacy", "components/a/b/legacy"), true)
  t.eq(fs.match("components/**/legacy", "components/legacy"), true)
  t.eq(fs.match("components/**/legacy", "components/legacy/x"), false)
  t.eq(fs.match("*.js", "a/b.js"), false)
  t.eq(fs.match("**/*.js", "a/b.js"), true)
  t.eq(fs.match("[ab]?.txt", "b1.txt"), true)
  t.eq(fs.match("[ab]?.txt", "c1.txt"), false)
  t.eq(fs.ignored("node_modules", "x/node_modules/y"), true)
  t.eq(fs.ignored("build/", "build", false), false)
  t.eq(fs.ignored("build/", "build", true), true)
end)

t.test("glob", function()
  local d = tree()
  t.eq(fs.glob("src/*.c", { cwd = d }), { "src/main.c" })
  t.eq(fs.glob("*", { cwd = d }), { ".hidden", "a", "a-c", "build", "docs", "emptydir", "etc-link",
    "node_modules", "pkg", "src" })
  t.eq(fs.glob("**/*.md", { cwd = d }), { "docs/a.md", "docs/sub/b.md" })
  t.eq(fs.glob("docs/**", { cwd = d }), { "docs", "docs/a.md", "docs/sub", "docs/sub/b.md" })
  t.eq(fs.glob("**/node_modules", { cwd = d }), { "node_modules", "pkg/node_modules" })
  t.eq(fs.glob("a/?", { cwd = d }), { "a/b", "a/z" })
  t.eq(fs.glob("[ab]*", { cwd = d }), { "a", "a-c", "build" })
  t.eq(fs.glob(d .. "/src/*.log"), { d .. "/src/debug.log" })
  t.eq(fs.glob("src/main.c", { cwd = d }), { "src/main.c" })
  t.eq(fs.glob("src/nope.c", { cwd = d }), {})
  t.eq(fs.glob("missing/**/*.c", { cwd = d }), {})
  fs.symlink("src", d .. "/linked")
  t.eq(fs.glob("linked/*.c", { cwd = d }), { "linked/main.c" }, "a link in the literal prefix is followed")
  t.eq(fs.glob("**/*.c", { cwd = d }), { "src/main.c" }, "links below the prefix are not entered")
  t.eq(fs.glob("l*", { cwd = d }), { "linked" })
  local here = fs.cwd()
  fs.chdir(d)
  t.eq(fs.glob("*/*.c"), { "src/main.c" })
  fs.chdir(here)
end)

-- lock ------------------------------------------------------------------------------

t.test("lock writes the pid, conflicts, releases", function()
  local d = dir()
  local lock = fs.lock(d .. "/lock")
  local pid = tonumber(get(d .. "/lock"))
  t.ok(pid and pid > 1, "pid written")
  t.eq(lock:path(), d .. "/lock")
  t.raises(function() fs.lock(d .. "/lock") end,
    d .. "/lock is locked by pid " .. pid .. " (another bbit running? if not, the lock is released when that process exits)")
  local l2, err, holder = fs.try_lock(d .. "/lock")
  t.eq(l2, nil)
  t.contains(err, "is locked by pid " .. pid)
  t.eq(holder, pid)
  local t0 = os.time()
  t.raises(function() fs.lock(d .. "/lock", { wait = true, timeout = 0.3 }) end, "is locked by pid " .. pid)
  t.ok(os.time() - t0 < 3, "timeout honoured")
  lock:release()
  lock:release() -- idempotent
  t.raises(function() lock:path() end, "attempt to use a closed lock")
  t.eq(get(d .. "/lock"), "", "pid cleared on release")
  do
    local l3 <close> = fs.lock(d .. "/lock", { wait = true, timeout = 1 })
    t.ok(l3, "free again")
  end
  local l4 = fs.lock(d .. "/lock") -- released by <close>
  l4:release()
  fs.lock(d .. "/lock") -- dropped without release
  collectgarbage()
  collectgarbage()
  fs.lock(d .. "/lock"):release() -- the garbage collector released it
end)

t.test("lock failures", function()
  local d = dir()
  put(d .. "/file", "")
  t.raises(function() fs.lock(d .. "/nodir/lock") end, "fs.lock: " .. d .. "/nodir/lock: No such file or directory")
  local l, err, pid = fs.try_lock(d .. "/file/lock")
  t.eq(l, nil)
  t.eq(err, "fs.lock: " .. d .. "/file/lock: Not a directory")
  t.eq(pid, nil)
end)

-- path ------------------------------------------------------------------------------

t.test("path.normalize and join", function()
  t.eq(path.normalize("a/./b/../c//d/"), "a/c/d")
  t.eq(path.normalize("/../x"), "/x")
  t.eq(path.normalize("../a/.."), "..")
  t.eq(path.normalize(""), ".")
  t.eq(path.join("a", "b", "c.txt"), "a/b/c.txt")
  t.eq(path.join("/root/", "x/", "../y"), "/root/y")
  t.eq(path.join("a", "/b"), "a/b")
  t.eq(path.join("a", "", "b"), "a/b")
  t.eq(path.join(), ".")
  t.raises(function() path.join("a", nil, "b") end, "bad argument #2 to 'join' (string expected, got nil)")
end)

t.test("path.dirname, basename, is_absolute", function()
  t.eq(path.dirname("a/b/c"), "a/b")
  t.eq(path.dirname("a/b/"), "a")
  t.eq(path.dirname("a"), ".")
  t.eq(path.dirname("/a"), "/")
  t.eq(path.dirname("/"), "/")
  t.eq(path.dirname(""), ".")
  t.eq(path.basename("a/b.txt"), "b.txt")
  t.eq(path.basename("a/b/"), "b")
  t.eq(path.basename("/"), "/")
  t.eq(path.basename("x"), "x")
  t.eq(path.basename(""), "")
  t.eq(path.is_absolute("/a"), true)
  t.eq(path.is_absolute("a/b"), false)
  t.eq(path.is_absolute(""), false)
end)

t.test("path.relative", function()
  t.eq(path.relative("a/b", "a/c/d"), "../c/d")
  t.eq(path.relative("a", "a"), ".")
  t.eq(path.relative("a", "a/b"), "b")
  t.eq(path.relative("/x/y/z", "/x"), "../..")
  t.eq(path.relative("/", "/etc/hosts"), "etc/hosts")
  t.eq(path.relative(".", "a/b"), "a/b")
  local cwd = fs.cwd()
  t.eq(path.relative(cwd, "sub/f"), "sub/f")
  t.eq(path.relative("sub", cwd), "..")
  t.eq(path.relative("../q", "x"), "../" .. path.basename(cwd) .. "/x")
end)

t.test("path.is_within", function()
  t.eq(path.is_within("/ws", "/ws/a/b"), true)
  t.eq(path.is_within("/ws", "/ws"), true)
  t.eq(path.is_within("/ws", "/ws/../etc"), false)
  t.eq(path.is_within("/ws", "/wsx"), false)
  t.eq(path.is_within("a", "a/./b"), true)
  t.eq(path.is_within("a", "a/../b"), false)
  local cwd = fs.cwd()
  t.eq(path.is_within(cwd, "x/y"), true)
  t.eq(path.is_within(cwd, "../x"), false)
  t.eq(path.is_within("sub", cwd .. "/sub/f"), true)
end)

t.test("path.safe_relative and check_relative", function()
  t.eq(path.safe_relative("a/./b/../c"), "a/c")
  t.eq(path.safe_relative("."), ".")
  local p, err = path.safe_relative("../etc/passwd")
  t.eq(p, nil)
  t.eq(err, "path '../etc/passwd' escapes its root with ..")
  p, err = path.safe_relative("a/../../x")
  t.eq(p, nil)
  t.eq(err, "path 'a/../../x' escapes its root with ..")
  p, err = path.safe_relative("/etc/passwd")
  t.eq(p, nil)
  t.eq(err, "path '/etc/passwd' is absolute (a relative path was expected)")
  p, err = path.safe_relative("")
  t.eq(p, nil)
  t.eq(err, "path '' is empty")
  t.eq(path.check_relative("x//y/"), "x/y")
  t.raises(function() path.check_relative("../x") end, "path '../x' escapes its root with ..")
end)

fs.remove(root, { recursive = true })
t.test("racy_since: now minus the filesystem's timestamp uncertainty; a file older than that is trusted", function()
  local core = require("bbit.core.fs")
  local function now_ns()
    return math.tointeger(tonumber(io.popen("date +%s%N"):read("l")))
  end
  local d = dir()
  local ftype = io.popen("stat -f -c %t " .. d):read("l") -- the filesystem's magic number, in hex
  local fine = ({ ef53 = true, ["58465342"] = true, ["9123683e"] = true, ["1021994"] = true, f2f52010 = true,
    ["794c7630"] = true, ["2fc12fc1"] = true })[ftype]
  local window = fine and 100000000 or 2000000000
  local before = now_ns()
  local since = core.racy_since(d)
  local after = now_ns()
  t.ok(since >= before - window and since <= after - window,
    ("racy_since is now minus %d ns on filesystem %s: %d not in [%d, %d]"):format(window, ftype, since,
      before - window, after - window))
  put(d .. "/a.js", "a")
  t.eq(select(3, fs.walk_digest(d, {}, core.racy_since(d))), true, "a file just written is racy")
  if fine then
    os.execute("sleep 0.25")
    t.eq(select(3, fs.walk_digest(d, {}, core.racy_since(d))), false, "0.25 s later it is trusted on " .. ftype)
  end
end)

t.test("walk_digest: changes with any entry's name, size, mode or content; ignores what walk ignores", function()
  local d = dir()
  fs.mkdir(d .. "/sub")
  put(d .. "/a.js", "a")
  put(d .. "/sub/b.js", "bb")
  fs.mkdir(d .. "/node_modules")
  put(d .. "/node_modules/x.js", "x")
  local opts = { ignore = { "node_modules" } }
  local first, count, unstable = fs.walk_digest(d, opts, 0)
  t.eq(#first, 64)
  t.eq(count, 2)
  t.eq(unstable, true, "everything is newer than recent_ns = 0")
  local _, _, stable = fs.walk_digest(d, opts)
  t.eq(stable, false)
  t.eq(fs.walk_digest(d, opts), first, "same folder, same digest")
  put(d .. "/node_modules/y.js", "y")
  t.eq(fs.walk_digest(d, opts), first, "an ignored file changes nothing")
  put(d .. "/sub/b.js", "bbb")
  local resized = fs.walk_digest(d, opts)
  t.ok(resized ~= first, "a size change shows")
  fs.chmod(d .. "/a.js", "755")
  local chmodded = fs.walk_digest(d, opts)
  t.ok(chmodded ~= resized, "a mode change shows")
  fs.rename(d .. "/a.js", d .. "/c.js")
  t.ok(fs.walk_digest(d, opts) ~= chmodded, "a rename shows")
  t.raises(function()
    fs.walk_digest(d .. "/missing")
  end, "fs.walk_digest: " .. d .. "/missing")
end)

t.test("walk_digests: the same digests as walk_digest, on threads; false for what is not a plain folder", function()
  local d = dir()
  local roots = {}
  for i = 1, 300 do -- enough for several worker threads
    local r = ("%s/c%03d"):format(d, i)
    fs.mkdir(r .. "/lib")
    put(r .. "/index.js", ("x"):rep(i))
    put(r .. "/lib/util.js", tostring(i))
    roots[#roots + 1] = r
  end
  put(d .. "/file", "not a folder")
  fs.symlink(roots[1], d .. "/link")
  roots[#roots + 1] = d .. "/missing"
  roots[#roots + 1] = d .. "/file"
  roots[#roots + 1] = d .. "/link"
  local opts = { ignore = { "node_modules" } }
  local job <close> = fs.walk_digests(roots, opts)
  roots[1], opts.ignore = "changed after the start: the job has its own copies", nil
  for i = 300, 2, -1 do -- any order
    local digest, unstable = job:get(i)
    t.eq(digest, (fs.walk_digest(roots[i], { ignore = { "node_modules" } })), roots[i])
    t.eq(unstable, false)
  end
  t.eq(job:get(301), false, "missing")
  t.eq(job:get(302), false, "a file")
  t.eq(job:get(303), false, "a symlink to a folder is left to walk_digest (it follows it)")
  t.eq(#job:get(1), 64)
  t.raises(function()
    job:get(304)
  end, "no such root")
  job:close()
  t.raises(function()
    job:get(1)
  end, "closed")
  -- the caller digests too: with no worker at all, or with several
  for _, threads in ipairs({ 0, 3 }) do
    local job2 <close> = fs.walk_digests(roots, { ignore = { "node_modules" }, threads = threads })
    for i = 2, 300, 7 do
      t.eq(job2:get(i), (fs.walk_digest(roots[i], { ignore = { "node_modules" } })), ("threads=%d: %s"):format(threads, roots[i]))
    end
    t.eq(job2:get(302), false, "threads=" .. threads)
  end
  t.raises(function()
    fs.walk_digests({ roots[2] }, { threads = -1 })
  end, "opts.threads must be an integer >= 0")
  local recent <close> = fs.walk_digests({ roots[2] }, opts, 0)
  t.eq(select(2, recent:get(1)), true, "everything is newer than recent_ns = 0")
  local empty <close> = fs.walk_digests({}, opts)
  t.raises(function()
    fs.walk_digests({ roots[2], 42 })
  end, "root #2 is not a string")
end)

t.test("walk_digests with a dircache: the same digests, folders not read again, any change still seen", function()
  local d = dir()
  local roots = {}
  for i = 1, 40 do
    local r = ("%s/c%02d"):format(d, i)
    fs.mkdir(r .. "/lib/deep")
    put(r .. "/index.js", ("x"):rep(i))
    put(r .. "/lib/deep/util.js", tostring(i))
    roots[i] = r
  end
  local cache = d .. "/cache/dirs" -- its folder is created by the first save
  local future = (os.time() + 86400) * 1000000000 -- every folder is old enough to record
  local function digests(opts, recent)
    local job <close> = fs.walk_digests(roots, opts, recent)
    local out = {}
    for i = 1, #roots do
      out[i] = job:get(i)
      t.ok(out[i], roots[i])
    end
    return out
  end
  local function same_as_plain(what)
    local plain = digests({}, future)
    local cached = digests({ dircache = cache }, future)
    for i = 1, #roots do
      t.eq(cached[i], plain[i], what .. ": " .. roots[i])
    end
    return cached
  end
  same_as_plain("no cache file yet")
  local size = #get(cache)
  t.ok(size > 40 * 3 * 20, "three folders of each root recorded (" .. size .. " bytes)")
  local before = same_as_plain("from the cache")
  t.eq(#get(cache), size, "an unchanged tree leaves the file as it was")
  -- the listings really come from the file: one whose name is altered (the
  -- folder's stat still matching) makes the walk miss that file
  local text = get(cache)
  put(cache, (text:gsub("index%.js", "indey.js", 1)))
  local fooled = digests({ dircache = cache }, future)
  local differ = 0
  for i = 1, #roots do
    differ = differ + (fooled[i] ~= before[i] and 1 or 0)
  end
  t.eq(differ, 1, "one root's listing was taken from the cache as it was")
  -- a listing naming something out of its folder (its stat matching) makes the whole file invalid
  local dir_len, names_len = string.unpack("=I4I4", text, 9)
  local header = text:sub(9, 48)
  local escape = "\8../" .. roots[2]:match("[^/]+$") .. "\0"
  local forged = "BBDIRC1\n" .. string.pack("=I4I4", dir_len, #escape) .. header:sub(9)
    .. text:sub(49, 48 + dir_len) .. escape .. text:sub(49 + dir_len + names_len)
  put(cache, forged)
  same_as_plain("a name with a slash")
  put(cache, text)

  put(roots[3] .. "/lib/deep/new.js", "new") -- a folder's listing changes
  fs.remove(roots[5] .. "/index.js")
  fs.rename(roots[7] .. "/lib/deep/util.js", roots[7] .. "/lib/deep/renamed.js")
  put(roots[9] .. "/index.js", "same size, other text: xxxxxxxxx") -- only a file's stat changes
  local after = same_as_plain("after changes")
  for _, i in ipairs({ 3, 5, 7, 9 }) do
    t.ok(after[i] ~= before[i], "the change in " .. roots[i] .. " shows")
  end
  t.eq(after[4], before[4], "an untouched root keeps its digest")

  -- a folder whose mtime is put back after a new entry: its ctime still moved
  put(roots[11] .. "/lib/added.js", "added")
  sh(("touch -m -d @1000000000 '%s/lib'"):format(roots[11]))
  local again = same_as_plain("mtime put back")
  t.ok(again[11] ~= after[11], "a listing change is seen even with the folder's old mtime restored")

  -- folders changed at or after recent_ns are not recorded (a second change could keep the mtime)
  digests({ dircache = cache }, 0)
  t.eq(#get(cache), 8, "everything is recent: only the file's header is left")

  -- a damaged file, or one with a name leading out of its folder, reads as empty
  for _, bad in ipairs({ "garbage", "BBDIRC1\n" .. ("\255"):rep(64) }) do
    put(cache, bad)
    same_as_plain("damaged cache")
    t.ok(#get(cache) > 100, "rewritten whole")
  end
  -- relative roots: the cache (keyed by absolute paths) is not used
  fs.remove(cache)
  local job <close> = fs.walk_digests({ "." }, { dircache = cache }, future)
  t.ok(job:get(1))
  job:close()
  t.eq(fs.exists(cache), false, "not written for relative roots")
  t.raises(function()
    fs.walk_digests(roots, { dircache = 42 }, future)
  end, "opts.dircache must be a file path")
  t.raises(function()
    fs.walk_digests(roots, { dircache = cache })
  end, "opts.dircache needs recent_ns")
  collectgarbage() -- the jobs those calls left are closed: none may close fd 0
  t.ok(fs.exists("/proc/self/fd/0"), "stdin is still open")
  -- a root written with a trailing slash is the same folder, cached the same way
  local slashed <close> = fs.walk_digests({ roots[4] .. "/", roots[4] .. "//" }, { dircache = cache }, future)
  t.eq(slashed:get(1), after[4], "trailing slash")
  t.eq(slashed:get(2), after[4], "trailing slashes")
end)

t.done()
