--- Remote scopes: which server hosts a scope (SPEC §4 "Scope routing"), and a
--- client for the server's JSON API (SPEC §7) whose failures name the scope,
--- the URL and what to do.
---
--- Server of a scope, first match wins: `bbit remote` entries of the
--- workspace (`<local scope>/remotes.json`), then global ones (`bbit remote
--- add --global`, in $BBIT_HOME/config.json), then `bbit.remotes` patterns in
--- workspace.jsonc, then the default hub (`BBIT_HUB` / `bbit config set hub`).
--- Within one list the most specific pattern wins.
local config = require("bbit.config")
local errors = require("bbit.errors")
local fs = require("bbit.fs")
local http = require("bbit.http")
local json = require("bbit.json")

local M = {}

-- Scope patterns: `*` matches any run of characters.
local function pattern_matches(pattern, scope)
  local lua = "^" .. pattern:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") .. "$"
  return scope:match(lua) ~= nil
end

local function specificity(pattern)
  return #pattern:gsub("%*", "") * 2 - (pattern:find("*", 1, true) and 1 or 0)
end

local function best(entries, scope)
  local winner
  for _, e in ipairs(entries) do
    if pattern_matches(e.scope or "*", scope) then
      if not winner or specificity(e.scope or "*") > specificity(winner.scope or "*") then
        winner = e
      end
    end
  end
  return winner
end

--- The remotes file of a workspace's local scope.
---@param ws table
---@return string
function M.workspace_file(ws)
  return ws.scope.dir .. "/remotes.json"
end

--- The `bbit remote` entries: `{url, scope}` lists of the workspace (if any) and global.
---@param ws? table
---@return table[] workspace
---@return table[] global
function M.entries(ws)
  local local_entries = {}
  if ws then
    local text = fs.try_read(M.workspace_file(ws))
    if text then
      local doc = json.decode(text, { name = M.workspace_file(ws) })
      local_entries = doc.remotes or {}
    end
  end
  local global = config.load().remotes or {}
  return local_entries, global
end

--- Saves the workspace's remote entries.
function M.save_workspace_entries(ws, list)
  fs.write(M.workspace_file(ws), json.encode({ remotes = json.array(list) }, { pretty = true }))
end

--- The server URL of `scope` and how it was found; nil when nothing maps it.
---@param scope string
---@param ws? table
---@return string|nil url
---@return string how
function M.server_for(scope, ws)
  local local_entries, global = M.entries(ws)
  local e = best(local_entries, scope)
  if e then
    return config.normalize_url(e.url), "workspace remote " .. (e.scope or "*")
  end
  e = best(global, scope)
  if e then
    return config.normalize_url(e.url), "global remote " .. (e.scope or "*")
  end
  if ws then
    local remotes = ws:bbit_config().remotes
    if type(remotes) == "table" then
      local list = {}
      for pattern, url in pairs(remotes) do
        list[#list + 1] = { scope = pattern, url = url }
      end
      table.sort(list, function(a, b)
        return a.scope < b.scope
      end)
      e = best(list, scope)
      if e then
        return config.normalize_url(e.url), "workspace.jsonc bbit.remotes \"" .. e.scope .. "\""
      end
    end
  end
  local hub = config.hub()
  if hub then
    return hub, os.getenv("BBIT_HUB") and "BBIT_HUB" or "the default hub (bbit config set hub)"
  end
  return nil, "no remote"
end

--- Starts loading libcurl in the background if a server the workspace knows
--- (its remotes, the global ones, workspace.jsonc's, the hub) needs it: an
--- https:// one, say. Requests to http:// servers do not load it
--- (bbit.http), so a command calls this before its first request.
---@param ws? table
function M.prefetch(ws)
  local local_entries, global = M.entries(ws)
  local urls = { os.getenv("BBIT_HUB") or config.load().hub }
  for _, list in ipairs({ local_entries, global }) do
    for _, e in ipairs(list) do
      urls[#urls + 1] = e.url
    end
  end
  local remotes = ws and ws:bbit_config().remotes
  if type(remotes) == "table" then
    for _, url in pairs(remotes) do
      urls[#urls + 1] = url
    end
  end
  for _, url in ipairs(urls) do
    if type(url) == "string" then
      http.prefetch(url)
    end
  end
end

--- The failure for a scope no server is known for.
function M.no_server_error(scope)
  errors.fail(("no server is known for scope %s"):format(scope),
    "add one: `bbit remote add http://HOST:PORT --scope " .. scope .. "`, a \"bbit.remotes\" entry in workspace.jsonc, or BBIT_HUB")
end

-- Client -------------------------------------------------------------------

local Client = {}
Client.__index = Client

--- The largest API response read into memory (a server that sends more is
--- refused, not followed into exhausting memory); objects are streamed to
--- files and bounded by their own size.
M.MAX_RESPONSE = 64 * 1024 * 1024

--- A client for the server at `url` (token from BBIT_TOKEN or the config).
---@param url string
---@param opts? {token?: string}
---@return table
function M.client(url, opts)
  url = config.normalize_url(url)
  local token = opts and opts.token
  if token == nil then
    token = config.token_for(url)
  end
  return setmetatable({ url = url, token = token }, Client)
end

-- Turns a failed response into a failure that says what to do.
local function explain(self, r, what, scope)
  local ok, body = pcall(function()
    return r.json
  end)
  local err = ok and type(body) == "table" and body.error or nil
  local code = type(err) == "table" and err.code or nil
  local message = type(err) == "table" and err.message or (r.body or ""):sub(1, 200)
  local where = scope and ("scope %s on %s"):format(scope, self.url) or self.url
  if r.status == 401 then
    errors.fail(("%s: %s: not signed in or the token is not valid (401%s)"):format(where, what,
      message ~= "" and (": " .. message) or ""),
      self.token and "the token was refused: sign in again with `bbit login --hub " .. self.url .. "`"
        or "sign in with `bbit login --hub " .. self.url .. "`, or set BBIT_TOKEN")
  elseif r.status == 403 then
    errors.fail(("%s: %s: permission denied (403): %s"):format(where, what, message),
      "ask an admin of the server for a token with the needed role on this scope")
  end
  local failure = errors.failure(("%s: %s: %s"):format(where, what, message ~= "" and message or ("HTTP " .. r.status)))
  failure.status, failure.code, failure.details = r.status, code, type(err) == "table" and err.details or nil
  error(failure, 0)
end

local function transport_error(self, err, what, scope)
  local where = scope and ("cannot reach the server of scope %s at %s"):format(scope, self.url)
    or ("cannot reach the server at %s"):format(self.url)
  errors.fail(("%s (%s): %s"):format(where, what, errors.message(err)),
    "check that the server is running and the URL is right (`bbit remote ls`)")
end

--- Sends a request to the API; returns the response on 2xx, else raises a
--- failure naming the scope, URL and problem (with `.status`/`.code` set).
---@param method string
---@param api_path string path under the server, e.g. "/api/v1/whoami"
---@param opts? table bbit.http request options (json, body_file, query, ...)
---@param what? string what is being done, for messages
---@param scope? string the scope concerned, for messages
---@return table response
function Client:request(method, api_path, opts, what, scope)
  local o = {}
  for k, v in pairs(opts or {}) do
    o[k] = v
  end
  o.method, o.url, o.token, o.raise = method, self.url .. api_path, self.token, false
  o.timeout = o.timeout or 300
  if not o.output_file then
    o.max_size = o.max_size or M.MAX_RESPONSE
  end
  local r, err = http.try_request(o)
  if not r then
    transport_error(self, err, what or (method .. " " .. api_path), scope)
  end
  if r.status < 200 or r.status >= 300 then
    explain(self, r, what or (method .. " " .. api_path), scope)
  end
  return r
end

local function enc(s)
  return http.escape(s)
end

function Client:health()
  return self:request("GET", "/api/v1/health", nil, "health check").json
end

function Client:whoami()
  return self:request("GET", "/api/v1/whoami", nil, "whoami").json
end

function Client:scopes()
  return self:request("GET", "/api/v1/scopes", nil, "list scopes").json.scopes
end

function Client:components(scope)
  return self:request("GET", "/api/v1/scopes/" .. enc(scope) .. "/components", nil, "list components", scope).json
    .components
end

function Client:component(scope, name)
  return self:request("GET", "/api/v1/scopes/" .. enc(scope) .. "/component", { query = { name = name } },
    "read component " .. name, scope).json
end

--- The ids among `ids` the scope lacks (asked in chunks of 10,000).
function Client:missing(scope, ids)
  local missing = {}
  for first = 1, #ids, 10000 do
    local chunk = { table.unpack(ids, first, math.min(#ids, first + 9999)) }
    local r = self:request("POST", "/api/v1/scopes/" .. enc(scope) .. "/objects/missing",
      { json = { ids = json.array(chunk) } }, "negotiate objects", scope)
    for _, id in ipairs(r.json.missing) do
      missing[#missing + 1] = id
    end
  end
  return missing
end

--- Uploads a pack file (see `Store:write_pack`) to a scope: one request for many objects.
---@return table response JSON {stored, existing}
function Client:upload_pack(scope, file, count)
  return self:request("POST", "/api/v1/scopes/" .. enc(scope) .. "/objects/pack",
    { body_file = file, headers = { ["Content-Type"] = "application/x-bbit-pack" } },
    ("upload %d objects"):format(count or 0), scope).json
end

--- Downloads one object's compressed file into `dest` (atomic).
function Client:fetch_object(scope, id, dest)
  return self:request("GET", "/api/v1/scopes/" .. enc(scope) .. "/objects/" .. id, { output_file = dest },
    "fetch object " .. id, scope)
end

--- Prepares an export transaction; `id` is proposed by the client (it is
--- journaled before the request, so an interrupted export can abort or commit it).
--- With `commit`, the server commits it as soon as it is prepared (an export
--- to one server: nothing to coordinate); the answer's `state` says which.
---@param components table[]
---@param id string
---@param commit? boolean
---@return table transaction `{id, state = "prepared"|"committed", ...}`
function Client:prepare(components, id, commit)
  return self:request("POST", "/api/v1/transactions",
    { json = { id = id, components = json.array(components), commit = commit or nil }, retry = true },
    "prepare the export").json
end

function Client:commit(txn)
  return self:request("POST", "/api/v1/transactions/" .. enc(txn) .. "/commit", { retry = true }, "commit the export").json
end

function Client:abort(txn)
  return self:request("POST", "/api/v1/transactions/" .. enc(txn) .. "/abort", { retry = true }, "abort the export").json
end

function Client:transaction(txn)
  return self:request("GET", "/api/v1/transactions/" .. enc(txn), nil, "read the export transaction").json
end

return M
