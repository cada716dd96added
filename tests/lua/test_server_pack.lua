-- Object packs (POST /api/v1/scopes/{scope}/objects/pack): many objects in one
-- upload, each verified while it streams in; bad input refused by object id.
local t = require("testlib")
local http = require("bbit.http")
local store = require("bbit.store")
local remote = require("bbit.remote")
local fs = require("bbit.fs")

local BBIT = assert(os.getenv("BBIT"), "run through ctest (BBIT unset)")
local TMP = t.tmpdir()
local ROOT = TMP .. "/root"

local q = t.quote
local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  assert(p:close(), "failed: " .. cmd)
  return (out:gsub("%s+$", ""))
end

sh(q(BBIT) .. " server init --root " .. q(ROOT) .. " >/dev/null")
sh(q(BBIT) .. " server scope create my-org.ui --root " .. q(ROOT) .. " >/dev/null")
sh("echo 'a long password' | " .. q(BBIT) .. " server user add alice --password-stdin --root " .. q(ROOT) .. " >/dev/null")
local WRITE = sh(q(BBIT) .. " server token create alice --scope 'my-org.*' --role write --root " .. q(ROOT) .. " 2>/dev/null"):match("[^\n]*$")
local READ = sh(q(BBIT) .. " server token create alice --scope 'my-org.*' --role read --root " .. q(ROOT) .. " 2>/dev/null"):match("[^\n]*$")
local log = TMP .. "/serve.log"
local pid = sh(("%s serve --root %s --listen 127.0.0.1:0 </dev/null >/dev/null 2>%s & echo $!"):format(q(BBIT), q(ROOT), q(log)))
local url
for _ = 1, 200 do
  url = (fs.try_read(log) or ""):match("listening on (http://127%.0%.0%.1:%d+)")
  if url then
    break
  end
  os.execute("sleep 0.05")
end
assert(url, "the server did not start")

local s = store.open(TMP .. "/local", { create = true })
local ids = {}
for i = 1, 50 do
  ids[i] = s:put(("object number %d\n"):format(i):rep(i * 10))
end
local client = remote.client(url, { token = WRITE })

local function pack(list, name)
  local file = TMP .. "/" .. name
  s:write_pack(list, file)
  return file
end

local function post(file, token)
  return http.request({ method = "POST", url = url .. "/api/v1/scopes/my-org.ui/objects/pack", body_file = file,
    token = token or WRITE, raise = false })
end

t.test("a pack stores every object, verified; a second upload finds them all", function()
  local first = { table.unpack(ids, 1, 30) }
  t.eq(client:missing("my-org.ui", first), first)
  local r = client:upload_pack("my-org.ui", pack(first, "p1"), #first)
  t.eq(r.stored, 30)
  t.eq(r.existing, 0)
  t.eq(client:missing("my-org.ui", ids), { table.unpack(ids, 31, 50) })
  r = client:upload_pack("my-org.ui", pack(ids, "p2"), #ids)
  t.eq(r.stored, 20)
  t.eq(r.existing, 30)
  t.eq(client:missing("my-org.ui", ids), {})
  -- the stored bytes are the object's, byte for byte
  local f = io.open(ROOT .. "/scopes/my-org.ui/objects/" .. ids[7]:sub(1, 2) .. "/" .. ids[7]:sub(3), "rb")
  t.eq(f:read("a"), fs.read(s:path(ids[7])))
  f:close()
end)

t.test("an object whose bytes do not match its id is refused by id; objects before it are kept", function()
  local good = s:put("good object before the bad one")
  local bad_real = s:put("the real content")
  local file = TMP .. "/bad"
  local out = io.open(file, "wb")
  local good_bytes = fs.read(s:path(good))
  out:write(good, " ", #good_bytes, "\n", good_bytes)
  local wrong_id = ("0"):rep(64)
  local bytes = fs.read(s:path(bad_real))
  out:write(wrong_id, " ", #bytes, "\n", bytes)
  out:close()
  local r = post(file)
  t.eq(r.status, 400)
  t.eq(r.json.error.code, "hash_mismatch")
  t.contains(r.json.error.message, wrong_id)
  t.eq(client:missing("my-org.ui", { good, wrong_id }), { wrong_id })
end)

t.test("a truncated pack, a malformed header and garbage are refused", function()
  local id = s:put("truncated one")
  local bytes = fs.read(s:path(id))
  local file = TMP .. "/trunc"
  fs.write(file, id .. " " .. #bytes .. "\n" .. bytes:sub(1, #bytes - 3))
  local r = post(file)
  t.eq(r.status, 400)
  t.contains(r.json.error.message, "ends inside object " .. id)
  t.eq(client:missing("my-org.ui", { id }), { id })
  fs.write(file, "not a header at all\n")
  r = post(file)
  t.eq(r.status, 400)
  t.eq(r.json.error.code, "bad_request")
  local id2 = ("a"):rep(64)
  fs.write(file, id2 .. " 5\nhello")
  r = post(file)
  t.eq(r.status, 400)
  t.eq(r.json.error.code, "corrupt_object")
end)

t.test("a read-only token may not upload packs", function()
  local r = post(pack({ ids[1] }, "ro"), READ)
  t.eq(r.status, 403)
end)

t.test("an API response larger than remote.MAX_RESPONSE is refused", function()
  local saved = remote.MAX_RESPONSE
  remote.MAX_RESPONSE = 10
  local ok, err = pcall(client.scopes, client)
  remote.MAX_RESPONSE = saved
  t.eq(ok, false)
  t.contains(tostring(err), "response larger than the limit of 10 bytes")
  t.ok(#client:scopes() >= 1, "read with the default limit")
end)

os.execute("kill " .. pid)
t.done()
