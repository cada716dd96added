--- HTTP client: requests with headers, JSON and streamed bodies, downloads to
--- files, timeouts, retries with backoff, bearer auth and parallel transfers.
---
--- Requests to http:// URLs (`http://127.0.0.1:3000`, `http://bbit.lan:3000`)
--- go over bbit's own HTTP/1.1 transport when no proxy variable is set and
--- redirects are not followed; every other request (https, proxies) over
--- libcurl, loaded on first use. Both keep
--- connections for reuse and behave alike; `BBIT_HTTP=curl` sends every
--- request through libcurl. Inside `bbit.jobs.run` (or `http.parallel`)
--- requests of different jobs overlap; elsewhere `http.request` simply blocks
--- until the response is there.
---
---   local http = require("bbit.http")
---   local r = http.get("http://127.0.0.1:3000/api/v1/health")
---   print(r.status, r.json.ok)
---   http.post(url, { json = { name = "x" }, token = token })
---   http.download(url, "out.tgz")            -- temp file + rename: all or nothing
---   local rs = http.parallel({ url1, url2 }, { jobs = 4 })
---
--- Failures raise (`bbit.errors`) with the method and URL:
---   `GET http://127.0.0.1:9/api/v1/health: connection refused (is the server running?)`
---   `GET http://host/slow: timed out after 2 s`
---   `POST http://host/api: HTTP 500 Internal Server Error: db_locked: database is locked`
--- `try_*` variants return `nil, err` instead; `raise = false` (or `try_request`)
--- returns 4xx/5xx responses instead of raising.
local core = require("bbit.core.http")
local errors = require("bbit.errors")
local jobs = require("bbit.jobs")
local log = require("bbit.log")

local M = {}

--- Default options (change them for the whole process, e.g. in a CI script).
M.defaults = {
  connect_timeout = 10, -- seconds to establish a connection
  low_speed_limit = 1, -- abort when under this many bytes/s ...
  low_speed_time = 60, -- ... for this many seconds
  retries = 3, -- extra attempts after the first
  retry_base_delay = 0.25, -- seconds before the first retry (doubles each time, with jitter)
  retry_max_delay = 30, -- longest wait between attempts (also the largest Retry-After honoured)
  parallel_jobs = 8, -- transfers at once in http.parallel
}

---@class bbit.http.Request
---@field url string http:// or https:// URL (other protocols are refused)
---@field method? string upper-case method; default GET, or POST when a body is given
---@field headers? table<string,string>|string[] request headers: `{["X-A"] = "1"}` or `{"X-A: 1"}`
---@field query? table<string,string|number|boolean> appended to the URL, percent-encoded, sorted by name
---@field body? string request body
---@field json? any encoded with bbit.json as the body; sets `Content-Type: application/json`
---@field body_file? string path of a file streamed as the body (not read into memory)
---@field output_file? string stream the response body into this file (temp file + rename on a 2xx; nothing is left on failure); `response.body` is then nil
---@field token? string bearer token: adds `Authorization: Bearer <token>` (redacted in logs)
---@field timeout? number total time limit in seconds (default: none)
---@field connect_timeout? number connection time limit in seconds (default 10)
---@field low_speed_limit? integer with low_speed_time: abort when slower than this many bytes/s (default 1)
---@field low_speed_time? integer ... for this many seconds (default 60)
---@field max_size? integer abort when the response body exceeds this many bytes
---@field follow_redirects? boolean|integer follow redirects (true: at most 10; n: at most n); default off
---@field progress? fun(dlnow: integer, dltotal: integer, ulnow: integer, ultotal: integer): boolean? called as bytes move (only when a value changed); raising aborts the transfer, returning false cancels it
---@field retries? integer extra attempts on connection errors and 429/502/503/504 (default 3; 0 disables)
---@field retry? boolean true: retry even non-idempotent methods (POST, PATCH); false: never retry. Default: retry GET/HEAD/PUT/DELETE/OPTIONS only
---@field retry_base_delay? number seconds before the first retry (default 0.25)
---@field retry_max_delay? number cap of one wait in seconds (default 30); a longer Retry-After fails at once
---@field raise? boolean false: return 4xx/5xx responses instead of raising (default true)

---@class bbit.http.Response
---@field status integer HTTP status code
---@field reason string reason phrase of the status line ("Not Found"; may be "" on HTTP/2)
---@field ok boolean true for 2xx
---@field headers table<string,string> response headers, names lowercased, repeats joined with ", "
---@field body string? response body (nil when it went to `output_file`)
---@field json any the body decoded with bbit.json when the content type is JSON (decoded on first access; raises on invalid JSON); nil otherwise
---@field method string the request method
---@field url string the final URL (after redirects)
---@field seconds number duration of the last attempt
---@field attempts integer how many attempts were made (1 without retries)

local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }
local RETRY_STATUS = { [429] = true, [502] = true, [503] = true, [504] = true }
local RETRY_KINDS = { connect = true, network = true }

local REASONS = {
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [409] = "Conflict", [410] = "Gone", [412] = "Precondition Failed",
  [413] = "Payload Too Large", [422] = "Unprocessable Entity", [429] = "Too Many Requests",
  [500] = "Internal Server Error", [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

local function json_module()
  local ok, json = pcall(require, "bbit.json")
  if ok and type(json) == "table" and json.encode and json.decode then
    return json
  end
  return nil
end

local function is_json_type(content_type)
  return content_type ~= nil and (content_type:lower():match("^%s*application/json")
    or content_type:lower():match("^%s*[%w%.%-]+/[%w%.%-]+%+json")) ~= nil
end

local Response = {}
Response.__index = function(r, key)
  if key == "json" then
    local value = nil
    if r.body and is_json_type(r.headers["content-type"]) then
      local json = json_module() or errors.fail("bbit.json is not available to decode the response")
      local ok, decoded = pcall(json.decode, r.body)
      if not ok then
        errors.fail(("%s %s: invalid JSON in the response: %s"):format(r.method, r.url, errors.message(decoded)))
      end
      value = decoded
    end
    rawset(r, "json", value)
    return value
  end
  return Response[key]
end

--- Starts loading libcurl on another thread if requests to `url` need it
--- (it is loaded on first use, and its dynamic linking takes ~15 ms): a
--- command about to make requests calls this first, so the load overlaps its
--- other work. http:// URLs (no proxy set) go over bbit's own HTTP/1.1
--- transport and never load libcurl.
---@param url string
function M.prefetch(url)
  core.prefetch(url)
end

--- Percent-encodes `s` for use in a URL path segment or query value.
---@param s string
---@return string
function M.escape(s)
  return core.escape(tostring(s))
end

--- Encodes `params` as a query string (`a=1&b=x%20y`), names sorted.
---@param params table<string,string|number|boolean>
---@return string
function M.query_string(params)
  local names = {}
  for name in pairs(params) do
    names[#names + 1] = tostring(name)
  end
  table.sort(names)
  local parts = {}
  for _, name in ipairs(names) do
    parts[#parts + 1] = core.escape(name) .. "=" .. core.escape(tostring(params[name]))
  end
  return table.concat(parts, "&")
end

-- The table core.http.start receives, from the user's options.
local function build(opts)
  if type(opts) ~= "table" then
    error("bbit.http: request options must be a table, got " .. type(opts), 3)
  end
  if type(opts.url) ~= "string" or opts.url == "" then
    error("bbit.http: request needs a url", 3)
  end
  local req = {}
  for _, k in ipairs({ "body", "body_file", "output_file", "timeout", "max_size",
                       "follow_redirects", "progress" }) do
    req[k] = opts[k]
  end
  for _, k in ipairs({ "connect_timeout", "low_speed_limit", "low_speed_time" }) do
    req[k] = opts[k] or M.defaults[k]
  end
  req.url = opts.url
  if opts.query and next(opts.query) then
    req.url = req.url .. (req.url:find("?", 1, true) and "&" or "?") .. M.query_string(opts.query)
  end
  local headers, has = {}, {}
  local function add(name, value)
    headers[#headers + 1] = name .. ": " .. value
    has[name:lower()] = true
  end
  for k, v in pairs(opts.headers or {}) do
    if type(k) == "number" then
      local name = tostring(v):match("^([^:]+):")
      headers[#headers + 1] = tostring(v)
      if name then
        has[name:lower()] = true
      end
    else
      add(tostring(k), tostring(v))
    end
  end
  if opts.json ~= nil then
    if opts.body ~= nil or opts.body_file ~= nil then
      error("bbit.http: give one of json, body and body_file", 3)
    end
    local json = json_module() or errors.fail("bbit.json is not available to encode the request")
    req.body = json.encode(opts.json)
    if not has["content-type"] then
      add("Content-Type", "application/json")
    end
  end
  if opts.token and not has["authorization"] then
    add("Authorization", "Bearer " .. opts.token)
  end
  if not has["accept"] and opts.json ~= nil then
    add("Accept", "application/json")
  end
  req.headers = headers
  local has_body = req.body ~= nil or req.body_file ~= nil
  req.method = opts.method and tostring(opts.method):upper() or (has_body and "POST" or "GET")
  return req
end

-- A waitable that finishes at `deadline` (seconds of core.now): sleeping inside jobs.
local function sleep(seconds)
  local deadline = core.now() + seconds
  local timer = {
    kind = "http", -- waited on by core.http.wait, which keeps other transfers moving
    poll_fds = function()
      return {}
    end,
    step = function()
      return core.now() >= deadline
    end,
    cancel = function() end,
  }
  jobs.await(timer)
end

-- One attempt: status, headers, body, info | nil, err, kind
local function attempt(req)
  local t, err = core.start(req)
  if not t then
    return nil, ("%s %s: %s"):format(req.method, req.url, (err:gsub("^http%.start: ", ""))), "io"
  end
  local transfer <close> = t
  jobs.await(transfer)
  return transfer:result()
end

-- Seconds to wait before the next attempt, or nil (no retry) and why.
local function retry_delay(opts, req, n, status, kind, headers, info)
  local limit = opts.retries or M.defaults.retries
  if n > limit or opts.retry == false then
    return nil
  end
  if not (IDEMPOTENT[req.method] or opts.retry == true) then
    return nil
  end
  if status then
    if not RETRY_STATUS[status] then
      return nil
    end
  elseif not RETRY_KINDS[kind] then
    return nil
  end
  local max_delay = opts.retry_max_delay or M.defaults.retry_max_delay
  local after = info and info.retry_after or 0
  if after == 0 and headers and headers["retry-after"] then
    after = tonumber(headers["retry-after"]) or 0
  end
  if after > 0 then
    if after > max_delay then
      return nil, ("the server asked to retry after %g s"):format(after)
    end
    return after
  end
  local base = opts.retry_base_delay or M.defaults.retry_base_delay
  local delay = math.min(max_delay, base * 2 ^ (n - 1))
  return delay * (0.5 + 0.5 * math.random())
end

-- The failure message of a 4xx/5xx response.
local function status_message(r)
  local head = ("%s %s: HTTP %d%s"):format(r.method, r.url, r.status,
    r.reason ~= "" and (" " .. r.reason) or "")
  local body = r.body or ""
  if is_json_type(r.headers["content-type"]) then
    local json = json_module()
    local ok, doc = false, nil
    if json then
      ok, doc = pcall(json.decode, body)
    end
    if ok and type(doc) == "table" and type(doc.error) == "table" then
      local e = doc.error
      local parts = {}
      for _, field in ipairs({ e.code, e.message }) do
        if type(field) == "string" or type(field) == "number" then
          parts[#parts + 1] = tostring(field)
        end
      end
      if #parts > 0 then
        return head .. ": " .. table.concat(parts, ": ")
      end
    end
  end
  local line = body:match("^%s*([^\r\n]*)")
  if line and line ~= "" then
    if #line > 200 then
      line = line:sub(1, 200) .. "..."
    end
    return head .. ": " .. line
  end
  return head
end

local function log_request(req, n)
  log.verbose("%s %s%s", req.method, req.url, n > 1 and (" (attempt %d)"):format(n) or "")
  if log.enabled("verbose") then
    for _, h in ipairs(req.headers) do
      log.verbose("  %s", h)
    end
    if req.body_file then
      log.verbose("  (body from %s)", req.body_file)
    elseif req.body then
      log.verbose("  (body: %d bytes)", #req.body)
    end
  end
end

-- The request with retries; returns response | nil, err (transport failures only).
local function perform(opts)
  local req = build(opts)
  local n = 0
  while true do
    n = n + 1
    log_request(req, n)
    local status, headers, body, info = attempt(req)
    local err, kind -- on failure attempt returns nil, err, kind
    if status then
      log.verbose("%s %s -> %d %s (%.2f s)", req.method, req.url, status, info.reason, info.seconds)
    else
      err, kind, headers, body = headers, body, nil, nil
      log.verbose("%s", err)
    end
    local delay, why = retry_delay(opts, req, n, status, kind, headers, info)
    if not delay then
      if not status then
        return nil, err
      end
      local r = setmetatable({
        status = status, reason = info.reason ~= "" and info.reason or (REASONS[status] or ""),
        ok = status >= 200 and status < 300, headers = headers, body = body,
        method = req.method, url = info.url, seconds = info.seconds, attempts = n,
      }, Response)
      r._retry_note = why
      return r
    end
    log.verbose("retrying in %.2f s (attempt %d of %d)", delay, n + 1,
      1 + (opts.retries or M.defaults.retries))
    sleep(delay)
  end
end

local function check_status(r, opts)
  if r.status >= 400 and opts.raise ~= false then
    local msg = status_message(r)
    if r._retry_note then
      msg = msg .. " (" .. r._retry_note .. ")"
    end
    local hint
    if r.status == 401 then
      hint = "the server needs a valid token: check it with `bbit whoami` or sign in with `bbit login`"
    end
    errors.fail(msg, hint)
  end
  return r
end

--- Sends a request and returns its response. Retries connection errors and
--- 429/502/503/504 (idempotent methods only unless `retry = true`), honouring
--- Retry-After. Raises on transport failures and, unless `raise = false`, on
--- 4xx/5xx statuses (naming method, URL, status and the error of the body).
---@param opts bbit.http.Request
---@return bbit.http.Response
function M.request(opts)
  local r, err = perform(opts)
  if not r then
    errors.fail(err)
  end
  return check_status(r, opts)
end

--- Like `request`, but a transport failure (refused, DNS, TLS, timeout,
--- aborted) returns `nil, err`, and 4xx/5xx responses are returned, not raised.
---@param opts bbit.http.Request
---@return bbit.http.Response|nil response
---@return string? err
function M.try_request(opts)
  return perform(opts)
end

local function with(method, url, opts)
  local o = {}
  for k, v in pairs(opts or {}) do
    o[k] = v
  end
  o.url, o.method = url, method
  return o
end

--- GET `url`.
---@param url string
---@param opts? bbit.http.Request other options (url and method are set)
---@return bbit.http.Response
function M.get(url, opts)
  return M.request(with("GET", url, opts))
end

--- HEAD `url` (no body).
---@param url string
---@param opts? bbit.http.Request
---@return bbit.http.Response
function M.head(url, opts)
  return M.request(with("HEAD", url, opts))
end

--- POST to `url`; give `body`, `json` or `body_file` in `opts`.
---@param url string
---@param opts? bbit.http.Request
---@return bbit.http.Response
function M.post(url, opts)
  return M.request(with("POST", url, opts))
end

--- PUT to `url`; give `body`, `json` or `body_file` in `opts`.
---@param url string
---@param opts? bbit.http.Request
---@return bbit.http.Response
function M.put(url, opts)
  return M.request(with("PUT", url, opts))
end

--- DELETE `url`.
---@param url string
---@param opts? bbit.http.Request
---@return bbit.http.Response
function M.delete(url, opts)
  return M.request(with("DELETE", url, opts))
end

--- Downloads `url` into the file `path`, streamed (never held in memory).
--- The file appears only when the whole body arrived with a 2xx status: a
--- temp file beside it is renamed into place; a failed download leaves nothing.
---@param url string
---@param path string
---@param opts? bbit.http.Request other options (progress, token, max_size, ...)
---@return bbit.http.Response response with `body = nil`
function M.download(url, path, opts)
  local o = with((opts and opts.method) or "GET", url, opts)
  o.output_file = path
  return M.request(o)
end

--- Uploads the file `path` as the body of a request to `url`, streamed.
---@param url string
---@param path string
---@param opts? bbit.http.Request other options; `method` defaults to PUT
---@return bbit.http.Response
function M.upload(url, path, opts)
  local o = with((opts and opts.method) or "PUT", url, opts)
  o.body_file = path
  return M.request(o)
end

--- Runs several requests at once (at most `opts.jobs`, default 8) and returns
--- their responses in order. Each entry is a URL (GET) or request options.
--- The first failure cancels the others and raises.
---@param requests (string|bbit.http.Request)[]
---@param opts? {jobs?: integer}
---@return bbit.http.Response[]
function M.parallel(requests, opts)
  local list = {}
  for i, r in ipairs(requests) do
    local o = type(r) == "string" and { url = r } or r
    list[i] = function()
      return M.request(o)
    end
  end
  return jobs.run(list, { jobs = (opts and opts.jobs) or M.defaults.parallel_jobs })
end

return M
