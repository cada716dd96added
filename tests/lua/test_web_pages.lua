-- The scope server's web pages (SPEC §7) and web sign-in (SPEC §6) without a
-- browser, through bbit.http against a real `bbit serve`: status codes,
-- security headers, HTML escaping of client data, who sees which scope,
-- files/raw/artifacts, CSRF, port/state validation, sign-out, token
-- revocation and the sign-in rate limit (the last tests: they block the IP).
local t = require("testlib")
local http = require("bbit.http")
local json = require("bbit.json")
local fs = require("bbit.fs")

local BBIT = assert(os.getenv("BBIT"), "run through ctest (BBIT unset)")
local TMP = t.tmpdir()
local ROOT = TMP .. "/root"
local WS = TMP .. "/ws"
local SRC = assert(os.getenv("BBIT_SRC"), "run through ctest (BBIT_SRC unset)")
local XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
local XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"
local WEIRD_FILE = "<img src=x onerror=alert(3)>.js"

local q = t.quote

-- Runs a shell command; returns its stdout (trimmed) and whether it succeeded.
local function sh(cmd)
  local p = io.popen(cmd .. " 2>" .. q(TMP .. "/sh.err"))
  local out = p:read("a")
  local ok = p:close()
  return (out:gsub("%s+$", "")), ok
end

local ENV = ("env BBIT_HOME=%s SOURCE_DATE_EPOCH=1700000000 BBIT_AUTHOR_NAME=ci BBIT_AUTHOR_EMAIL=ci@example.com ")
  :format(q(TMP .. "/home"))

local function bbit(args, env)
  local out, ok = sh(ENV .. (env or "") .. " " .. q(BBIT) .. " " .. args)
  assert(ok, "bbit " .. args .. " failed: " .. out .. fs.read(TMP .. "/sh.err"))
  return out
end

-- ---------------------------------------------------------------------------
-- A server root: my-org.ui (private), my-org.my-scope (public), other.scope
-- (private), users alice (my-org.*=write), bob and carol (no grants).
bbit("server init --root " .. q(ROOT))
bbit("server scope create my-org.ui --root " .. q(ROOT))
bbit("server scope create my-org.my-scope --public --root " .. q(ROOT))
bbit("server scope create other.scope --root " .. q(ROOT))
for _, user in ipairs({ "alice", "bob", "carol" }) do
  local grant = user == "alice" and " --grant 'my-org.*=write'" or ""
  sh(("echo 'password-of-%s' | %s server user add %s --password-stdin%s --root %s"):format(user, q(BBIT), user, grant, q(ROOT)))
end
local TOKEN = bbit("server token create alice --scope 'my-org.*' --role write --root " .. q(ROOT)):match("[^\n]*$")

local log = TMP .. "/serve.log"
local PID = sh(("%s serve --root %s --listen 127.0.0.1:0 </dev/null >/dev/null 2>%s & echo $!"):format(q(BBIT), q(ROOT), q(log)))
local URL
for _ = 1, 200 do
  local port = (fs.try_read(log) or ""):match("listening on http://127%.0%.0%.1:(%d+)")
  if port then
    URL = "http://127.0.0.1:" .. port
    break
  end
  os.execute("sleep 0.05")
end
assert(URL, "the server did not start: " .. (fs.try_read(log) or ""))

-- The getting-started workspace, tagged twice (ui/button gets 0.0.2), plus
-- demo/xss (in the public my-org.my-scope, depending on ui/theme of the
-- private my-org.ui) whose log message, author and a file name are hostile.
local function stop_server()
  os.execute("kill " .. PID .. " 2>/dev/null")
end

local function setup_workspace()
  sh(("cp -r %s %s"):format(q(SRC .. "/examples/getting-started"), q(WS)))
  local function ws_cmd(args, env)
    local out, ok = sh(("cd %s && %s%s %s %s"):format(q(WS), ENV, env or "", q(BBIT), args))
    assert(ok, "bbit " .. args .. " failed: " .. out .. fs.read(TMP .. "/sh.err"))
    return out
  end
  ws_cmd("init")
  ws_cmd("add components/ui/theme components/ui/button components/utils/format")
  ws_cmd("tag -m 'first version'")
  fs.write(WS .. "/components/ui/button/index.js", fs.read(WS .. "/components/ui/button/index.js") .. "// v2\n")
  ws_cmd("tag ui/button -m 'second version'")
  fs.mkdir(WS .. "/components/demo/xss")
  fs.write(WS .. "/components/demo/xss/index.js", 'import { theme } from "../../ui/theme";\nexport const x = 1;\n')
  fs.write(WS .. "/components/demo/xss/" .. WEIRD_FILE, "weird\n")
  fs.write(WS .. "/components/demo/xss/data.bin", "a\0b\1\2\255")
  ws_cmd("add components/demo/xss")
  ws_cmd("tag demo/xss -m " .. q(XSS), "BBIT_AUTHOR_NAME='<i>mallory</i>'")
  ws_cmd("remote add " .. URL .. " --scope 'my-org.*'")
  ws_cmd("export", "BBIT_TOKEN=" .. TOKEN)
end

local setup_ok, setup_err = pcall(setup_workspace)
if not setup_ok then
  stop_server() -- never leave the server behind
  error(setup_err, 0)
end

-- ---------------------------------------------------------------------------
local function req(method, path, opts)
  opts = opts or {}
  opts.method = method
  opts.url = URL .. path
  opts.raise = false
  opts.retries = 0
  return http.request(opts)
end

local function get(path, cookie)
  return req("GET", path, { headers = cookie and { Cookie = "bbit_session=" .. cookie } or nil })
end

local function expect_page(r, status, part)
  t.eq(r.status, status, "status (" .. tostring(r.body):sub(-600) .. ")")
  t.eq(r.headers["content-type"], "text/html; charset=utf-8")
  if part then
    t.contains(r.body, part)
  end
end

-- The CSRF nonce of a fresh form (field and cookie) and the response.
local function form(query)
  local r = req("GET", "/login" .. (query or ""))
  expect_page(r, 200, "<form")
  local field = r.body:match('name="csrf" value="(%x+)"')
  local cookie = (r.headers["set-cookie"] or ""):match("bbit_csrf=(%x+)")
  t.ok(field and cookie and field == cookie, "the form's csrf field equals its cookie")
  return field
end

local function post(path, fields, cookies, content_type)
  local cookie = {}
  for k, v in pairs(cookies or {}) do
    cookie[#cookie + 1] = k .. "=" .. v
  end
  return req("POST", path, {
    body = type(fields) == "string" and fields or http.query_string(fields),
    headers = { ["Content-Type"] = content_type or "application/x-www-form-urlencoded", Cookie = table.concat(cookie, "; ") },
  })
end

-- Signs in with a fresh form; extra fields (port/state/name) are added.
local function login(user, password, extra, query)
  local nonce = form(query)
  local fields = { csrf = nonce, username = user, password = password }
  for k, v in pairs(extra or {}) do
    fields[k] = v
  end
  return post("/login", fields, { bbit_csrf = nonce })
end

local function tokens()
  return json.decode(bbit("server token list --json --root " .. q(ROOT)))
end

local function whoami(token)
  return req("GET", "/api/v1/whoami", { token = token })
end

local SESSION -- alice's web session

-- ---------------------------------------------------------------------------
t.test("pages carry the security headers", function()
  local r = get("/")
  expect_page(r, 200)
  local csp = r.headers["content-security-policy"]
  t.contains(csp, "default-src 'none'")
  t.contains(csp, "style-src 'unsafe-inline'")
  t.contains(csp, "form-action 'self' http://127.0.0.1:*")
  t.contains(csp, "frame-ancestors 'none'")
  t.ok(not csp:find("script%-src"), "no script source allowed")
  t.eq(r.headers["x-content-type-options"], "nosniff")
  t.eq(r.headers["x-frame-options"], "DENY")
  t.eq(r.headers["cache-control"], "no-store")
  for _, path in ipairs({ "/login", "/nope.scope", "/my-org.my-scope/demo/xss" }) do
    t.eq(get(path).headers["content-security-policy"], csp, path)
  end
  t.ok(not r.body:find("<script", 1, true), "no script on the page")
  t.ok(not r.body:find("https?://"), "no external assets")
end)

t.test("anonymous: / lists only the public scope, with a sign-in link", function()
  local r = get("/")
  expect_page(r, 200, 'href="/my-org.my-scope"')
  t.contains(r.body, 'id="signin"')
  t.ok(not r.body:find("my-org.ui", 1, true), "private my-org.ui not listed")
  t.ok(not r.body:find("other.scope", 1, true), "private other.scope not listed")
  t.contains(r.body, '<span class="badge public">public</span></td><td class="num">2</td>')
end)

t.test("anonymous: private and unknown scopes are the same 404", function()
  local a = get("/my-org.ui")
  expect_page(a, 404, "scope my-org.ui does not exist on this server or you may not read it")
  local b = get("/no-such.scope")
  expect_page(b, 404, "scope no-such.scope does not exist on this server or you may not read it")
  t.eq(a.body:gsub("my%-org%.ui", "X"), (b.body:gsub("no%-such%.scope", "X")), "same page")
  expect_page(get("/my-org.ui/ui/button"), 404, "scope my-org.ui does not exist")
  expect_page(get("/my-org.ui/ui/button/-/raw/index.js"), 404)
  expect_page(get("/my-org.ui/ui/button/-/artifact/package.tgz"), 404)
  expect_page(get("/Bad..Scope"), 404)
end)

t.test("web sign-in: 303 to / with an HttpOnly SameSite=Strict session cookie (a login token)", function()
  local before = #tokens()
  local r = login("alice", "password-of-alice")
  t.eq(r.status, 303, r.body)
  t.eq(r.headers.location, "/")
  local cookie = r.headers["set-cookie"]
  SESSION = cookie:match("bbit_session=(bbit_%x+)")
  t.ok(SESSION, "a session token in " .. cookie)
  t.contains(cookie, "HttpOnly")
  t.contains(cookie, "SameSite=Strict")
  t.contains(cookie, "Path=/")
  local list = tokens()
  t.eq(#list, before + 1, "one token issued")
  t.eq(list[#list].user, "alice")
  t.eq(list[#list].name, "web sign-in")
  local me = whoami(SESSION)
  t.eq(me.status, 200)
  t.eq(me.json.grants, { { scope = "my-org.*", role = "write" } }, "acts with the user's grants")
end)

t.test("signed in: / lists the scopes alice may read and a sign-out form", function()
  local r = get("/", SESSION)
  expect_page(r, 200, 'Signed in as <b id="viewer">alice</b>')
  t.contains(r.body, 'href="/my-org.ui"')
  t.contains(r.body, 'href="/my-org.my-scope"')
  t.ok(not r.body:find("other.scope", 1, true), "other.scope is not alice's")
  t.contains(r.body, 'action="/logout"')
  t.ok(r.body:match('name="csrf" value="%x+"'), "the sign-out form has a csrf token")
  expect_page(get("/other.scope", SESSION), 404)
end)

t.test("a scope page lists its components with the latest version and date", function()
  local r = get("/my-org.ui", SESSION)
  expect_page(r, 200, '<a class="component" href="/my-org.ui/ui/button">ui/button</a>')
  t.contains(r.body, '<a class="component" href="/my-org.ui/ui/theme">ui/theme</a>')
  t.contains(r.body, "<code>0.0.2</code>")
  t.ok(r.body:match("%d%d%d%d%-%d%d%-%d%d %d%d:%d%d UTC"), "a date")
  t.eq(get("/my-org.ui/", SESSION).body, r.body, "a trailing slash is the same page")
end)

t.test("a component page: versions newest first with log, dependencies, files, artifacts", function()
  local r = get("/my-org.ui/ui/button", SESSION)
  expect_page(r, 200, '<h1 id="component">ui/button <span class="muted">@0.0.2</span>')
  local v2 = r.body:find('href="/my-org.ui/ui/button?v=0.0.2"', 1, true)
  local v1 = r.body:find('href="/my-org.ui/ui/button?v=0.0.1"', 1, true)
  t.ok(v2 and v1 and v2 < v1, "0.0.2 listed before 0.0.1")
  t.contains(r.body, "second version")
  t.contains(r.body, "first version")
  t.contains(r.body, "<td>ci &lt;ci@example.com&gt;</td>")
  t.contains(r.body, '<a class="dependency" href="/my-org.ui/ui/theme?v=0.0.1">ui/theme</a>')
  t.contains(r.body, '<a class="file" href="/my-org.ui/ui/button/-/file/index.js?v=0.0.2">index.js</a>')
  t.contains(r.body, '<a class="artifact" download href="/my-org.ui/ui/button/-/artifact/package.tgz?v=0.0.2">package.tgz</a>')
  t.contains(r.body, "<code>644</code>")
  -- the dependency link leads to the dependency's page
  expect_page(get("/my-org.ui/ui/theme?v=0.0.1", SESSION), 200, '<h1 id="component">ui/theme')
end)

t.test("?v= selects a version; an unknown version or component is 404", function()
  local r = get("/my-org.ui/ui/button?v=0.0.1", SESSION)
  expect_page(r, 200, '<span class="muted">@0.0.1</span>')
  t.contains(r.body, '<p class="message" id="log-message">first version</p>')
  t.contains(r.body, "/-/file/index.js?v=0.0.1")
  expect_page(get("/my-org.ui/ui/button?v=9.9.9", SESSION), 404, "has no version 9.9.9")
  expect_page(get("/my-org.ui/ui/nothing", SESSION), 404, "component my-org.ui/ui/nothing does not exist")
  expect_page(get("/my-org.ui/UI/Bad", SESSION), 404)
end)

t.test("a file view shows the source escaped in a <pre>; raw serves its bytes", function()
  local source = fs.read(WS .. "/components/ui/button/index.js")
  local r = get("/my-org.ui/ui/button/-/file/index.js?v=0.0.2", SESSION)
  expect_page(r, 200, '<pre id="content">')
  t.contains(r.body, "return `&lt;button style=&quot;color: ${theme.primary}&quot;&gt;${label}&lt;/button&gt;`;")
  t.ok(not r.body:find("<button style", 1, true), "the source is not markup")
  local raw = get("/my-org.ui/ui/button/-/raw/index.js?v=0.0.2", SESSION)
  t.eq(raw.status, 200)
  t.eq(raw.body, source)
  t.eq(raw.headers["content-type"], "text/plain; charset=utf-8")
  t.contains(raw.headers["content-disposition"], 'inline; filename="index.js"')
  t.eq(raw.headers["x-content-type-options"], "nosniff")
  local dl = get("/my-org.ui/ui/button/-/raw/index.js?v=0.0.2&download=1", SESSION)
  t.contains(dl.headers["content-disposition"], "attachment")
  -- 0.0.1 has the old bytes
  local old = get("/my-org.ui/ui/button/-/raw/index.js?v=0.0.1", SESSION)
  t.eq(old.body .. "// v2\n", source)
end)

t.test("an artifact downloads as application/gzip attachment", function()
  local r = get("/my-org.ui/ui/button/-/artifact/package.tgz?v=0.0.2", SESSION)
  t.eq(r.status, 200)
  t.eq(r.headers["content-type"], "application/gzip")
  t.contains(r.headers["content-disposition"], 'attachment; filename="package.tgz"')
  t.eq(r.body:sub(1, 2), "\31\139", "gzip magic")
  local page = get("/my-org.ui/ui/button?v=0.0.2", SESSION).body
  t.ok(page:find(("package.tgz</a></td><td class=\"num\">%d B</td>"):format(#r.body), 1, true), "the listed size")
end)

t.test("missing files, artifacts and unknown item kinds are 404", function()
  expect_page(get("/my-org.ui/ui/button/-/file/nope.js", SESSION), 404, "has no file nope.js")
  expect_page(get("/my-org.ui/ui/button/-/raw/../../etc/passwd", SESSION), 404)
  expect_page(get("/my-org.ui/ui/button/-/artifact/nope.tgz", SESSION), 404, "has no artifact nope.tgz")
  expect_page(get("/my-org.ui/ui/button/-/tree/index.js", SESSION), 404)
  expect_page(get("/my-org.ui/ui/button/-/file/", SESSION), 404)
end)

t.test("XSS: log message, author and file names from the client are escaped", function()
  local r = get("/my-org.my-scope/demo/xss")
  expect_page(r, 200, '<p class="message" id="log-message">' .. XSS_ESCAPED .. "</p>")
  t.ok(not r.body:find(XSS, 1, true), "the payload is not markup")
  t.ok(not r.body:find("<script", 1, true) and not r.body:find("<img", 1, true) and not r.body:find("<i>", 1, true),
    "no injected element")
  t.contains(r.body, "&lt;i&gt;mallory&lt;/i&gt;")
  t.contains(r.body, '/-/file/%3Cimg%20src%3Dx%20onerror%3Dalert%283%29%3E.js?v=0.0.1">&lt;img src=x onerror=alert(3)&gt;.js</a>')
  local f = get("/my-org.my-scope/demo/xss/-/file/" .. http.escape(WEIRD_FILE) .. "?v=0.0.1")
  expect_page(f, 200, '<h1 id="path">&lt;img src=x onerror=alert(3)&gt;.js</h1>')
  t.contains(f.body, '<pre id="content">weird\n</pre>')
end)

t.test("dependencies: linked only where the viewer may read them", function()
  -- demo/xss (public scope) depends on ui/theme in the private my-org.ui
  local anon = get("/my-org.my-scope/demo/xss")
  t.contains(anon.body, '<span class="dependency">ui/theme</span>')
  t.contains(anon.body, "not on this server")
  local alice = get("/my-org.my-scope/demo/xss", SESSION)
  t.contains(alice.body, '<a class="dependency" href="/my-org.ui/ui/theme?v=0.0.1">ui/theme</a>')
end)

t.test("a binary file: a notice instead of text; raw is an octet-stream attachment", function()
  local r = get("/my-org.my-scope/demo/xss/-/file/data.bin")
  expect_page(r, 200, "This is a binary file")
  t.ok(not r.body:find('<pre id="content">', 1, true), "no text shown")
  local raw = get("/my-org.my-scope/demo/xss/-/raw/data.bin")
  t.eq(raw.body, "a\0b\1\2\255")
  t.eq(raw.headers["content-type"], "application/octet-stream")
  t.contains(raw.headers["content-disposition"], 'attachment; filename="data.bin"')
end)

t.test("/login validates port and state on GET and POST", function()
  expect_page(req("GET", "/login?port=4000&state=abc123&name=my%3Chost%3E"), 200, "Signing in the bbit command line on <b>my-host-</b>")
  local bad = {
    "?port=80&state=abc", "?port=65536&state=abc", "?port=abc&state=abc", "?port=4000",
    "?state=abc", "?port=4000&state=a%21b", "?port=4000&state=" .. ("a"):rep(129), "?port=04000000&state=a",
  }
  for _, query in ipairs(bad) do
    expect_page(req("GET", "/login" .. query), 400, "This sign-in link is not valid")
  end
  local before = #tokens()
  local r = login("alice", "password-of-alice", { port = "99999", state = "abc" })
  expect_page(r, 400, "port must be a number from 1024 to 65535")
  r = login("alice", "password-of-alice", { port = "4000", state = "<script>" })
  expect_page(r, 400, "state must be 1 to 128 letters and digits")
  t.eq(#tokens(), before, "nothing issued")
end)

t.test("CSRF: POST /login needs the form's nonce in both field and cookie, once", function()
  local before = #tokens()
  local function refused(r)
    expect_page(r, 403, "This sign-in form has expired or was not sent by this server")
  end
  refused(post("/login", { username = "alice", password = "password-of-alice" }))
  local nonce = form()
  refused(post("/login", { csrf = nonce, username = "alice", password = "password-of-alice" }))
  refused(post("/login", { username = "alice", password = "password-of-alice" }, { bbit_csrf = nonce }))
  local other = form()
  refused(post("/login", { csrf = nonce, username = "alice", password = "password-of-alice" }, { bbit_csrf = other }))
  refused(post("/login", { csrf = ("0"):rep(32), username = "alice", password = "password-of-alice" }, { bbit_csrf = ("0"):rep(32) }))
  t.eq(#tokens(), before, "nothing issued")
  local ok = post("/login", { csrf = nonce, username = "alice", password = "password-of-alice" }, { bbit_csrf = nonce })
  t.eq(ok.status, 303)
  local again = post("/login", { csrf = nonce, username = "alice", password = "password-of-alice" }, { bbit_csrf = nonce })
  refused(again)
  t.eq(#tokens(), before + 1, "one token for the one valid form")
end)

t.test("a wrong password or unknown user: 401, the same message, nothing issued", function()
  local before = #tokens()
  local r = login("alice", "not her password")
  expect_page(r, 401, "Wrong username or password.")
  t.contains(r.body, 'value="alice"')
  t.ok(not r.headers["set-cookie"]:find("bbit_session", 1, true), "no session cookie")
  local u = login("nobody", "whatever")
  expect_page(u, 401, "Wrong username or password.")
  t.eq(#tokens(), before, "nothing issued")
end)

t.test("CLI sign-in: 303 to the listener with state and a login token named after the machine", function()
  local before = #tokens()
  local r = login("alice", "password-of-alice", { port = "4567", state = "abcDEF123", name = "my laptop<>" },
    "?port=4567&state=abcDEF123&name=my%20laptop")
  t.eq(r.status, 303, r.body)
  local token = r.headers.location:match("^http://127%.0%.0%.1:4567/callback%?state=abcDEF123&token=(bbit_%x+)$")
  t.ok(token, "callback location: " .. tostring(r.headers.location))
  t.ok(not (r.headers["set-cookie"] or ""):find("bbit_session", 1, true), "no web session for the CLI")
  local me = whoami(token)
  t.eq(me.status, 200)
  t.eq(me.json.user, "alice")
  t.eq(me.json.token.name, "login from my-laptop--")
  t.eq(me.json.grants, { { scope = "my-org.*", role = "write" } })
  t.eq(#tokens(), before + 1)
end)

t.test("bad form requests: wrong content type 415, too large 413, bad encoding 400", function()
  expect_page(post("/login", '{"username": "alice"}', nil, "application/json"), 415)
  expect_page(post("/login", "username=" .. ("a"):rep(20000)), 413)
  expect_page(post("/login", "username=%zz"), 400, "not correctly encoded")
  expect_page(post("/login", "username=a%00b"), 400)
end)

t.test("methods: 405 with Allow", function()
  local r = req("DELETE", "/")
  expect_page(r, 405)
  t.eq(r.headers.allow, "GET, HEAD")
  r = req("GET", "/logout")
  expect_page(r, 405)
  t.eq(r.headers.allow, "POST")
  t.eq(req("HEAD", "/").status, 200)
end)

t.test("sign-out: needs its CSRF token; revokes the session and clears the cookie", function()
  local r = login("alice", "password-of-alice")
  local session = r.headers["set-cookie"]:match("bbit_session=(bbit_%x+)")
  local page = get("/", session).body
  local csrf = page:match('action="/logout"><input type="hidden" name="csrf" value="(%x+)"')
  t.ok(csrf, "the sign-out form's token")
  expect_page(post("/logout", { csrf = ("0"):rep(32) }, { bbit_session = session }), 403, "Sign-out refused")
  expect_page(post("/logout", {}, { bbit_session = session }), 403)
  t.eq(whoami(session).status, 200, "still signed in")
  local out = post("/logout", { csrf = csrf }, { bbit_session = session })
  t.eq(out.status, 303)
  t.eq(out.headers.location, "/")
  t.contains(out.headers["set-cookie"], "bbit_session=; Max-Age=0")
  t.eq(whoami(session).status, 401, "the session token is revoked")
  -- the old cookie now browses anonymously and is cleared
  local stale = get("/", session)
  expect_page(stale, 200, 'id="signin"')
  t.ok(not stale.body:find("my-org.ui", 1, true), "anonymous view")
  t.contains(stale.headers["set-cookie"], "bbit_session=; Max-Age=0")
end)

t.test("POST /api/v1/logout revokes the calling token", function()
  local token = bbit("server token create alice --scope 'my-org.*' --role read --root " .. q(ROOT)):match("[^\n]*$")
  t.eq(whoami(token).status, 200)
  local r = req("POST", "/api/v1/logout", { token = token })
  t.eq(r.status, 200, r.body)
  t.eq(r.json, { revoked = true })
  t.eq(whoami(token).status, 401)
  t.eq(req("POST", "/api/v1/logout", { token = token }).status, 401, "already revoked")
  t.eq(req("POST", "/api/v1/logout").status, 401, "no token")
  t.eq(req("GET", "/api/v1/logout", { token = TOKEN }).status, 405)
  local listed
  for _, tk in ipairs(tokens()) do
    if tk.revoked_at and tk.grants[1] and tk.grants[1].role == "read" then
      listed = true
    end
  end
  t.ok(listed, "token list shows it revoked")
end)

t.test("rate limit per user: 429 after 5 failures, without checking the password", function()
  for i = 1, 5 do
    expect_page(login("bob", "wrong " .. i), 401, "Wrong username or password")
  end
  local before = #tokens()
  local r = login("bob", "password-of-bob")
  expect_page(r, 429, "Too many failed sign-in attempts")
  t.eq(r.headers["retry-after"], "900")
  t.eq(#tokens(), before, "nothing issued to bob")
  -- other users are not blocked
  t.eq(login("carol", "password-of-carol").status, 303)
end)

t.test("rate limit per address: 429 for everyone after 20 failures from one IP", function()
  -- failures so far from 127.0.0.1: alice 1, nobody 1, bob 5
  for i = 1, 13 do
    expect_page(login("user" .. i, "wrong"), 401)
  end
  local r = login("alice", "password-of-alice")
  expect_page(r, 429, "Too many failed sign-in attempts")
end)

t.test("the server stops cleanly on SIGTERM (no sanitizer report in its log)", function()
  stop_server()
  for _ = 1, 200 do
    if not os.execute("kill -0 " .. PID .. " 2>/dev/null") then
      break
    end
    os.execute("sleep 0.05")
  end
  local text = fs.read(log)
  t.contains(text, "bbit serve: stopped")
  t.ok(not text:find("Sanitizer", 1, true) and not text:find("runtime error:", 1, true), "sanitizer report:\n" .. text:sub(-3000))
end)

t.done()
