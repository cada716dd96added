-- The scope server's JSON API (SPEC §5, §7) against a real `bbit serve` on
-- 127.0.0.1: objects, negotiation, export transactions, permissions, and
-- crashes (kill -9) between prepare and commit and during an upload.
local t = require("testlib")
local http = require("bbit.http")
local json = require("bbit.json")
local store = require("bbit.store")
local fs = require("bbit.fs")

local BBIT = assert(os.getenv("BBIT"), "run through ctest (BBIT unset)")
local TMP = t.tmpdir()
local ROOT = TMP .. "/root"
local LOCAL = TMP .. "/local"

local q = t.quote

-- Runs a shell command; returns its stdout (trimmed) and whether it succeeded.
local function sh(cmd)
  local p = io.popen(cmd .. " 2>" .. q(TMP .. "/sh.err"))
  local out = p:read("a")
  local ok = p:close()
  return (out:gsub("%s+$", "")), ok
end

local function bbit(args)
  local out, ok = sh(q(BBIT) .. " " .. args)
  assert(ok, "bbit " .. args .. " failed: " .. fs.read(TMP .. "/sh.err"))
  return out
end

local function sleep(s)
  os.execute("sleep " .. s)
end

-- ---------------------------------------------------------------------------
-- The server root: scopes, a user and tokens of several kinds.
bbit("server init --root " .. q(ROOT))
bbit("server scope create my-org.ui --root " .. q(ROOT))
bbit("server scope create my-org.web --root " .. q(ROOT))
bbit("server scope create other.scope --root " .. q(ROOT))
bbit("server scope create pub --public --root " .. q(ROOT))
sh("echo 'a long password' | " .. q(BBIT) .. " server user add alice --password-stdin --grant 'my-org.*=write' --root " .. q(ROOT))
sh("echo 'a long password' | " .. q(BBIT) .. " server user add bob --password-stdin --root " .. q(ROOT))
local function token(user, scope, role)
  local out = bbit(("server token create %s --scope %s --role %s --root %s"):format(user, q(scope), role, q(ROOT)))
  return out:match("[^\n]*$")
end
local WRITE = token("alice", "my-org.*", "write")
local WRITE2 = token("alice", "my-org.*", "write")
local READ = token("alice", "my-org.*", "read")
local OTHER = token("bob", "other.scope", "write")
local ADMIN = token("bob", "*", "admin")

-- ---------------------------------------------------------------------------
-- Starting and stopping servers.
local servers = {}

local function start(extra)
  local log = TMP .. "/serve-" .. (#servers + 1) .. ".log"
  local pid = sh(("%s serve --root %s --listen 127.0.0.1:0 %s </dev/null >/dev/null 2>%s & echo $!")
    :format(q(BBIT), q(ROOT), extra or "", q(log)))
  local srv = { pid = pid, log = log }
  servers[#servers + 1] = srv
  for _ = 1, 200 do
    local text = fs.try_read(log) or ""
    local port = text:match("listening on http://127%.0%.0%.1:(%d+)")
    if port then
      srv.url = "http://127.0.0.1:" .. port
      return srv
    end
    sleep(0.05)
  end
  error("the server did not start: " .. (fs.try_read(log) or ""))
end

local function kill(srv, signal)
  os.execute(("kill -%s %s 2>/dev/null"):format(signal or "9", srv.pid))
  sleep(0.2)
end

local S = start()

local function req(method, path, opts)
  opts = opts or {}
  opts.method = method
  opts.url = (opts.server or S).url .. path
  opts.server = nil
  opts.raise = false
  opts.retries = 0
  return http.request(opts)
end

local function expect_error(r, status, code, part)
  t.eq(r.status, status, "status (" .. tostring(r.body) .. ")")
  t.eq(r.json.error.code, code, "error code")
  t.ok(type(r.json.error.message) == "string" and #r.json.error.message > 0, "an error message")
  if part then
    t.contains(r.json.error.message, part)
  end
end

-- ---------------------------------------------------------------------------
-- Local objects, built the way `bbit tag` builds them.
local ls = store.open(LOCAL, { create = true })

local function version_object(name, version, opts)
  opts = opts or {}
  local files = json.array({})
  for _, f in ipairs(opts.files or {}) do
    files[#files + 1] = { path = f.path, mode = 420, size = #f.data, blob = ls:put(f.data) }
  end
  for _, b in ipairs(opts.blob_ids or {}) do
    files[#files + 1] = { path = "extra", mode = 420, size = 1, blob = b }
  end
  return ls:put(json.encode({
    kind = opts.kind or "bbit.version/1",
    name = opts.object_name or name,
    version = version,
    files = files,
    parents = json.array(opts.parents or {}),
    dependencies = json.array({}),
    artifacts = json.array({}),
    log = { message = opts.message or ("v" .. version) },
  }))
end

-- The token of opts: WRITE when absent, none when false.
local function token_of(opts)
  if opts.token == nil then
    return WRITE
  end
  return opts.token or nil
end

local function upload(id, opts)
  opts = opts or {}
  return req("PUT", ("/api/v1/scopes/%s/objects/%s"):format(opts.scope or "my-org.ui", opts.as or id),
    { body_file = ls:path(id), token = token_of(opts), server = opts.server })
end

local function missing(ids, opts)
  opts = opts or {}
  return req("POST", ("/api/v1/scopes/%s/objects/missing"):format(opts.scope or "my-org.ui"),
    { json = { ids = json.array(ids) }, token = opts.token or WRITE, server = opts.server })
end

-- Uploads a version and every object it references.
local function upload_version(id, scope, tok)
  local obj = json.decode(ls:get(id))
  for _, f in ipairs(obj.files) do
    if ls:has(f.blob) then
      local r = upload(f.blob, { scope = scope, token = tok })
      t.ok(r.status == 201 or r.status == 200, "blob upload " .. r.status)
    end
  end
  local r = upload(id, { scope = scope, token = tok })
  t.ok(r.status == 201 or r.status == 200, "version upload " .. r.status .. " " .. tostring(r.body))
end

local function prepare(components, tok, server)
  for _, c in ipairs(components) do
    c.versions = json.array(c.versions)
  end
  return req("POST", "/api/v1/transactions",
    { json = { components = json.array(components) }, token = tok or WRITE, server = server })
end

local function commit(id, tok, server)
  return req("POST", "/api/v1/transactions/" .. id .. "/commit", { token = tok or WRITE, server = server })
end

local function component(name, scope, tok, server)
  return req("GET", ("/api/v1/scopes/%s/component?name=%s"):format(scope or "my-org.ui", http.escape(name)),
    { token = tok or WRITE, server = server })
end

local function server_object_path(scope, id)
  return ("%s/scopes/%s/objects/%s/%s"):format(ROOT, scope, id:sub(1, 2), id:sub(3))
end

-- ---------------------------------------------------------------------------
t.test("health answers without a token", function()
  local r = req("GET", "/api/v1/health")
  t.eq(r.status, 200)
  t.eq(r.json.ok, true)
  t.eq(type(r.json.version), "string")
end)

t.test("whoami names the user, the token and its grants", function()
  local r = req("GET", "/api/v1/whoami", { token = WRITE })
  t.eq(r.status, 200)
  t.eq(r.json.user, "alice")
  t.eq(r.json.grants, { { scope = "my-org.*", role = "write" } })
  t.eq(type(r.json.token.id), "number")
  expect_error(req("GET", "/api/v1/whoami"), 401, "unauthorized")
  expect_error(req("GET", "/api/v1/whoami", { headers = { Authorization = "Basic abc" } }), 401, "unauthorized")
end)

t.test("scopes lists only what the caller may read", function()
  local r = req("GET", "/api/v1/scopes", { token = READ })
  t.eq(r.status, 200)
  t.eq(r.json.scopes, {
    { name = "my-org.ui", public = false, role = "read" },
    { name = "my-org.web", public = false, role = "read" },
    { name = "pub", public = true, role = "read" },
  })
  r = req("GET", "/api/v1/scopes")
  t.eq(r.json.scopes, { { name = "pub", public = true, role = "read" } })
end)

t.test("upload with the right id stores the object (201), again is 200 stored=false", function()
  local id = ls:put("hello blob")
  t.eq(missing({ id }).json.missing, { id })
  local r = upload(id)
  t.eq(r.status, 201, r.body)
  t.eq(r.json, { id = id, stored = true })
  t.ok(fs.exists(server_object_path("my-org.ui", id)), "object file on the server")
  r = upload(id)
  t.eq(r.status, 200)
  t.eq(r.json, { id = id, stored = false })
  t.eq(missing({ id }).json.missing, {})
  -- other scopes do not see it
  t.eq(missing({ id }, { scope = "my-org.web" }).json.missing, { id })
  -- download: the compressed bytes exactly as stored
  r = req("GET", "/api/v1/scopes/my-org.ui/objects/" .. id, { token = READ })
  t.eq(r.status, 200)
  t.eq(r.headers["content-type"], "application/octet-stream")
  t.ok(r.body == fs.read(ls:path(id)), "downloaded bytes equal the stored object")
end)

t.test("upload under a wrong id: 400 hash_mismatch, nothing stored", function()
  local real = ls:put("real content")
  local claimed = ls:put("claimed content")
  local r = upload(real, { as = claimed })
  expect_error(r, 400, "hash_mismatch", claimed)
  t.ok(not fs.exists(server_object_path("my-org.ui", claimed)), "nothing stored under the claimed id")
  t.ok(not fs.exists(server_object_path("my-org.ui", real)), "nothing stored under the real id")
  t.eq(missing({ claimed, real }).json.missing, { claimed, real })
end)

t.test("garbage bytes: 400 corrupt_object", function()
  local id = ls:put("something")
  local r = req("PUT", "/api/v1/scopes/my-org.ui/objects/" .. id, { body = "this is not a zstd frame at all", token = WRITE })
  expect_error(r, 400, "corrupt_object", id)
  t.eq(missing({ id }).json.missing, { id })
  -- a truncated frame
  local bytes = fs.read(ls:path(id))
  r = req("PUT", "/api/v1/scopes/my-org.ui/objects/" .. id, { body = bytes:sub(1, #bytes - 3), token = WRITE })
  expect_error(r, 400, "corrupt_object")
  t.eq(missing({ id }).json.missing, { id })
end)

t.test("invalid ids and bodies: 400 bad_request", function()
  expect_error(req("PUT", "/api/v1/scopes/my-org.ui/objects/xyz", { body = "x", token = WRITE }), 400, "bad_request", "invalid object id")
  expect_error(req("GET", "/api/v1/scopes/my-org.ui/objects/" .. ("A"):rep(64), { token = WRITE }), 400, "bad_request")
  expect_error(missing({ "nothex" }), 400, "bad_request", "nothex")
  expect_error(req("POST", "/api/v1/scopes/my-org.ui/objects/missing", { body = '{"ids": [', token = WRITE }), 400, "bad_request", "malformed JSON")
  expect_error(req("POST", "/api/v1/scopes/my-org.ui/objects/missing", { body = '{"ids": 3}', token = WRITE }), 400, "bad_request", "ids")
  expect_error(req("POST", "/api/v1/scopes/my-org.ui/objects/missing", { body = '[]', token = WRITE }), 400, "bad_request", "JSON object")
  local many = {}
  for i = 1, 10001 do
    many[i] = ("%064x"):format(i)
  end
  expect_error(missing(many), 400, "bad_request", "at most 10000")
  expect_error(req("GET", "/api/v1/scopes/my-org.ui/objects/" .. ("0"):rep(64), { token = WRITE }), 404, "object_not_found")
end)

t.test("oversize objects: 413 too_large (compressed and decompressed)", function()
  local small = start("--max-object-size 1000")
  -- incompressible: the Content-Length alone is too large
  local urandom = assert(io.open("/dev/urandom", "rb"))
  local noise = urandom:read(4000)
  urandom:close()
  local big = ls:put(noise)
  t.ok(fs.stat(ls:path(big)).size > 1000, "compressed size over the limit")
  local r = upload(big, { server = small })
  expect_error(r, 413, "too_large")
  -- compresses to a few bytes but decompresses beyond the limit
  local bomb = ls:put(("\0"):rep(100000))
  t.ok(fs.stat(ls:path(bomb)).size < 1000, "compressed size under the limit")
  r = upload(bomb, { server = small })
  expect_error(r, 413, "too_large")
  t.ok(not fs.exists(server_object_path("my-org.ui", bomb)), "not stored")
  t.eq(missing({ big, bomb }, { server = small }).json.missing, { big, bomb })
  -- a JSON body over 8 MiB
  r = req("POST", "/api/v1/scopes/my-org.ui/objects/missing", { body = ("x"):rep(8 * 1024 * 1024 + 1), token = WRITE, server = small })
  expect_error(r, 413, "too_large")
  kill(small, "TERM")
end)

-- The history used below: ui/button 0.0.1 <- 0.0.2 committed in one transaction.
local B1 = version_object("ui/button", "0.0.1", { files = { { path = "index.js", data = "export const v = 1" } } })
local B2 = version_object("ui/button", "0.0.2", { files = { { path = "index.js", data = "export const v = 2" } }, parents = { B1 } })

t.test("prepare + commit of a two-version component; visible only after commit", function()
  upload_version(B1)
  upload_version(B2)
  local r = prepare({ { scope = "my-org.ui", name = "ui/button", versions = { { version = "0.0.1", id = B1 }, { version = "0.0.2", id = B2 } } } })
  t.eq(r.status, 201, r.body)
  t.eq(r.json.state, "prepared")
  t.ok(r.json.id:match("^%x+$") and #r.json.id == 32, "32 hex id")
  t.ok(r.json.expires_at:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$"), "ISO expires_at")
  local txn = r.json.id
  -- nothing visible yet
  t.eq(req("GET", "/api/v1/scopes/my-org.ui/components", { token = READ }).json.components, {})
  expect_error(component("ui/button"), 404, "component_not_found", "ui/button")
  r = req("GET", "/api/v1/transactions/" .. txn, { token = WRITE })
  t.eq(r.json.state, "prepared")
  r = commit(txn)
  t.eq(r.status, 200, r.body)
  t.eq(r.json, { id = txn, state = "committed" })
  local list = req("GET", "/api/v1/scopes/my-org.ui/components", { token = READ }).json.components
  t.eq(#list, 1)
  t.eq(list[1].name, "ui/button")
  t.eq(list[1].head, "0.0.2")
  t.eq(list[1].head_id, B2)
  r = component("ui/button", nil, READ)
  t.eq(r.status, 200)
  t.eq(r.json.head, "0.0.2")
  t.eq(#r.json.versions, 2)
  t.eq({ r.json.versions[1].version, r.json.versions[1].id }, { "0.0.1", B1 })
  t.eq({ r.json.versions[2].version, r.json.versions[2].id }, { "0.0.2", B2 })
  t.eq(req("GET", "/api/v1/scopes/my-org.ui", { token = READ }).json.components, 1)
  -- commit again: idempotent
  r = commit(txn)
  t.eq(r.status, 200)
  t.eq(r.json.state, "committed")
  t.eq(req("GET", "/api/v1/transactions/" .. txn, { token = WRITE }).json.state, "committed")
  -- aborting a committed transaction is refused
  expect_error(req("POST", "/api/v1/transactions/" .. txn .. "/abort", { token = WRITE }), 409, "transaction_committed")
end)

t.test("prepare with commit = true (one server): committed in the same request; retry and abort see it", function()
  local m1 = version_object("ui/menu", "0.0.1")
  upload_version(m1)
  local id = ("e1"):rep(16)
  local body = { id = id, commit = true,
    components = json.array({ { scope = "my-org.ui", name = "ui/menu", versions = json.array({ { version = "0.0.1", id = m1 } }) } }) }
  local r = req("POST", "/api/v1/transactions", { json = body, token = WRITE })
  t.eq(r.status, 201, r.body)
  t.eq(r.json.state, "committed")
  t.eq(component("ui/menu", nil, READ).json.head, "0.0.1", "visible at once")
  r = req("POST", "/api/v1/transactions", { json = body, token = WRITE }) -- the answer was lost: retried
  t.eq(r.status, 200, r.body)
  t.eq(r.json.state, "committed")
  expect_error(req("POST", "/api/v1/transactions/" .. id .. "/abort", { token = WRITE }), 409, "transaction_committed")
  -- refused as a whole: a version whose parent the server lacks publishes nothing
  local m2 = version_object("ui/menu", "0.0.2", { parents = { ("9"):rep(64) } })
  upload_version(m2)
  body = { id = ("e2"):rep(16), commit = true,
    components = json.array({ { scope = "my-org.ui", name = "ui/menu", versions = json.array({ { version = "0.0.2", id = m2 } }) } }) }
  r = req("POST", "/api/v1/transactions", { json = body, token = WRITE })
  t.ok(r.status >= 400, "refused: " .. r.status)
  t.eq(component("ui/menu", nil, READ).json.head, "0.0.1", "nothing published")
end)

t.test("re-exporting committed versions is a no-op", function()
  local r = prepare({ { scope = "my-org.ui", name = "ui/button", versions = { { version = "0.0.1", id = B1 }, { version = "0.0.2", id = B2 } } } })
  t.eq(r.status, 201, r.body)
  t.eq(r.json.components[1].versions, {})
  t.eq(commit(r.json.id).status, 200)
  t.eq(component("ui/button").json.head_id, B2)
end)

t.test("prepare with a missing blob: 409 missing_object naming component, version and id", function()
  local absent = ls:put("never uploaded")
  local v3 = version_object("ui/button", "0.0.3", { parents = { B2 }, blob_ids = { absent } })
  t.eq(upload(v3).status, 201)
  local r = prepare({ { scope = "my-org.ui", name = "ui/button", versions = { { version = "0.0.3", id = v3 } } } })
  expect_error(r, 409, "missing_object", "ui/button@0.0.3")
  t.contains(r.json.error.message, absent)
  -- a version object that was never uploaded
  local v4 = version_object("ui/button", "0.0.4", { parents = { B2 } })
  r = prepare({ { scope = "my-org.ui", name = "ui/button", versions = { { version = "0.0.4", id = v4 } } } })
  expect_error(r, 409, "missing_object", v4)
  t.eq(component("ui/button").json.head, "0.0.2")
end)

t.test("prepare with a version object that does not match: 400 invalid_object", function()
  local wrong = version_object("ui/other", "0.0.5", { parents = { B2 } })
  t.eq(upload(wrong).status, 201)
  local r = prepare({ { scope = "my-org.ui", name = "ui/button", versions = { { version = "0.0.5", id = wrong } } } })
  expect_error(r, 400, "invalid_object", "ui/other")
  local blob = ls:put("just a blob")
  upload(blob)
  r = prepare({ { scope = "my-org.ui", name = "ui/button", versions = { { version = "0.0.5", id = blob } } } })
  expect_error(r, 400, "invalid_object")
end)

t.test("malformed transaction requests: 400 bad_request", function()
  expect_error(prepare({}), 400, "bad_request", "components")
  expect_error(prepare({ { scope = "my-org.ui", name = "Bad Name", versions = { { version = "0.0.1", id = B1 } } } }), 400, "bad_request", "Bad Name")
  expect_error(prepare({ { scope = "my-org.ui", name = "ui/button", versions = { { version = "1.0", id = B1 } } } }), 400, "bad_request", "1.0")
  expect_error(prepare({ { scope = "my-org.ui", name = "ui/button", versions = { { version = "0.0.2", id = B2 }, { version = "0.0.1", id = B1 } } } }), 400, "bad_request", "ascending")
  expect_error(prepare({
    { scope = "my-org.ui", name = "ui/button", versions = { { version = "0.0.1", id = B1 } } },
    { scope = "my-org.ui", name = "ui/button", versions = { { version = "0.0.1", id = B1 } } },
  }), 400, "bad_request", "more than once")
  expect_error(prepare({ { scope = "my-org.nope", name = "x", versions = { { version = "0.0.1", id = B1 } } } }), 404, "scope_not_found", "my-org.nope")
end)

t.test("a published version with other content: 409 version_exists", function()
  local other = version_object("ui/button", "0.0.2", { parents = { B1 }, message = "other content" })
  upload_version(other)
  local r = prepare({ { scope = "my-org.ui", name = "ui/button", versions = { { version = "0.0.2", id = other } } } })
  expect_error(r, 409, "version_exists", "ui/button@0.0.2 already exists on my-org.ui with other content")
  t.eq(component("ui/button").json.head_id, B2)
end)

t.test("a version that does not descend from the server head: 409 not_ancestor", function()
  local fork = version_object("ui/button", "0.0.3", { parents = { B1 }, message = "forked" })
  upload_version(fork)
  local r = prepare({ { scope = "my-org.ui", name = "ui/button", versions = { { version = "0.0.3", id = fork } } } })
  expect_error(r, 409, "not_ancestor", "bbit import my-org.ui/ui/button")
  t.contains(r.json.error.message, "bbit reset ui/button")
  t.contains(r.json.error.message, "0.0.2")
  t.eq(r.json.error.details.server_head, "0.0.2")
  t.eq(r.json.error.details.scope, "my-org.ui")
  t.eq(r.json.error.details.name, "ui/button")
end)

local B3 = version_object("ui/button", "0.0.3", { files = { { path = "index.js", data = "export const v = 3" } }, parents = { B2 } })

t.test("locks: a second prepare is refused (409 locked); abort releases the lock", function()
  upload_version(B3)
  local one = prepare({ { scope = "my-org.ui", name = "ui/button", versions = { { version = "0.0.3", id = B3 } } } })
  t.eq(one.status, 201, one.body)
  local two = prepare({ { scope = "my-org.ui", name = "ui/button", versions = { { version = "0.0.3", id = B3 } } } }, WRITE2)
  expect_error(two, 409, "locked", "ui/button on my-org.ui is being exported by another transaction; retry")
  -- another component of the same scope is not blocked
  local card = version_object("ui/card", "0.0.1")
  upload_version(card)
  local three = prepare({ { scope = "my-org.ui", name = "ui/card", versions = { { version = "0.0.1", id = card } } } }, WRITE2)
  t.eq(three.status, 201, three.body)
  t.eq(commit(three.json.id, WRITE2).status, 200)
  -- only the preparing token (or an admin) may commit or abort
  expect_error(commit(one.json.id, WRITE2), 403, "forbidden")
  expect_error(req("GET", "/api/v1/transactions/" .. one.json.id, { token = WRITE2 }), 403, "forbidden")
  local r = req("POST", "/api/v1/transactions/" .. one.json.id .. "/abort", { token = WRITE })
  t.eq(r.status, 200, r.body)
  t.eq(r.json.state, "aborted")
  t.eq(req("POST", "/api/v1/transactions/" .. one.json.id .. "/abort", { token = WRITE }).status, 200)
  expect_error(commit(one.json.id), 409, "transaction_aborted")
  two = prepare({ { scope = "my-org.ui", name = "ui/button", versions = { { version = "0.0.3", id = B3 } } } }, WRITE2)
  t.eq(two.status, 201, two.body)
  -- an admin may commit another token's transaction
  t.eq(commit(two.json.id, ADMIN).status, 200)
  t.eq(component("ui/button").json.head, "0.0.3")
  expect_error(commit(("f"):rep(32)), 404, "transaction_not_found")
  expect_error(commit("nope"), 404, "transaction_not_found")
end)

t.test("a client-proposed transaction id: retried prepare is idempotent, late prepare after abort refused", function()
  local n1 = version_object("ui/nav", "0.0.1")
  upload_version(n1)
  local body = { { scope = "my-org.ui", name = "ui/nav", versions = json.array({ { version = "0.0.1", id = n1 } }) } }
  local id = ("ab"):rep(16)
  local function prep(txn, tok)
    return req("POST", "/api/v1/transactions", { json = { id = txn, components = json.array(body) }, token = tok or WRITE })
  end
  local r = prep(id)
  t.eq(r.status, 201, r.body)
  t.eq(r.json.id, id)
  -- a retry (the first answer was lost) gets the same transaction, not "locked"
  r = prep(id)
  t.eq(r.status, 201, r.body)
  t.eq(r.json.id, id)
  t.eq(r.json.state, "prepared")
  expect_error(prep(id, WRITE2), 409, "transaction_exists")
  expect_error(prep("not-hex"), 400, "bad_request", "transaction id")
  t.eq(commit(id).status, 200)
  r = prep(id)
  t.eq(r.status, 200)
  t.eq(r.json.state, "committed")
  -- aborting an id the server never saw records it: a late prepare is refused
  local never = ("cd"):rep(16)
  r = req("POST", "/api/v1/transactions/" .. never .. "/abort", { token = WRITE })
  t.eq(r.status, 200, r.body)
  t.eq(r.json.state, "aborted")
  local n2 = version_object("ui/nav", "0.0.2", { parents = { n1 } })
  upload_version(n2)
  body[1].versions = json.array({ { version = "0.0.2", id = n2 } })
  expect_error(prep(never), 409, "transaction_aborted")
  t.eq(component("ui/nav").json.head, "0.0.1")
end)

t.test("an expired transaction (24 h) is aborted and its lock ignored", function()
  if not sh("command -v sqlite3") or sh("command -v sqlite3") == "" then
    print("# skipped: no sqlite3 command to age the transaction")
    return
  end
  local m1 = version_object("ui/menu", "0.0.1")
  upload_version(m1)
  local r = prepare({ { scope = "my-org.ui", name = "ui/menu", versions = { { version = "0.0.1", id = m1 } } } })
  t.eq(r.status, 201, r.body)
  local old = r.json.id
  local _, ok = sh(("sqlite3 %s \"UPDATE transactions SET expires_at = 0 WHERE id = '%s'\""):format(q(ROOT .. "/server.db"), old))
  t.ok(ok, "aged the transaction")
  t.eq(req("GET", "/api/v1/transactions/" .. old, { token = WRITE }).json.state, "aborted")
  -- the expired lock does not block a new export
  local again = prepare({ { scope = "my-org.ui", name = "ui/menu", versions = { { version = "0.0.1", id = m1 } } } }, WRITE2)
  t.eq(again.status, 201, again.body)
  expect_error(commit(old), 409, "transaction_aborted")
  t.eq(commit(again.json.id, WRITE2).status, 200)
  t.eq(component("ui/menu").json.head_id, m1)
end)

t.test("one transaction spans several scopes: all or nothing", function()
  local w1 = version_object("site", "1.0.0")
  local u1 = version_object("ui/badge", "0.0.1")
  local bad = ls:put("not uploaded blob")
  local u2 = version_object("ui/badge", "0.0.2", { parents = { u1 }, blob_ids = { bad } })
  upload_version(w1, "my-org.web")
  upload_version(u1)
  t.eq(upload(u2).status, 201)
  local r = prepare({
    { scope = "my-org.web", name = "site", versions = { { version = "1.0.0", id = w1 } } },
    { scope = "my-org.ui", name = "ui/badge", versions = { { version = "0.0.1", id = u1 }, { version = "0.0.2", id = u2 } } },
  })
  expect_error(r, 409, "missing_object", "ui/badge@0.0.2")
  -- nothing locked, nothing published
  expect_error(component("site", "my-org.web"), 404, "component_not_found")
  r = prepare({
    { scope = "my-org.web", name = "site", versions = { { version = "1.0.0", id = w1 } } },
    { scope = "my-org.ui", name = "ui/badge", versions = { { version = "0.0.1", id = u1 } } },
  })
  t.eq(r.status, 201, r.body)
  t.eq(commit(r.json.id).status, 200)
  t.eq(component("site", "my-org.web").json.head_id, w1)
  t.eq(component("ui/badge").json.head_id, u1)
end)

t.test("permissions: read-only, other-scope and anonymous callers", function()
  local id = ls:put("permission test blob")
  expect_error(upload(id, { token = READ }), 403, "forbidden", "write permission")
  expect_error(missing({ id }, { token = READ }), 403, "forbidden", "my-org.ui")
  local r = prepare({ { scope = "my-org.ui", name = "ui/x", versions = { { version = "0.0.1", id = id } } } }, READ)
  expect_error(r, 403, "forbidden", "write permission on scope my-org.ui")
  t.eq(req("GET", "/api/v1/scopes/my-org.ui/components", { token = READ }).status, 200)
  -- a token for another scope
  expect_error(req("GET", "/api/v1/scopes/my-org.ui/components", { token = OTHER }), 403, "forbidden")
  expect_error(upload(id, { token = OTHER }), 403, "forbidden")
  expect_error(req("GET", "/api/v1/scopes/my-org.nothing", { token = OTHER }), 403, "forbidden")
  expect_error(req("GET", "/api/v1/scopes/my-org.nothing", { token = READ }), 404, "scope_not_found")
  -- anonymous: public scopes readable, not writable; private ones need a token
  t.eq(req("GET", "/api/v1/scopes/pub/components").status, 200)
  t.eq(req("GET", "/api/v1/scopes/pub").json.public, true)
  expect_error(upload(id, { scope = "pub", token = false }), 401, "unauthorized")
  expect_error(upload(id, { scope = "pub", token = OTHER }), 403, "forbidden")
  expect_error(req("GET", "/api/v1/scopes/my-org.ui/components"), 401, "unauthorized")
  expect_error(req("POST", "/api/v1/transactions", { json = { components = {} } }), 401, "unauthorized")
  expect_error(req("GET", "/api/v1/scopes/my-org.ui", { token = "bbit_" .. ("0"):rep(40) }), 401, "unauthorized")
  -- routes and methods
  expect_error(req("GET", "/api/v1/nothing"), 404, "not_found")
  expect_error(req("DELETE", "/api/v1/scopes/pub/components"), 405, "method_not_allowed")
  expect_error(req("GET", "/api/v1/scopes/pub/component", { token = READ }), 400, "bad_request", "name=")
end)

t.test("kill -9 between prepare and commit: the commit succeeds after a restart", function()
  local c1 = version_object("ui/dialog", "0.0.1", { files = { { path = "a.js", data = "a" } } })
  local c2 = version_object("ui/dialog", "0.0.2", { files = { { path = "a.js", data = "b" } }, parents = { c1 } })
  upload_version(c1)
  upload_version(c2)
  local r = prepare({ { scope = "my-org.ui", name = "ui/dialog", versions = { { version = "0.0.1", id = c1 }, { version = "0.0.2", id = c2 } } } })
  t.eq(r.status, 201, r.body)
  kill(S, "9")
  S = start()
  expect_error(component("ui/dialog"), 404, "component_not_found")
  expect_error(prepare({ { scope = "my-org.ui", name = "ui/dialog", versions = { { version = "0.0.1", id = c1 } } } }, WRITE2), 409, "locked")
  local c = commit(r.json.id)
  t.eq(c.status, 200, c.body)
  local comp = component("ui/dialog").json
  t.eq(comp.head, "0.0.2")
  t.eq(#comp.versions, 2)
  t.eq(comp.versions[1].id, c1)
  t.eq(comp.versions[2].id, c2)
end)

t.test("kill -9 during a large upload: the object is absent, a re-upload works", function()
  local big = TMP .. "/big.bin"
  sh("head -c 12000000 /dev/urandom > " .. q(big))
  local id = ls:put_file(big)
  local obj = ls:path(id)
  local curl_log = TMP .. "/curl.log"
  sh(("curl -s -o /dev/null --limit-rate 1M -T %s -H %s %s >%s 2>&1 & echo $!"):format(
    q(obj), q("Authorization: Bearer " .. WRITE), q(S.url .. "/api/v1/scopes/my-org.ui/objects/" .. id), q(curl_log)))
  -- wait until the server has started writing the temp file
  local tmpdir = ROOT .. "/scopes/my-org.ui/objects/tmp"
  local started = false
  for _ = 1, 100 do
    local n = sh("find " .. q(tmpdir) .. " -type f -size +100k | wc -l")
    if tonumber(n) and tonumber(n) > 0 then
      started = true
      break
    end
    sleep(0.1)
  end
  t.ok(started, "the upload was streaming into a temp file")
  kill(S, "9")
  t.ok(not fs.exists(server_object_path("my-org.ui", id)), "no half-present object")
  S = start()
  t.eq(missing({ id }).json.missing, { id })
  local r = upload(id)
  t.eq(r.status, 201, r.body)
  t.eq(missing({ id }).json.missing, {})
  local dl = TMP .. "/big.dl"
  r = req("GET", "/api/v1/scopes/my-org.ui/objects/" .. id, { token = READ, output_file = dl })
  t.eq(r.status, 200)
  t.eq(fs.read(dl), fs.read(obj))
end)

t.test("the request log never shows tokens", function()
  for _, srv in ipairs(servers) do
    local text = fs.try_read(srv.log) or ""
    for _, tok in ipairs({ WRITE, WRITE2, READ, OTHER, ADMIN }) do
      t.ok(not text:find(tok, 1, true), "token in " .. srv.log)
    end
  end
  t.contains(fs.read(servers[1].log), "GET /api/v1/health 200")
end)

t.test("SIGTERM stops the server", function()
  kill(S, "TERM")
  sleep(0.3)
  t.contains(fs.read(S.log), "bbit serve: stopped")
  local r = http.try_request({ url = S.url .. "/api/v1/health", retries = 0, raise = false })
  t.ok(r == nil, "no answer after SIGTERM")
  -- under the sanitizer build, a clean exit reports no leak or error
  for _, srv in ipairs(servers) do
    t.ok(not (fs.try_read(srv.log) or ""):find("Sanitizer", 1, true), "sanitizer report in " .. srv.log)
  end
end)

for _, srv in ipairs(servers) do
  os.execute(("kill -9 %s 2>/dev/null"):format(srv.pid))
end
ls:close()
t.done()
