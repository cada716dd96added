-- The sign-in callback listener (bbit.core.listener) and the login helpers.
local t = require("testlib")
local listener = require("bbit.core.listener")
local login = require("bbit.login")

local dir = t.tmpdir()

local function curl_later(url, out)
  os.execute(("(sleep 0.3; curl -s -o '%s' -w '%%{http_code}' '%s' > '%s.code') >/dev/null 2>&1 &"):format(out, url, out))
end

local function slurp(path)
  for _ = 1, 50 do
    local f = io.open(path, "r")
    if f then
      local s = f:read("a")
      f:close()
      if s ~= "" then
        return s
      end
    end
    os.execute("sleep 0.1")
  end
end

t.test("listens on 127.0.0.1 with a kernel-chosen port and answers one request", function()
  local l <close> = assert(listener.open(0))
  local port = l:port()
  t.ok(port > 0)
  curl_later(("http://127.0.0.1:%d/callback?state=abc&token=x%%20y"):format(port), dir .. "/r1")
  local method, target = l:accept(5)
  t.eq(method, "GET")
  t.eq(target, "/callback?state=abc&token=x%20y")
  local path, query = login.parse_target(target)
  t.eq(path, "/callback")
  t.eq(query, { state = "abc", token = "x y" })
  t.ok(l:respond(200, "text/html", "<h1>Signed in successfully</h1>"))
  t.eq(slurp(dir .. "/r1"), "<h1>Signed in successfully</h1>")
  t.eq(slurp(dir .. "/r1.code"), "200")
end)

t.test("accept times out cleanly and the port is freed on close", function()
  local l = assert(listener.open(0))
  local port = l:port()
  local m, err = l:accept(0.2)
  t.eq(m, nil)
  t.eq(err, "timeout")
  l:close()
  t.raises(function() l:port() end, "attempt to use a closed listener")
  local again <close> = assert(listener.open(port))
  t.eq(again:port(), port)
end)

t.test("a busy port is a clear error", function()
  local l <close> = assert(listener.open(0))
  local other, err = listener.open(l:port())
  t.eq(other, nil)
  t.contains(err, "listener.open: 127.0.0.1:" .. l:port())
  t.contains(err, "Address already in use")
end)

t.test("respond without a request is misuse", function()
  local l <close> = assert(listener.open(0))
  t.raises(function() l:respond(200, "text/plain", "x") end, "no request to answer")
end)

t.done()
