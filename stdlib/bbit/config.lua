--- User configuration: `$BBIT_HOME/config.json` (default `~/.config/bbit`),
--- mode 0600 because it holds tokens (SPEC §2.4).
---
---   { "hub": "http://127.0.0.1:3000",            -- the default server
---     "tokens": { "http://127.0.0.1:3000": "bbit_..." },
---     "remotes": [ { "url": "...", "scope": "my-org.*" } ],  -- global remotes
---     ...any other key set with `bbit config set` }
---
--- `BBIT_TOKEN` overrides every stored token; `BBIT_HUB` the default server.
local errors = require("bbit.errors")

local M = {}

--- The user's bbit home directory (`$BBIT_HOME`, else `~/.config/bbit`).
---@return string
function M.home()
  local home = os.getenv("BBIT_HOME")
  if home and home ~= "" then
    return home
  end
  return (os.getenv("HOME") or "/root") .. "/.config/bbit"
end

--- The path of the config file.
---@return string
function M.path()
  return M.home() .. "/config.json"
end

--- Reads the config (an empty one when the file does not exist).
---@return table
function M.load()
  local fs = require("bbit.fs")
  local json = require("bbit.json")
  local text = fs.try_read(M.path())
  if text == nil then
    return {}
  end
  local config = json.decode(text, { name = M.path() })
  if type(config) ~= "table" or json.is_array(config) then
    errors.fail(M.path() .. ": expected a JSON object", "fix or delete the file")
  end
  return config
end

--- Writes the config atomically with mode 0600 (it holds tokens).
---@param config table
function M.save(config)
  local fs = require("bbit.fs")
  local json = require("bbit.json")
  fs.mkdir(M.home(), "700")
  fs.write(M.path(), json.encode(config, { pretty = true }), { mode = "600" })
end

--- Normalises a server URL: no trailing slash, scheme required.
---@param url string
---@return string
function M.normalize_url(url)
  if type(url) ~= "string" or not url:match("^https?://[^/%s]+") then
    errors.fail(("'%s' is not a server URL (expected http://HOST:PORT or https://HOST)"):format(tostring(url)))
  end
  return (url:gsub("/+$", ""))
end

--- The default server: `$BBIT_HUB`, else `hub` in the config, else nil.
---@return string|nil
function M.hub()
  local env = os.getenv("BBIT_HUB")
  if env and env ~= "" then
    return M.normalize_url(env)
  end
  local hub = M.load().hub
  return hub and M.normalize_url(hub) or nil
end

--- The token for server `url`: `$BBIT_TOKEN`, else the stored one, else nil.
---@param url string
---@return string|nil token
---@return string|nil source "BBIT_TOKEN" or the config path
function M.token_for(url)
  local env = os.getenv("BBIT_TOKEN")
  if env and env ~= "" then
    return env, "BBIT_TOKEN"
  end
  local tokens = M.load().tokens
  local token = type(tokens) == "table" and tokens[M.normalize_url(url)] or nil
  return token, token and M.path() or nil
end

--- Stores `token` for server `url` (nil removes it).
---@param url string
---@param token string|nil
function M.set_token(url, token)
  local config = M.load()
  config.tokens = type(config.tokens) == "table" and config.tokens or {}
  config.tokens[M.normalize_url(url)] = token
  if next(config.tokens) == nil then
    config.tokens = nil
  end
  M.save(config)
end

return M
