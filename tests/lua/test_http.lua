-- bbit.http against bbit-testserver (tests/support/testserver.c) on 127.0.0.1.
local t = require("testlib")
local http = require("bbit.http")
local core = require("bbit.core.http")
local jobs = require("bbit.jobs")

local SERVER = assert(os.getenv("BBIT_TESTSERVER"), "run through ctest (BBIT_TESTSERVER unset)")
local BBIT = os.getenv("BBIT") or require("bbit.core.host").exe()
local MB = 1024 * 1024

local function sleep_ms(ms)
  core.wait({}, ms)
end

local function sh_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then
    f:close()
  end
  return f ~= nil
end

local function capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  p:close()
  return out
end

local function sha256_of(path)
  return capture("sha256sum " .. sh_quote(path)):match("^(%x+)")
end

local function file_size(path)
  local f = assert(io.open(path, "rb"))
  local n = f:seek("end")
  f:close()
  return n
end

local function dir_entries(dir)
  local names = {}
  for name in capture("ls -A " .. sh_quote(dir)):gmatch("[^\n]+") do
    names[#names + 1] = name
  end
  table.sort(names)
  return names
end

-- The test server: stdin is our pipe (closing it stops the server), stdout a file.
local function start_server(dir)
  local out = dir .. "/server.out"
  local pipe = assert(io.popen(("exec %s > %s"):format(sh_quote(SERVER), sh_quote(out)), "w"))
  for _ = 1, 200 do
    local text = read_file(out) or ""
    local port = text:match("PORT (%d+)")
    if port then
      return {
        url = "http://127.0.0.1:" .. port,
        port = tonumber(port),
        stop = function()
          return pipe:close()
        end,
      }
    end
    sleep_ms(25)
  end
  pipe:close()
  error("bbit-testserver did not start: " .. (read_file(out) or ""))
end

local json = require("bbit.json")

local tmp = t.tmpdir()
local server = start_server(tmp)
local URL = server.url

-- A port nothing listens on: a second server, started and stopped.
local closed_port = (function()
  local dir = tmp .. "/closed"
  os.execute("mkdir -p " .. sh_quote(dir))
  local s = start_server(dir)
  s.stop()
  return s.port
end)()

-- Both transports run this file: bbit's plain HTTP/1.1 one (the default for
-- these http://127.0.0.1 URLs) and libcurl (ctest's lua/test_http_curl sets BBIT_HTTP=curl).
local CURL_ONLY = os.getenv("BBIT_HTTP") == "curl"

local function libcurl_loaded()
  return read_file("/proc/self/maps"):find("libcurl", 1, true) ~= nil
end

---------------------------------------------------------------------------
-- transports

-- First: every later test may load libcurl (https, redirects).
t.test("http:// requests do not load libcurl (unless BBIT_HTTP=curl)", function()
  t.eq(libcurl_loaded(), false, "not loaded at start")
  t.eq(http.get(URL .. "/echo").status, 200)
  -- a host name: looked up, then each address tried (::1 may refuse first)
  local by_name = http.get(("http://localhost:%d/echo"):format(server.port)).json
  t.eq(by_name.headers.host, "localhost:" .. server.port)
  t.raises(function() http.get("http://no-such-host.invalid:1/x", { retries = 0 }) end,
    "GET http://no-such-host.invalid:1/x: cannot resolve host 'no-such-host.invalid' (check the URL and the network)")
  http.prefetch(URL) -- a no-op for such a URL
  sleep_ms(50)
  t.eq(libcurl_loaded(), CURL_ONLY)
  http.prefetch("https://127.0.0.1:1") -- loads on another thread: wait for it (5 s at most)
  for _ = 1, 100 do
    if libcurl_loaded() then
      break
    end
    sleep_ms(50)
  end
  t.eq(libcurl_loaded(), true, "prefetched for an https:// URL")
end)

t.test("consecutive requests to one server reuse one connection", function()
  local a = http.get(URL .. "/echo?n=1").json
  local b = http.post(URL .. "/echo?n=2", { body = "x" }).json
  local c = http.get(URL .. "/echo?n=3").json
  t.ok(a.peer_port > 0, "the server saw the client's port")
  t.eq({ b.peer_port, c.peer_port }, { a.peer_port, a.peer_port })
end)

t.test("a kept connection the server closed is replaced, the request sent again", function()
  local first = http.get(URL .. "/echo").json -- leaves an idle connection
  -- /drop closes the connection without an answer on the first request: the
  -- client sees a reused connection die and retries on a new one (not a retry
  -- of bbit.http: retries = 0).
  local r = http.get(URL .. "/drop?key=d1&times=1", { retries = 0 })
  t.eq(r.json, { attempts = 2 })
  t.ok(http.get(URL .. "/echo").json.peer_port ~= first.peer_port, "a new connection")
  -- Only once: dropped again on the new connection, it is an error.
  http.get(URL .. "/echo")
  local url = URL .. "/drop?key=d2&times=2"
  t.eq(t.raises(function() http.get(url, { retries = 0 }) end),
    "GET " .. url .. ": connection lost: Empty reply from server")
  t.eq(http.get(url).json, { attempts = 3 }, "two attempts: the kept connection, a new one")
end)

t.test("chunked responses: in memory, to a file, and cut midway", function()
  local url = URL .. "/download?chunked=1&size=" .. 3 * MB + 17
  local r = http.get(url)
  t.eq(r.headers["transfer-encoding"], "chunked")
  t.eq(r.headers["content-length"], nil)
  t.eq(#r.body, 3 * MB + 17)
  for i = 0, #r.body - 1, 4099 do
    t.eq(r.body:byte(i + 1), (i * 7 + i // 251) % 256, "byte " .. i)
  end
  local out = tmp .. "/chunked.bin"
  http.download(url, out)
  t.ok(read_file(out) == r.body, "the file has the same bytes")
  local cut = URL .. "/download?chunked=1&size=" .. 4 * MB .. "&fail_after=" .. MB
  t.contains(t.raises(function() http.get(cut, { retries = 0 }) end), "GET " .. cut .. ": connection lost")
  t.eq(http.get(URL .. "/download?chunked=1&size=0").body, "")
  t.raises(function() http.get(url, { max_size = MB }) end,
    "response larger than the limit of " .. MB .. " bytes")
end)

t.test("a body over 1 MiB waits for 100 Continue; a small one is sent at once", function()
  local file = tmp .. "/two-mb.bin"
  os.execute(("head -c %d /dev/zero > %s"):format(2 * MB, sh_quote(file)))
  local r = http.upload(URL .. "/upload", file)
  t.contains(r.body, '"size":' .. 2 * MB)
  local small = http.post(URL .. "/echo", { body = ("y"):rep(1000) }).json
  t.eq(small.headers.expect, nil)
  t.eq(small.body_size, 1000)
end)

---------------------------------------------------------------------------
-- requests, headers, bodies

t.test("GET sends headers and returns status, lowercased headers and body", function()
  local d = http.get(URL .. "/echo", { headers = { ["Accept"] = "text/plain", "X-Drop:" } }).json
  t.eq(d.headers.accept, "text/plain", "a header given replaces the default one")
  t.eq(d.headers["x-drop"], nil, "'Name:' with no value sends nothing")
  t.eq(d.headers.host, "127.0.0.1:" .. server.port)
  local r = http.get(URL .. "/echo", { headers = { ["X-Custom"] = "one two", "X-Second: 2" } })
  t.eq(r.status, 200)
  t.eq(r.ok, true)
  t.eq(r.reason, "OK")
  t.eq(r.method, "GET")
  t.eq(r.url, URL .. "/echo")
  t.eq(r.attempts, 1)
  t.eq(r.headers["x-test-server"], "bbit")
  t.eq(r.headers["content-type"], "application/json")
  t.contains(r.body, '"method":"GET"')
  t.contains(r.body, '"x-custom":"one two"')
  t.contains(r.body, '"x-second":"2"')
  t.contains(r.body, '"user-agent":"bbit/')
  t.contains(r.body, '"body_size":0')
end)

t.test("POST sends a string body; the method defaults to POST with a body", function()
  local r = http.request({ url = URL .. "/echo", body = 'a "quoted"\nbody',
    headers = { ["Content-Type"] = "text/plain" } })
  t.contains(r.body, '"method":"POST"')
  t.contains(r.body, '"body":"a \\"quoted\\"\\u000abody"')
  t.contains(r.body, '"content-type":"text/plain"')
  t.contains(r.body, '"body_size":15')
  t.eq(r.body:find('"expect"', 1, true), nil, "no Expect: 100-continue header")
end)

t.test("PUT, DELETE, PATCH and HEAD use their method", function()
  t.contains(http.put(URL .. "/echo", { body = "x" }).body, '"method":"PUT"')
  t.contains(http.delete(URL .. "/echo").body, '"method":"DELETE"')
  t.contains(http.request({ url = URL .. "/echo", method = "patch", body = "p" }).body,
    '"method":"PATCH"')
  local h = http.head(URL .. "/echo")
  t.eq(h.status, 200)
  t.eq(h.body, "")
  t.eq(h.headers["x-test-server"], "bbit")
end)

t.test("query parameters are encoded and appended", function()
  local r = http.get(URL .. "/echo?z=0", { query = { b = "x y&z", a = 1 } })
  t.contains(r.body, '"z":"0"')
  t.contains(r.body, '"a":"1"')
  t.contains(r.body, '"b":"x y&z"')
  t.eq(http.query_string({ b = "x y", a = "é/" }), "a=%C3%A9%2F&b=x%20y")
  t.eq(http.escape("a b/c~"), "a%20b%2Fc~")
end)

t.test("JSON body round trip through /echo; response.json decoded", function()
  local doc = { name = "button", tags = { "ui", "x" }, n = 3 }
  local r = http.post(URL .. "/echo", { json = doc })
  t.eq(r.json.headers["content-type"], "application/json")
  t.eq(r.json.method, "POST")
  t.eq(json.decode(r.json.body), doc)
  local plain = http.get(URL .. "/slow?ms=0")
  t.eq(plain.json, nil, "text/plain has no json")
end)

t.test("invalid JSON in a response raises on access", function()
  local r = http.get(URL .. "/badjson")
  t.eq(r.status, 200)
  t.raises(function() return r.json end,
    "GET " .. URL .. "/badjson: invalid JSON in the response: ")
  t.raises(function() http.post(URL .. "/echo", { json = {}, body = "x" }) end,
    "give one of json, body and body_file")
end)

t.test("request misuse raises", function()
  t.raises(function() http.request({}) end, "request needs a url")
  t.raises(function() http.request("http://x") end, "request options must be a table")
  t.raises(function() core.start({ url = URL, method = "g e t" }) end, "invalid method")
  t.raises(function() core.start({ url = URL, body = "a", body_file = "b" }) end,
    "give 'body' or 'body_file', not both")
  t.raises(function() core.start({ url = URL, timeout = "soon" }) end,
    "'timeout' must be a number")
  t.raises(function() core.start({ url = URL, headers = { "X-Bad: a\r\nX-Evil: b" } }) end,
    "line break")
  t.raises(function() core.start({ url = URL, progress = 42 }) end,
    "'progress' must be a function")
  local tr = assert(core.start({ url = URL .. "/echo" }))
  t.eq(tr.kind, "http")
  t.eq(tr:poll_fds(), {})
  t.raises(function() tr:result() end, "has not finished")
  tr:close()
  tr:close() -- idempotent
  t.raises(function() tr:step() end, "attempt to use a closed HTTP transfer")
end)

t.test("only http and https URLs are accepted", function()
  t.raises(function() http.get("file:///etc/passwd") end,
    "GET file:///etc/passwd: unsupported protocol (only http:// and https:// URLs)")
  t.raises(function() http.get("ftp://127.0.0.1/x", { retries = 0 }) end, "unsupported protocol")
end)

---------------------------------------------------------------------------
-- failures

t.test("refused connection names method and URL", function()
  local url = ("http://127.0.0.1:%d/api/v1/health"):format(closed_port)
  local msg = t.raises(function() http.get(url, { retries = 0 }) end)
  t.eq(msg, "GET " .. url .. ": connection refused (is the server running?)")
  local r, err = http.try_request({ url = url, retries = 1, retry_base_delay = 0.01 })
  t.eq(r, nil)
  t.eq(err, "GET " .. url .. ": connection refused (is the server running?)")
end)

t.test("a refused connection through a proxy names the proxy", function()
  local script = tmp .. "/proxy.lua"
  write_file(script, ([[
    local r, err = require("bbit.http").try_request({ url = %q, retries = 0 })
    print(err)
  ]]):format(URL .. "/echo"))
  local proxy = ("http://127.0.0.1:%d"):format(closed_port)
  local out = capture(("http_proxy=%s %s run %s 2>&1"):format(proxy, sh_quote(BBIT), sh_quote(script)))
  t.contains(out, "GET " .. URL .. "/echo: connection refused (is the server running? requests go through the proxy http_proxy=" .. proxy .. ")")
end)

t.test("unknown host names the host", function()
  t.raises(function() http.get("http://no-such-host.invalid/x") end,
    "GET http://no-such-host.invalid/x: cannot resolve host 'no-such-host.invalid'")
end)

t.test("timeout message", function()
  local start = core.now()
  local msg = t.raises(function() http.get(URL .. "/slow?ms=4000", { timeout = 1 }) end)
  t.eq(msg, "GET " .. URL .. "/slow?ms=4000: timed out after 1 s")
  t.ok(core.now() - start >= 0.9, "waited for the timeout")
end)

t.test("low-speed abort", function()
  local msg = t.raises(function()
    http.get(URL .. "/slow?ms=4000", { low_speed_limit = 10, low_speed_time = 1 })
  end)
  t.eq(msg, "GET " .. URL .. "/slow?ms=4000: transfer too slow (less than 10 bytes/s for 1 s)")
end)

t.test("TLS failure is reported as such", function()
  local url = ("https://127.0.0.1:%d/echo"):format(server.port) -- plain HTTP port
  local msg = t.raises(function() http.get(url, { retries = 0 }) end)
  t.contains(msg, "GET " .. url .. ": TLS error: ")
  t.ok(not msg:find("%s$"), "no trailing white space")
end)

t.test("numeric options are checked", function()
  t.raises(function() core.start({ url = URL, timeout = -1 }) end,
    "'timeout' must be between 0 and 1e15")
  t.raises(function() core.start({ url = URL, max_size = 0 / 0 }) end,
    "'max_size' must be between 0 and 1e15")
  t.raises(function() core.start({ url = URL, follow_redirects = -1 }) end,
    "'follow_redirects' must be 0..1000")
end)

t.test("HTTP 500 raises with the JSON error code and message", function()
  local msg = t.raises(function() http.post(URL .. "/status/500", { body = "x" }) end)
  t.eq(msg, "POST " .. URL .. "/status/500: HTTP 500 Internal Server Error: status_500: status 500 requested")
  local r = http.get(URL .. "/status/500", { raise = false, retries = 0 })
  t.eq(r.json.error.code, "status_500", "error bodies are decoded too")
end)

t.test("HTTP error with a text body shows its first line only", function()
  local msg = t.raises(function() http.get(URL .. "/status/404?plain=1") end)
  t.eq(msg, "GET " .. URL .. "/status/404?plain=1: HTTP 404 Not Found: plain failure 404")
end)

t.test("raise = false and try_request return 4xx/5xx responses", function()
  local r = http.get(URL .. "/status/502", { raise = false, retries = 0 })
  t.eq(r.status, 502)
  t.eq(r.ok, false)
  t.contains(r.body, "status_502")
  local r2, err = http.try_request({ url = URL .. "/status/418" })
  t.eq(err, nil)
  t.eq(r2.status, 418)
end)

t.test("bearer auth: 401 without a token, 200 with it", function()
  local msg, e = t.raises(function() http.get(URL .. "/auth") end)
  t.contains(msg, "GET " .. URL .. "/auth: HTTP 401 Unauthorized")
  t.contains(msg, "unauthorized")
  t.contains(e.hint, "token")
  t.raises(function() http.get(URL .. "/auth", { token = "wrong" }) end, "HTTP 401")
  local r = http.get(URL .. "/auth", { token = "secret-token" })
  t.eq(r.status, 200)
  t.eq(r.body, '{"user":"tester"}')
end)

t.test("max_size aborts a large response", function()
  local msg = t.raises(function()
    http.get(URL .. "/download?size=200000", { max_size = 1000 })
  end)
  t.eq(msg, "GET " .. URL .. "/download?size=200000: response larger than the limit of 1000 bytes")
  t.eq(#http.get(URL .. "/download?size=1000", { max_size = 1000 }).body, 1000)
end)

t.test("redirects are not followed unless asked", function()
  local r = http.get(URL .. "/redirect?to=/echo")
  t.eq(r.status, 302)
  t.eq(r.headers.location, "/echo")
  local f = http.get(URL .. "/redirect?to=/echo", { follow_redirects = true })
  t.eq(f.status, 200)
  t.eq(f.url, URL .. "/echo")
  t.raises(function()
    local to = "/redirect?to=" .. http.escape("/redirect?to=" .. http.escape("/redirect?to=/echo"))
    http.get(URL .. "/redirect?to=" .. http.escape(to), { follow_redirects = 2 })
  end, "too many redirects")
end)

---------------------------------------------------------------------------
-- retries

t.test("retry after 503 succeeds on the third try and honours Retry-After", function()
  local start = core.now()
  local r = http.get(URL .. "/retry?key=r1&fail=2&after=1")
  local elapsed = core.now() - start
  t.eq(r.status, 200)
  t.eq(r.attempts, 3)
  t.eq(r.body, '{"attempts":3}')
  t.ok(elapsed >= 2, ("waited Retry-After twice (elapsed %.2f s)"):format(elapsed))
end)

t.test("429 is retried too", function()
  local r = http.get(URL .. "/retry?key=r429&fail=1&after=1&code=429")
  t.eq(r.attempts, 2)
end)

t.test("POST is not retried by default; retry = true allows it", function()
  local msg = t.raises(function()
    http.post(URL .. "/retry?key=p1&fail=1&after=1", { body = "x" })
  end)
  t.contains(msg, "POST " .. URL .. "/retry?key=p1&fail=1&after=1: HTTP 503 Service Unavailable")
  -- the server saw exactly one POST: the next request is its second
  t.eq(http.get(URL .. "/retry?key=p1&fail=1").body, '{"attempts":2}')
  local r = http.post(URL .. "/retry?key=p2&fail=1&after=1", { body = "x", retry = true })
  t.eq(r.attempts, 2)
end)

t.test("retries are bounded", function()
  local msg = t.raises(function()
    http.get(URL .. "/retry?key=b1&fail=5&after=0", { retries = 2, retry_base_delay = 0.01 })
  end)
  t.contains(msg, "HTTP 503 Service Unavailable: try_again")
  t.eq(http.get(URL .. "/retry?key=b1&fail=0").body, '{"attempts":4}',
    "exactly three attempts were made")
  t.raises(function() http.get(URL .. "/retry?key=b2&fail=1", { retry = false }) end, "HTTP 503")
end)

t.test("a Retry-After beyond the cap fails at once", function()
  local start = core.now()
  local msg = t.raises(function() http.get(URL .. "/retry?key=c1&fail=1&after=100") end)
  t.contains(msg, "HTTP 503 Service Unavailable")
  t.contains(msg, "(the server asked to retry after 100 s)")
  t.ok(core.now() - start < 30, "did not wait 100 s")
end)

---------------------------------------------------------------------------
-- streaming

local big = tmp .. "/big.bin"
os.execute(("head -c %d /dev/urandom > %s"):format(50 * MB, sh_quote(big)))

t.test("upload of a 50 MB file is streamed; the server's sha256 matches", function()
  local r = http.upload(URL .. "/upload", big)
  t.eq(r.status, 200)
  t.contains(r.body, '"size":' .. 50 * MB)
  t.eq(r.body:match('"sha256":"(%x+)"'), sha256_of(big))
  local refused = http.post(URL .. "/echo", { body_file = big, raise = false })
  t.eq(refused.status, 413, "the server refuses before the body (Expect: 100-continue)")
  t.contains(refused.body, "too_large")
end)

t.test("upload of a missing file fails before sending", function()
  t.raises(function() http.upload(URL .. "/upload", tmp .. "/missing.bin") end,
    "PUT " .. URL .. "/upload: " .. tmp .. "/missing.bin: No such file or directory")
end)

t.test("download of 50 MB to a file: size and hash", function()
  local dir = tmp .. "/dl"
  os.execute("mkdir -p " .. sh_quote(dir))
  local out = dir .. "/file.bin"
  local url = URL .. "/download?size=" .. 50 * MB
  local r = http.download(url, out)
  t.eq(r.status, 200)
  t.eq(r.body, nil)
  t.eq(file_size(out), 50 * MB)
  t.eq(dir_entries(dir), { "file.bin" }, "no temp file left")
  local expected = capture("curl -s " .. sh_quote(url) .. " | sha256sum"):match("^(%x+)")
  t.eq(sha256_of(out), expected, "same bytes as curl(1) receives")
  local head = read_file(out):sub(1, 4096)
  for i = 0, 4095, 97 do
    t.eq(head:byte(i + 1), (i * 7 + i // 251) % 256, "byte " .. i)
  end
end)

t.test("a download cut midway leaves no file", function()
  local dir = tmp .. "/cut"
  os.execute("mkdir -p " .. sh_quote(dir))
  local out = dir .. "/file.bin"
  local url = URL .. "/download?size=" .. 20 * MB .. "&fail_after=" .. 5 * MB
  local msg = t.raises(function() http.download(url, out, { retries = 0 }) end)
  t.contains(msg, "GET " .. url .. ": connection lost")
  t.eq(dir_entries(dir), {}, "nothing left behind")
end)

t.test("a download aborted by the progress callback leaves no file", function()
  local dir = tmp .. "/abort"
  os.execute("mkdir -p " .. sh_quote(dir))
  local out = dir .. "/file.bin"
  local url = URL .. "/download?size=" .. 30 * MB
  local msg = t.raises(function()
    http.download(url, out, {
      progress = function(now)
        if now > 2 * MB then
          error("enough")
        end
      end,
    })
  end)
  t.contains(msg, "GET " .. url .. ": progress callback failed: ")
  t.contains(msg, "enough")
  t.eq(dir_entries(dir), {})
  local msg2 = t.raises(function()
    http.download(url, out, { progress = function(now) return now < MB end })
  end)
  t.eq(msg2, "GET " .. url .. ": cancelled by the progress callback")
  t.eq(dir_entries(dir), {})
end)

t.test("a progress callback cannot close its own running transfer", function()
  local tr
  tr = assert(core.start({
    url = URL .. "/download?size=" .. 4 * MB,
    progress = function() tr:close() end,
  }))
  jobs.await(tr)
  local status, err, kind = tr:result()
  t.eq(status, nil)
  t.contains(err, "progress callback failed: ")
  t.contains(err, "cannot close a running transfer from a progress callback")
  t.eq(kind, "callback")
  tr:close()
end)

t.test("a failed status does not create the output file", function()
  local dir = tmp .. "/status"
  os.execute("mkdir -p " .. sh_quote(dir))
  local msg = t.raises(function() http.download(URL .. "/status/404", dir .. "/f") end)
  t.contains(msg, "HTTP 404 Not Found")
  t.contains(msg, "status_404")
  t.eq(dir_entries(dir), {})
  t.raises(function() http.download(URL .. "/download?size=1", tmp .. "/no/such/dir/f") end,
    "GET " .. URL .. "/download?size=1: " .. tmp .. "/no/such/dir/f: No such file or directory")
end)

t.test("progress callback sees increasing values", function()
  local seen = {}
  local size = 8 * MB
  http.get(URL .. "/download?size=" .. size, {
    progress = function(dlnow, dltotal, ulnow, ultotal)
      seen[#seen + 1] = { dlnow, dltotal, ulnow, ultotal }
    end,
  })
  t.ok(#seen >= 2, "called several times (" .. #seen .. ")")
  for i = 2, #seen do
    t.ok(seen[i][1] >= seen[i - 1][1], "dlnow never decreases")
  end
  t.eq(seen[#seen][1], size)
  t.eq(seen[#seen][2], size)
  local up, last_total = {}, nil
  local file = tmp .. "/up8.bin"
  os.execute(("head -c %d /dev/zero > %s"):format(8 * MB, sh_quote(file)))
  http.upload(URL .. "/upload", file, {
    progress = function(_, _, ulnow, ultotal)
      up[#up + 1] = ulnow
      last_total = ultotal
    end,
  })
  t.eq(up[#up], 8 * MB)
  t.eq(last_total, 8 * MB)
  for i = 2, #up do
    t.ok(up[i] >= up[i - 1], "ulnow never decreases")
  end
end)

---------------------------------------------------------------------------
-- parallel

t.test("parallel: 4 slow requests overlap", function()
  local start = core.now()
  local rs = http.parallel({
    URL .. "/slow?ms=1000", URL .. "/echo?i=2",
    { url = URL .. "/slow?ms=1000" }, URL .. "/slow?ms=1000", URL .. "/slow?ms=1000",
  }, { jobs = 5 })
  local elapsed = core.now() - start
  t.eq(#rs, 5)
  t.eq(rs[1].body, "slow done")
  t.contains(rs[2].body, '"i":"2"')
  t.eq(rs[5].body, "slow done")
  t.ok(elapsed < 3, ("took %.2f s, expected well under 4 s"):format(elapsed))
end)

t.test("parallel: the first failure raises and cancels the rest", function()
  local start = core.now()
  t.raises(function()
    http.parallel({ URL .. "/slow?ms=5000", URL .. "/status/500" })
  end, "HTTP 500")
  t.ok(core.now() - start < 4, "did not wait for the slow request")
end)

t.test("requests inside jobs.run overlap with a retry wait", function()
  local start = core.now()
  local rs = jobs.run({
    function() return http.get(URL .. "/retry?key=j1&fail=1&after=1").attempts end,
    function() return http.get(URL .. "/slow?ms=1000").body end,
  }, { jobs = 2 })
  t.eq(rs, { 2, "slow done" })
  t.ok(core.now() - start < 1.9, "the retry wait did not block the other job")
end)

---------------------------------------------------------------------------
-- logging

t.test("--verbose logs requests with the token redacted", function()
  local script = tmp .. "/verbose.lua"
  write_file(script, ([[
    local http = require("bbit.http")
    local r = http.get(%q, { token = "secret-token" })
    print("status " .. r.status)
  ]]):format(URL .. "/auth"))
  local err_file = tmp .. "/verbose.err"
  local out = capture(("%s --verbose run %s 2>%s"):format(sh_quote(BBIT), sh_quote(script),
    sh_quote(err_file)))
  local err = read_file(err_file)
  t.contains(out, "status 200")
  t.contains(err, "GET " .. URL .. "/auth")
  t.contains(err, "Authorization: Bearer ***")
  t.contains(err, "-> 200 OK")
  t.eq(err:find("secret-token", 1, true), nil, "token not in the log")
  local quiet = capture(("%s run %s 2>&1"):format(sh_quote(BBIT), sh_quote(script)))
  t.eq(quiet, "status 200\n", "no request log without --verbose")
end)

t.test("the test server stops cleanly when its stdin closes", function()
  local ok, how, code = server.stop()
  t.eq({ ok, how, code }, { true, "exit", 0 })
end)

os.execute("rm -rf " .. sh_quote(tmp))
t.done()
