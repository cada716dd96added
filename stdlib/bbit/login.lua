--- The browser sign-in of `bbit login` (SPEC §6): a listener on 127.0.0.1,
--- the server's login page opened in a browser, and the token the server
--- sends back to the listener after the user signed in.
local errors = require("bbit.errors")
local http = require("bbit.http")
local listener = require("bbit.core.listener")
local log = require("bbit.log")
local remote = require("bbit.remote")

local M = {}

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end

--- Parses "/path?a=1&b=2" into the path and a table of query values.
---@param target string
---@return string path
---@return table<string,string> query
function M.parse_target(target)
  local path, query = target:match("^([^?]*)%??(.*)$")
  local values = {}
  for pair in query:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    values[unescape(k)] = unescape(v)
  end
  return path, values
end

local function page(title, message)
  local function esc(s)
    return (s:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }))
  end
  return ([[<!doctype html><html><head><meta charset="utf-8"><title>%s</title>
<style>body{font:16px system-ui,sans-serif;margin:4em auto;max-width:32em;color:#222}</style></head>
<body><h1>%s</h1><p>%s</p></body></html>]]):format(esc(title), esc(title), esc(message))
end

local function hostname()
  local f = io.open("/proc/sys/kernel/hostname", "r")
  local name = f and f:read("l") or "terminal"
  if f then
    f:close()
  end
  return name
end

-- Opens `url` with $BROWSER, else xdg-open, in the background (never waited
-- for, never killed: it may be the user's running browser). Returns whether
-- a launcher was found.
local function open_browser(url)
  local quoted = require("bbit.proc").shell_quote(url)
  local browser = os.getenv("BROWSER")
  if browser and browser ~= "" then
    local command = browser:find("%%s") and browser:gsub("%%s", (quoted:gsub("%%", "%%%%"))) or (browser .. " " .. quoted)
    return os.execute(command .. " >/dev/null 2>&1 &") == true
  end
  if os.execute("command -v xdg-open >/dev/null 2>&1") == true then
    return os.execute("xdg-open " .. quoted .. " >/dev/null 2>&1 &") == true
  end
  return false
end

--- Runs the browser sign-in against `hub`; returns the verified token.
---@param hub string server URL
---@param opts {port?: integer, no_browser?: boolean, timeout?: number}
---@return string token
function M.browser_flow(hub, opts)
  local l <close> = errors.check(listener.open(opts.port or 0))
  local port = l:port()
  local state = require("bbit.hash").random_hex(16)
  local url = ("%s/login?%s"):format(hub, http.query_string({ port = port, state = state, name = hostname() }))
  if opts.no_browser or not open_browser(url) then
    print("Open this address in a browser to sign in:")
    print("  " .. url)
  else
    print("Opening the browser to sign in. If it does not open, visit:")
    print("  " .. url)
  end
  io.stdout:flush()
  local deadline = require("bbit.term").clock() + (opts.timeout or 300)
  while true do
    local left = deadline - require("bbit.term").clock()
    local method, target = l:accept(math.max(left, 0))
    if not method then
      l:close()
      errors.fail(("timed out after %d s waiting for the sign-in in the browser"):format(math.floor(opts.timeout or 300)),
        "run `bbit login` again, or use `bbit login --token TOKEN`")
    end
    local path, query = M.parse_target(target)
    if method ~= "GET" or path ~= "/callback" then
      l:respond(404, "text/plain", "not found\n")
    elseif query.state ~= state then
      log.warn("refused a sign-in callback with a wrong state (not from this `bbit login`)")
      l:respond(400, "text/html; charset=utf-8",
        page("Sign-in refused", "This sign-in does not belong to the waiting `bbit login` (state mismatch)."))
    elseif query.error then
      l:respond(200, "text/html; charset=utf-8", page("Sign-in failed", query.error))
      errors.fail(("the server refused the sign-in: %s"):format(query.error))
    elseif not query.token or query.token == "" then
      l:respond(400, "text/html; charset=utf-8", page("Sign-in failed", "The server sent no token."))
    else
      local ok, me = pcall(function()
        return remote.client(hub, { token = query.token }):whoami()
      end)
      if not ok then
        l:respond(200, "text/html; charset=utf-8", page("Sign-in failed", "The token could not be verified."))
        error(me, 0)
      end
      l:respond(200, "text/html; charset=utf-8",
        page("Signed in successfully", ("You are signed in as %s. You can close this tab and return to the terminal."):format(
          tostring(me.user))))
      return query.token
    end
  end
end

return M
