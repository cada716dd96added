-- bbit.archive: deterministic creation, round trips, listing, and extraction
-- of hostile, corrupt and oversized archives (refused, nothing written).
local t = require("testlib")
local archive = require("bbit.archive")
local core = require("bbit.core.archive")
local hash = require("bbit.hash")

local dir = t.tmpdir()

local function sh(cmd)
  t.ok(os.execute(cmd), cmd)
end

local q = t.quote

local write = t.write

local function read(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local s = f:read("a")
  f:close()
  return s
end

local function exists(path)
  return os.execute("test -e " .. q(path) .. " || test -L " .. q(path)) == true
end

-- Everything under a directory (which must exist), as sorted relative paths.
local function tree(path)
  t.ok(os.execute("test -d " .. q(path)), path .. " should be a directory")
  local p = assert(io.popen("cd " .. q(path) .. " && find . -mindepth 1 | LC_ALL=C sort"))
  local out = {}
  for line in p:lines() do
    out[#out + 1] = line:sub(3)
  end
  p:close()
  return out
end

local function mode_of(path)
  local p = assert(io.popen("stat -c %a " .. q(path)))
  local m = p:read("l")
  p:close()
  return m
end

local function vm_hwm()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s+(%d+)")
    if kb then
      return tonumber(kb)
    end
  end
end

-- A component-like source tree at `root`, with the given mtime and modes.
local function make_tree(root, stamp, private_mode)
  sh(("mkdir -p %s/lib %s/bin"):format(q(root), q(root)))
  write(root .. "/index.js", "module.exports = 1\n")
  write(root .. "/lib/util.js", ("x"):rep(100000))
  write(root .. "/bin/run.sh", "#!/bin/sh\necho hi\n")
  write(root .. "/empty.txt", "")
  write(root .. "/Ünïcødé ✓.md", "unicode name\n")
  sh(("chmod %s %s/index.js %s/lib/util.js %s/empty.txt"):format(private_mode, q(root), q(root), q(root)))
  sh(("chmod 700 %s/bin/run.sh"):format(q(root)))
  sh(("find %s -exec touch -h -d %s {} +"):format(q(root), q(stamp)))
end

local NAMES = { "index.js", "lib/util.js", "bin/run.sh", "empty.txt", "Ünïcødé ✓.md" }

local function libarchive_loaded()
  return read("/proc/self/maps"):find("libarchive", 1, true) ~= nil
end

-- Writes `entries` ({name, data, mode} or {name, dir = true}) with core.writer
-- and `engine` (nil: native when it can); the bytes, or nil, err, unsupported.
local function write_with(path, format, engine, entries)
  local w <close> = assert(core.writer(path, format, engine))
  for _, e in ipairs(entries) do
    local ok, err, unsupported
    if e.dir then
      ok, err, unsupported = w:add_dir(e.name)
    else
      ok, err, unsupported = w:add_data(e.name, e.data, e.mode)
    end
    if not ok then
      return nil, err, unsupported
    end
  end
  assert(w:finish(false))
  return read(path)
end

-- Deterministic bytes: compressible text, or noise (a fixed LCG) that deflate keeps as is.
local function content(n, noise)
  local out, x = {}, 12345
  for i = 1, n do
    if noise then
      x = (x * 1103515245 + 12345) % 2147483648
      out[i] = string.char(x >> 16 & 255)
    else
      out[i] = string.char(97 + (i * 7 + i // 13) % 5)
    end
  end
  return table.concat(out)
end

-- First in this file: nothing has loaded libarchive yet.
t.test("native writer: tar.gz and tar of plain entries, libarchive's bytes without loading it", function()
  t.ok(not libarchive_loaded(), "libarchive is not loaded before")
  local cases = {}
  -- sizes around the 512-byte blocks, libarchive's 10240-byte blocks and deflate's buffers
  for _, size in ipairs({ 0, 1, 511, 512, 513, 10239, 10240, 10241, 65537, 300000 }) do
    for _, noise in ipairs({ false, true }) do
      cases[#cases + 1] = {
        { name = "package", dir = true },
        { name = "package/a b'\"\\~.js", data = content(size, noise) },
        { name = "package/bin/run", data = content(size // 3, not noise), mode = tonumber("755", 8) },
        { name = ("x"):rep(100), data = content(size % 1000, noise) }, -- the longest plain name
        { name = ("d"):rep(99), dir = true }, -- 100 bytes with its "/"
      }
    end
  end
  local native = {}
  for i, entries in ipairs(cases) do
    for _, format in ipairs({ "tar.gz", "tar" }) do
      native[i .. format] = assert(write_with(dir .. "/native." .. format, format, nil, entries))
    end
  end
  t.ok(not libarchive_loaded(), "the native writer loads no libarchive")
  for i, entries in ipairs(cases) do
    for _, format in ipairs({ "tar.gz", "tar" }) do
      local ref = write_with(dir .. "/ref." .. format, format, "libarchive", entries)
      t.ok(native[i .. format] == ref, ("case %d (%s): %d bytes natively, %d by libarchive"):format(i, format,
        #native[i .. format], #ref))
    end
  end
end)

t.test("names and sizes only libarchive writes: the native writer declines, create falls back", function()
  for _, entry in ipairs({
    { name = ("y"):rep(101), data = "x" }, -- a pax "path" record
    { name = "caf\u{e9}.js", data = "x" }, -- not ASCII
    { name = "tab\tname", data = "x" }, -- a control character
    { name = ("d"):rep(100), dir = true }, -- 101 bytes with its "/"
  }) do
    local bytes, err, unsupported = write_with(dir .. "/decline.tar", "tar", nil, { entry })
    t.eq(bytes, nil, entry.name)
    t.eq(unsupported, "unsupported", entry.name)
    t.contains(err, "needs libarchive")
    t.ok(not exists(dir .. "/decline.tar"), "nothing is left")
    for _, format in ipairs({ "tar.gz", "tar" }) do
      local path = dir .. "/fallback." .. format
      archive.create(path, { entry }, { format = format })
      t.eq(read(path), write_with(dir .. "/ref." .. format, format, "libarchive", { entry }), entry.name .. " " .. format)
    end
  end
  local listed = archive.list(dir .. "/fallback.tar")
  t.eq(listed[1].name, ("d"):rep(100) .. "/")
end)

t.test("deterministic: same bytes from other dirs, mtimes, modes, order (tar.gz and tar.zst)", function()
  make_tree(dir .. "/a", "2001-02-03 04:05:06", "600")
  make_tree(dir .. "/elsewhere/b", "2024-12-31 23:59:59", "644")
  local reversed = {}
  for i = #NAMES, 1, -1 do
    reversed[#reversed + 1] = NAMES[i]
  end
  for _, ext in ipairs({ "tgz", "tar.zst", "tar" }) do
    local one, two = dir .. "/one." .. ext, dir .. "/elsewhere/two." .. ext
    archive.create(one, NAMES, { root = dir .. "/a" })
    archive.create(two, reversed, { root = dir .. "/elsewhere/b" })
    t.eq(hash.sha256_file(two), hash.sha256_file(one), ext .. " bytes")
    archive.create(one, NAMES, { root = dir .. "/a" }) -- again, over the first
    t.eq(hash.sha256_file(one), hash.sha256_file(two), ext .. " bytes, recreated")
  end
  -- different content, different bytes
  write(dir .. "/elsewhere/b/index.js", "module.exports = 2\n")
  archive.create(dir .. "/three.tgz", NAMES, { root = dir .. "/elsewhere/b" })
  t.ok(hash.sha256_file(dir .. "/three.tgz") ~= hash.sha256_file(dir .. "/one.tgz"))
  write(dir .. "/elsewhere/b/index.js", "module.exports = 1\n")
end)

t.test("format follows the extension, or opts.format", function()
  t.eq(archive.create(dir .. "/f1.tgz", NAMES, { root = dir .. "/a" }).format, "tar.gz")
  t.eq(archive.create(dir .. "/f2.tar.zst", NAMES, { root = dir .. "/a" }).format, "tar.zst")
  t.eq(archive.create(dir .. "/f3.tzst", NAMES, { root = dir .. "/a" }).format, "tar.zst")
  t.eq(archive.create(dir .. "/f4.tar", NAMES, { root = dir .. "/a" }).format, "tar")
  t.eq(archive.create(dir .. "/f5.bin", NAMES, { root = dir .. "/a", format = "tar.zst" }).format, "tar.zst")
  local magic = function(p)
    return read(p):sub(1, 4)
  end
  t.eq(magic(dir .. "/f1.tgz"):sub(1, 2), "\31\139")
  t.eq(magic(dir .. "/f2.tar.zst"), "\40\181\47\253")
  t.eq(magic(dir .. "/f5.bin"), "\40\181\47\253")
  t.eq(read(dir .. "/f4.tar"):sub(258, 262), "ustar")
  -- gzip header: no timestamp (bytes 5-8 are zero)
  t.eq(read(dir .. "/f1.tgz"):sub(5, 8), "\0\0\0\0")
  t.raises(function()
    archive.create(dir .. "/f6.zip", NAMES, { root = dir .. "/a", format = "zip" })
  end, 'unknown format "zip"')
end)

t.test("gz and zst of the same entries have the same content_sha256", function()
  local gz, zst = dir .. "/one.tgz", dir .. "/one.tar.zst"
  t.ok(hash.sha256_file(gz) ~= hash.sha256_file(zst))
  t.eq(archive.content_sha256(gz), archive.content_sha256(zst))
  t.ok(archive.content_sha256(dir .. "/three.tgz") ~= archive.content_sha256(gz))
  t.raises(function()
    archive.content_sha256(dir .. "/missing.tgz")
  end, "archive.content_sha256: " .. dir .. "/missing.tgz: No such file or directory")
end)

t.test("list: sorted names, sizes, types, modes 0644/0755, fixed mtime", function()
  local entries = archive.list(dir .. "/one.tgz")
  t.eq(entries, {
    { name = "bin/run.sh", size = 18, type = "file", mode = tonumber("755", 8) },
    { name = "empty.txt", size = 0, type = "file", mode = tonumber("644", 8) },
    { name = "index.js", size = 19, type = "file", mode = tonumber("644", 8) },
    { name = "lib/util.js", size = 100000, type = "file", mode = tonumber("644", 8) },
    { name = "Ünïcødé ✓.md", size = 13, type = "file", mode = tonumber("644", 8) },
  })
  t.eq(archive.list(dir .. "/one.tar.zst"), entries)
  -- GNU tar sees the fixed owner and time
  local p = assert(io.popen("TZ=UTC tar -tvzf " .. q(dir .. "/one.tgz") .. " --numeric-owner"))
  local first = p:read("l")
  p:read("a")
  p:close()
  t.contains(first, "-rwxr-xr-x 0/0")
  t.contains(first, "1985-10-26 08:15 bin/run.sh")
  t.eq(archive.MTIME, 499162500)
end)

t.test("round trip: extract gives identical bytes and modes", function()
  local out = dir .. "/rt"
  local info = archive.extract(dir .. "/one.tgz", out)
  t.eq(info, { entries = 5, bytes = 100000 + 19 + 18 + 13 })
  t.eq(tree(out), { "bin", "bin/run.sh", "empty.txt", "index.js", "lib", "lib/util.js", "Ünïcødé ✓.md" })
  for _, name in ipairs(NAMES) do
    t.eq(read(out .. "/" .. name), read(dir .. "/a/" .. name), name)
  end
  t.eq(mode_of(out .. "/bin/run.sh"), "755")
  t.eq(mode_of(out .. "/index.js"), "644") -- 0600 on disk becomes 0644
  local zout = dir .. "/rt-zst"
  archive.extract(dir .. "/one.tar.zst", zout)
  t.eq(tree(zout), tree(out))
  t.eq(read(zout .. "/lib/util.js"), read(dir .. "/a/lib/util.js"))
  -- GNU tar agrees with bbit's bytes
  sh(("mkdir %s && tar -xzf %s -C %s"):format(q(dir .. "/gnu"), q(dir .. "/one.tgz"), q(dir .. "/gnu")))
  t.eq(read(dir .. "/gnu/Ünïcødé ✓.md"), "unicode name\n")
end)

t.test("entries: data, dir, explicit path (e.g. a LICENSE from elsewhere), mode", function()
  write(dir .. "/LICENSE", "MIT\n")
  local path = dir .. "/mixed.tgz"
  local info = archive.create(path, {
    "index.js",
    { name = "LICENSE", path = dir .. "/LICENSE" },
    { name = "package.json", data = '{"name":"x"}\n' },
    { name = "tool", data = "#!/bin/sh\n", mode = tonumber("750", 8) },
    { name = "assets", dir = true },
  }, { root = dir .. "/a" })
  t.eq(info, { path = path, format = "tar.gz", entries = 5 })
  t.eq(archive.list(path), {
    { name = "LICENSE", size = 4, type = "file", mode = tonumber("644", 8) },
    { name = "assets/", size = 0, type = "dir", mode = tonumber("755", 8) }, -- tar marks dirs with /
    { name = "index.js", size = 19, type = "file", mode = tonumber("644", 8) },
    { name = "package.json", size = 13, type = "file", mode = tonumber("644", 8) },
    { name = "tool", size = 10, type = "file", mode = tonumber("755", 8) },
  })
  local out = dir .. "/mixed-out"
  archive.extract(path, out)
  t.eq(read(out .. "/LICENSE"), "MIT\n")
  t.eq(read(out .. "/package.json"), '{"name":"x"}\n')
  t.eq(mode_of(out .. "/tool"), "755")
  t.eq(tree(out), { "LICENSE", "assets", "index.js", "package.json", "tool" })
end)

-- No archive and no temp file is left next to `path`.
local function assert_nothing_left(path)
  t.ok(not exists(path), path .. " should not exist")
  local p = assert(io.popen("ls -A " .. q(path:match("^(.*)/")) .. " | grep -c '\\.tmp-' || true"))
  t.eq(p:read("l"), "0", "temp files left")
  p:close()
end

t.test("create failures name the archive and the entry; nothing is left", function()
  local path = dir .. "/fails/x.tgz"
  sh("mkdir -p " .. q(dir .. "/fails"))
  local msg = t.raises(function()
    archive.create(path, { "index.js", "nope.js" }, { root = dir .. "/a" })
  end)
  t.eq(msg, ("archive.create: %s: entry \"nope.js\": %s/a/nope.js: No such file or directory"):format(path, dir))
  assert_nothing_left(path)
  local _, err = archive.try_create(path, { { name = "lib", path = dir .. "/a/lib" } })
  t.eq(err, ("archive.create: %s: entry \"lib\": %s/a/lib: not a regular file"):format(path, dir))
  assert_nothing_left(path)
  local cases = {
    ["../evil"] = "'..' component",
    ["/abs"] = "absolute name",
    ["a//b"] = "empty path component",
    ["a/"] = "empty path component",
    ["./a"] = "'.' component",
    [""] = "a name must be a non-empty string",
    ["a\0b"] = "contains a NUL byte",
    ["bad\255utf8"] = "not valid UTF-8",
  }
  for name, why in pairs(cases) do
    local _, e = archive.try_create(path, { { name = name, data = "x" } })
    t.contains(e, ("archive.create: %s: entry %q: invalid name: %s"):format(path, name, why))
  end
  local _, dup = archive.try_create(path, { "index.js", { name = "index.js", data = "x" } }, { root = dir .. "/a" })
  t.contains(dup, 'entry "index.js": listed twice')
  assert_nothing_left(path)
  local _, nodir = archive.try_create(dir .. "/no/such/dir/x.tgz", {})
  t.eq(nodir, "archive.create: " .. dir .. "/no/such/dir/x.tgz: No such file or directory")
end)

t.test("a failed create keeps the previous archive intact", function()
  local path = dir .. "/keep.tgz"
  archive.create(path, { { name = "v1", data = "one" } })
  local before = hash.sha256_file(path)
  t.ok(not archive.try_create(path, { { name = "v2", path = dir .. "/missing" } }))
  t.eq(hash.sha256_file(path), before)
  t.eq(archive.list(path)[1].name, "v1")
end)

t.test("misuse raises: bare names without root, bad entries, bad types", function()
  t.raises(function()
    archive.create(dir .. "/m.tgz", { "index.js" })
  end, "entry 1 is a bare name but opts.root is not set")
  t.raises(function()
    archive.create(dir .. "/m.tgz", { { name = "x" } })
  end, 'entry "x" needs exactly one of path, data, dir')
  t.raises(function()
    archive.create(dir .. "/m.tgz", { { name = "x", data = "a", path = "b" } })
  end, "needs exactly one of")
  t.raises(function()
    archive.create(dir .. "/m.tgz", "index.js")
  end, "entries must be a list")
  t.raises(function()
    core.writer(dir .. "/m.tgz", "rar")
  end, 'expected "tar.gz", "tar.zst" or "tar"')
  assert_nothing_left(dir .. "/m.tgz")
end)

t.test("raw writer: closed after finish; close without finish removes the temp file", function()
  local path = dir .. "/raw.tar"
  local w = core.writer(path, "tar")
  t.ok(w:add_data("a", "1"))
  t.ok(w:finish())
  t.raises(function()
    w:add_data("b", "2")
  end, "attempt to use a closed archive writer")
  w:close() -- idempotent
  t.eq(#archive.list(path), 1)
  do
    local w2 <close> = core.writer(dir .. "/abandoned.tar", "tar")
    w2:add_data("a", "1")
  end
  assert_nothing_left(dir .. "/abandoned.tar")
  -- dropped without close: the garbage collector discards it the same way
  core.writer(dir .. "/collected.tar", "tar"):add_data("a", "1")
  collectgarbage()
  collectgarbage()
  assert_nothing_left(dir .. "/collected.tar")
end)

t.test("list and reader: missing, not an archive, truncated", function()
  local missing = dir .. "/missing.tgz"
  t.raises(function()
    archive.list(missing)
  end, "archive.list: " .. missing .. ": No such file or directory")
  write(dir .. "/garbage.tgz", ("not a tar file at all "):rep(100))
  local _, err = archive.try_list(dir .. "/garbage.tgz")
  t.contains(err, "archive.list: " .. dir .. "/garbage.tgz: ")
  write(dir .. "/empty.tgz", "")
  local _, eerr = archive.try_list(dir .. "/empty.tgz")
  t.contains(eerr, "archive.list: " .. dir .. "/empty.tgz: ")
  local whole = read(dir .. "/one.tgz")
  write(dir .. "/cut.tgz", whole:sub(1, #whole // 2))
  local _, cerr = archive.try_list(dir .. "/cut.tgz")
  t.contains(cerr, "archive.list: " .. dir .. "/cut.tgz: ")
  t.raises(function()
    archive.reader(missing)
  end, "archive.reader: " .. missing .. ": No such file or directory")
  local r <close> = archive.reader(dir .. "/mixed.tgz")
  t.eq(r:next().name, "LICENSE")
  t.eq(r:read(2), "MI")
  t.eq(r:read(), "T\n")
  t.eq(r:read(), nil)
  t.eq(r:next().name, "assets/")
  t.eq(r:next().name, "index.js")
  t.eq(r:read(1e12), "module.exports = 1\n") -- a huge max is capped, not allocated
  t.eq(r:next().name, "package.json")
  t.eq(r:next().name, "tool")
  t.eq(r:next(), nil)
  r:close()
  t.raises(function()
    r:next()
  end, "attempt to use a closed archive reader")
end)

-- Hostile archives, written by python3's tarfile (it writes any name/type).
local PY = [[
import io, sys, tarfile
def member(t, name, data=b"evil\n", typ=tarfile.REGTYPE, link=""):
    ti = tarfile.TarInfo(name)
    ti.type = typ
    ti.linkname = link
    ti.mode = 0o644
    if typ == tarfile.REGTYPE:
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    else:
        if typ == tarfile.CHRTYPE:
            ti.devmajor, ti.devminor = 1, 3
        t.addfile(ti)
def build(out, kind, outside):
    with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as t:
        member(t, "good.txt", b"fine\n")  # a valid entry first: it must not land either
        if kind == "dotdot":
            member(t, "../evil")
        elif kind == "nested_dotdot":
            member(t, "sub/../../evil")
        elif kind == "absolute":
            member(t, outside + "/abs-evil")
        elif kind == "symlink":
            member(t, "link", typ=tarfile.SYMTYPE, link=outside)
            member(t, "link/through-symlink")
        elif kind == "hardlink":
            member(t, "passwd", typ=tarfile.LNKTYPE, link="/etc/passwd")
        elif kind == "fifo":
            member(t, "pipe", typ=tarfile.FIFOTYPE)
        elif kind == "chardev":
            member(t, "null", typ=tarfile.CHRTYPE)
for i in range(1, len(sys.argv), 3):  # out kind outside, ...
    build(sys.argv[i], sys.argv[i + 1], sys.argv[i + 2])
]]
write(dir .. "/hostile.py", PY)


local ONLY = " (only regular files and directories)"
local HOSTILE = {
  { "dotdot", "../evil", "path escapes the target (..)" },
  { "nested_dotdot", "sub/../../evil", "path escapes the target (..)" },
  { "absolute", "@/abs-evil", "absolute path" },
  { "symlink", "link", "symlink entries are not allowed" .. ONLY },
  { "hardlink", "passwd", "hardlink entries are not allowed" .. ONLY },
  { "fifo", "pipe", "fifo entries are not allowed" .. ONLY },
  { "chardev", "null", "char entries are not allowed" .. ONLY },
}

-- One python3 run writes them all (python3 starts slowly).
local py_args = {}
for _, case in ipairs(HOSTILE) do
  local kind = case[1]
  local outside = dir .. "/h-" .. kind .. "/outside"
  py_args[#py_args + 1] = ("%s %s %s"):format(q(("%s/hostile-%s.tgz"):format(dir, kind)), kind, q(outside))
end
sh("python3 " .. q(dir .. "/hostile.py") .. " " .. table.concat(py_args, " "))

for _, case in ipairs(HOSTILE) do
  local kind, entry, why = case[1], case[2], case[3]
  t.test("hostile archive refused: " .. kind, function()
    local base = dir .. "/h-" .. kind
    local outside = base .. "/outside"
    local dest = base .. "/target/dest"
    sh(("mkdir -p %s %s"):format(q(outside), q(dest)))
    write(dest .. "/existing.txt", "kept\n")
    local path = ("%s/hostile-%s.tgz"):format(dir, kind)
    entry = entry:gsub("^@", outside)
    -- listing shows it as it is
    local names = {}
    for _, e in ipairs(archive.list(path)) do
      names[#names + 1] = e.name
    end
    t.eq(names[2], entry)
    local msg = t.raises(function()
      archive.extract(path, dest)
    end)
    t.eq(msg, ("archive.extract: %s: entry %q: refused: %s"):format(path, entry, why))
    -- nothing outside the target, nothing new inside it
    t.eq(tree(outside), {})
    t.eq(tree(base .. "/target"), { "dest", "dest/existing.txt" })
    t.eq(read(dest .. "/existing.txt"), "kept\n")
    t.ok(not exists(dir .. "/evil") and not exists(base .. "/evil"))
    local _, err = archive.try_extract(path, dest)
    t.eq(err, msg)
  end)
end

t.test("raw writer names ../ and absolute: bbit's own hostile archives are refused", function()
  local outside = dir .. "/raw-outside"
  sh("mkdir -p " .. q(outside))
  for _, name in ipairs({ "../raw-outside/evil", outside .. "/evil2", "ok/../../x" }) do
    local path = dir .. "/raw-hostile.tgz"
    local w <close> = core.writer(path, "tar.gz")
    w:add_data("fine", "ok")
    w:add_data(name, "evil")
    t.ok(w:finish())
    local dest = dir .. "/raw-dest"
    local _, err = archive.try_extract(path, dest)
    t.contains(err, ("archive.extract: %s: entry %q: refused: "):format(path, name))
    t.eq(tree(outside), {})
    t.ok(not exists(dest), "a dest created by a failed extract is removed again")
  end
end)

t.test("duplicate names and a file used as a directory are refused", function()
  local path = dir .. "/dup.tgz"
  local w <close> = core.writer(path, "tar.gz")
  w:add_data("a", "first")
  w:add_data("./a", "second, would replace the first")
  t.ok(w:finish())
  local _, err = archive.try_extract(path, dir .. "/dup-dest")
  t.eq(err, ("archive.extract: %s: entry \"./a\": refused: duplicate entry (the name occurs twice)"):format(path))
  t.ok(not exists(dir .. "/dup-dest"))
  local path2 = dir .. "/file-as-dir.tgz"
  local w2 <close> = core.writer(path2, "tar.gz")
  w2:add_data("f", "a file")
  w2:add_data("f/x", "below a file")
  t.ok(w2:finish())
  local _, err2 = archive.try_extract(path2, dir .. "/dup-dest")
  t.contains(err2, ("archive.extract: %s: entry \"f/x\": refused: "):format(path2))
  t.ok(not exists(dir .. "/dup-dest"))
  -- a directory entry repeated (or after its files) is fine
  local path3 = dir .. "/dirs.tgz"
  local w3 <close> = core.writer(path3, "tar.gz")
  w3:add_dir("d")
  w3:add_data("d/x", "1")
  w3:add_dir("d")
  t.ok(w3:finish())
  t.eq(archive.extract(path3, dir .. "/dirs-dest"), { entries = 3, bytes = 1 })
  t.eq(tree(dir .. "/dirs-dest"), { "d", "d/x" })
end)

t.test("corrupt and truncated archives: clear error, nothing written", function()
  local whole = read(dir .. "/one.tgz")
  write(dir .. "/trunc.tgz", whole:sub(1, #whole - 200))
  local dest = dir .. "/corrupt-dest"
  local _, err = archive.try_extract(dir .. "/trunc.tgz", dest)
  t.contains(err, "archive.extract: " .. dir .. "/trunc.tgz: ")
  t.ok(not exists(dest))
  sh("mkdir " .. q(dest))
  -- flip bytes in the middle of the compressed stream
  local mid = #whole // 2
  write(dir .. "/flipped.tgz", whole:sub(1, mid) .. ("\255"):rep(64) .. whole:sub(mid + 65))
  local _, ferr = archive.try_extract(dir .. "/flipped.tgz", dest)
  t.contains(ferr, "archive.extract: " .. dir .. "/flipped.tgz: ")
  t.eq(tree(dest), {})
  local _, gerr = archive.try_extract(dir .. "/garbage.tgz", dest)
  t.contains(gerr, "archive.extract: " .. dir .. "/garbage.tgz: ")
  t.raises(function()
    archive.extract(dir .. "/missing.tgz", dest)
  end, "archive.extract: " .. dir .. "/missing.tgz: No such file or directory")
  t.eq(tree(dest), {})
end)

t.test("limits: entry count and total size (archive bombs)", function()
  local path = dir .. "/one.tgz"
  local _, err = archive.try_extract(path, dir .. "/lim1", { max_entries = 3 })
  t.eq(err, ("archive.extract: %s: entry \"lib/util.js\": refused: more than 3 entries (the extraction limit)"):format(path))
  t.ok(not exists(dir .. "/lim1"))
  local _, serr = archive.try_extract(path, dir .. "/lim2", { max_bytes = 50000 })
  t.eq(serr, ("archive.extract: %s: entry \"lib/util.js\": refused: more than 50000 bytes in total (the extraction limit)"):format(path))
  t.ok(not exists(dir .. "/lim2"))
  t.eq(archive.extract(path, dir .. "/lim3", { max_entries = 5, max_bytes = 100050 }).entries, 5)
  t.raises(function()
    archive.extract(path, dir .. "/lim4", { max_bytes = 0 })
  end, "expected a positive limit")
end)

t.test("destination: existing entries are not overwritten; a file is not a dir", function()
  local dest = dir .. "/busy"
  sh("mkdir -p " .. q(dest .. "/lib"))
  write(dest .. "/lib/mine.js", "mine")
  local _, err = archive.try_extract(dir .. "/one.tgz", dest)
  t.eq(err, ("archive.extract: %s/one.tgz: entry \"lib\": refused: %s/lib already exists (nothing is overwritten)"):format(dir, dest))
  t.eq(tree(dest), { "lib", "lib/mine.js" })
  local _, ferr = archive.try_extract(dir .. "/one.tgz", dir .. "/LICENSE")
  t.eq(ferr, ("archive.extract: %s/one.tgz: destination %s/LICENSE: not a directory"):format(dir, dir))
  local _, perr = archive.try_extract(dir .. "/one.tgz", dir .. "/no/parent")
  t.eq(perr, ("archive.extract: %s/one.tgz: destination %s/no/parent: No such file or directory"):format(dir, dir))
end)

t.test("extract keeps the working directory and works with a relative dest", function()
  local p = assert(io.popen("pwd"))
  local cwd = p:read("l")
  p:close()
  local rel = "bbit-archive-rel-" .. tostring(os.time())
  local ok, err = archive.try_extract(dir .. "/mixed.tgz", rel)
  t.ok(ok, err)
  t.eq(read(rel .. "/LICENSE"), "MIT\n")
  sh("rm -rf " .. q(rel))
  local p2 = assert(io.popen("pwd"))
  t.eq(p2:read("l"), cwd)
  p2:close()
end)

t.test("64 MiB file: create and extract stream in bounded memory", function()
  local big = dir .. "/big"
  sh(("mkdir -p %s && head -c %d /dev/urandom > %s/blob"):format(q(big), 64 * 1024 * 1024, q(big)))
  collectgarbage()
  local before = vm_hwm()
  archive.create(dir .. "/big.tar.zst", { "blob" }, { root = big })
  local info = archive.extract(dir .. "/big.tar.zst", dir .. "/big-out")
  local grown = vm_hwm() - before
  t.eq(info.bytes, 64 * 1024 * 1024)
  t.eq(hash.sha256_file(dir .. "/big-out/blob"), hash.sha256_file(big .. "/blob"))
  t.ok(grown < 16 * 1024, ("peak RSS grew by %d KiB"):format(grown))
  sh("rm -rf " .. q(big) .. " " .. q(dir .. "/big-out") .. " " .. q(dir .. "/big.tar.zst"))
end)

os.execute("rm -rf " .. q(dir))
t.done()
