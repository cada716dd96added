-- bbit.hash: vectors, files (streamed in bounded memory), the hasher handle.
local t = require("testlib")
local hash = require("bbit.hash")
local core = require("bbit.core.hash")

local EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
local ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

local dir = t.tmpdir()

local write = t.write

local function sh(cmd)
  t.ok(os.execute(cmd), cmd)
end

-- Peak resident set size of this process, in KiB.
local function vm_hwm()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s+(%d+)")
    if kb then
      return tonumber(kb)
    end
  end
  error("no VmHWM in /proc/self/status")
end

t.test("known vectors: empty string and abc", function()
  t.eq(hash.sha256(""), EMPTY)
  t.eq(hash.sha256("abc"), ABC)
  t.eq(hash.sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
end)

t.test("sha256 returns exactly one lowercase hex value", function()
  t.eq(select("#", hash.sha256("abc")), 1)
  t.ok(hash.sha256("\0\255binary"):match("^[0-9a-f]+$"))
  t.eq(#hash.sha256("\0\255binary"), 64)
end)

t.test("raw bytes and to_hex agree with hex", function()
  local raw = hash.sha256_bytes("abc")
  t.eq(#raw, 32)
  t.eq(hash.to_hex(raw), ABC)
  t.eq(raw:byte(1), 0xba)
end)

t.test("file digest equals string digest, with the size", function()
  local data = ("0123456789abcdef"):rep(20000) .. "tail" -- 320004 bytes: several chunks
  local path = dir .. "/data.bin"
  write(path, data)
  local hex, size = hash.sha256_file(path)
  t.eq(hex, hash.sha256(data))
  t.eq(size, #data)
  local ok_hex, ok_size = hash.try_sha256_file(path)
  t.eq(ok_hex, hex)
  t.eq(ok_size, #data)
  write(dir .. "/empty", "")
  t.eq({ hash.sha256_file(dir .. "/empty") }, { EMPTY, 0 })
end)

t.test("missing file: sha256_file raises naming the path, try_ returns nil, err", function()
  local missing = dir .. "/no/such/file.txt"
  t.raises(function()
    hash.sha256_file(missing)
  end, "hash.sha256_file: " .. missing .. ": No such file or directory")
  local hex, err = hash.try_sha256_file(missing)
  t.eq(hex, nil)
  t.eq(err, "hash.sha256_file: " .. missing .. ": No such file or directory")
  local _, derr = hash.try_sha256_file(dir)
  t.eq(derr, "hash.sha256_file: " .. dir .. ": Is a directory")
end)

t.test("raw tier returns nil, err, errno", function()
  local hex, err, code = core.sha256_file(dir .. "/missing")
  t.eq(hex, nil)
  t.contains(err, "/missing: No such file or directory")
  t.eq(code, 2) -- ENOENT
end)

t.test("incremental hasher equals one-shot", function()
  local h <close> = hash.hasher()
  t.eq(h:update("a"):update(""):update("bc"), h) -- chainable
  t.eq(h:hexdigest(), ABC)
  local parts, whole = {}, {}
  for i = 1, 1000 do
    parts[i] = ("chunk %d;"):format(i)
    whole[#whole + 1] = parts[i]
  end
  local h2 = hash.hasher()
  for _, p in ipairs(parts) do
    h2:update(p)
  end
  t.eq(h2:hexdigest(), hash.sha256(table.concat(whole)))
  h2:close()
  local h3 <close> = hash.hasher()
  t.eq(h3:hexdigest(), EMPTY)
  local h4 <close> = hash.hasher()
  t.eq(h4:update("abc"):digest(), hash.sha256_bytes("abc"))
end)

t.test("hasher update_file mixes with strings", function()
  local path = dir .. "/part.txt"
  write(path, "middle")
  local h <close> = hash.hasher()
  h:update("start-")
  t.eq(h:update_file(path), 6)
  h:update("-end")
  t.eq(h:hexdigest(), hash.sha256("start-middle-end"))
  local h2 <close> = hash.hasher()
  local size, err = h2:update_file(dir .. "/gone")
  t.eq(size, nil)
  t.eq(err, "hash.update_file: " .. dir .. "/gone: No such file or directory")
end)

t.test("use after finish and after close are clear errors", function()
  local h = hash.hasher()
  h:update("x")
  h:hexdigest()
  t.eq(tostring(h), "sha256 hasher (finished)")
  t.raises(function()
    h:update("y")
  end, "hasher:update: the hasher is finished (digest already taken)")
  t.raises(function()
    h:hexdigest()
  end, "hasher:hexdigest: the hasher is finished")
  t.raises(function()
    h:digest()
  end, "hasher:digest: the hasher is finished")
  t.raises(function()
    h:update_file("/etc/hostname")
  end, "hasher:update_file: the hasher is finished")
  h:close()
  h:close() -- idempotent
  t.eq(tostring(h), "sha256 hasher (closed)")
  t.raises(function()
    h:update("y")
  end, "attempt to use a closed hasher")
  t.raises(function()
    h:hexdigest()
  end, "attempt to use a closed hasher")
end)

t.test("<close> closes the hasher at scope end", function()
  local escaped
  do
    local h <close> = hash.hasher()
    escaped = h
    t.eq(tostring(h), "sha256 hasher (open)")
  end
  t.eq(tostring(escaped), "sha256 hasher (closed)")
end)

t.test("misuse raises: wrong argument types", function()
  t.raises(function()
    hash.sha256(nil)
  end, "bad argument #1")
  t.raises(function()
    hash.sha256_file({})
  end, "bad argument #1")
  local h <close> = hash.hasher()
  t.raises(function()
    h:update({})
  end, "to 'update' (string expected, got table)")
  t.raises(function()
    h.update(io.stdout, "x")
  end, "bbit.core.hash.sha256 expected, got FILE*")
end)

t.test("64 MiB file: same digest as sha256sum, memory stays bounded", function()
  local path = dir .. "/big.bin"
  sh(("head -c %d /dev/urandom > '%s'"):format(64 * 1024 * 1024, path))
  local p = assert(io.popen("sha256sum '" .. path .. "'"))
  local expected = p:read("l"):match("^(%x+)")
  p:close()
  collectgarbage()
  local before = vm_hwm()
  local hex, size = hash.sha256_file(path)
  local grown = vm_hwm() - before
  t.eq(hex, expected)
  t.eq(size, 64 * 1024 * 1024)
  t.ok(grown < 8 * 1024, ("peak RSS grew by %d KiB while hashing 64 MiB"):format(grown))
  -- the hasher streams files too
  before = vm_hwm()
  local h <close> = hash.hasher()
  h:update_file(path)
  t.eq(h:hexdigest(), expected)
  grown = vm_hwm() - before
  t.ok(grown < 8 * 1024, ("peak RSS grew by %d KiB in update_file"):format(grown))
  os.remove(path)
end)

os.execute("rm -rf '" .. dir .. "'")
t.done()
