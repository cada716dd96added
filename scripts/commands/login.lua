-- bbit login: sign this terminal in to a bbit server (SPEC §6).
local config = require("bbit.config")
local errors = require("bbit.errors")
local remote = require("bbit.remote")

local function hub_of(ctx)
  local hub = ctx.opts.hub and config.normalize_url(ctx.opts.hub) or config.hub()
  if not hub then
    errors.fail("no server to sign in to", "use --hub URL, set BBIT_HUB, or `bbit config set hub URL`")
  end
  return hub
end

-- Verifies `token` with the server, then stores it (0600) for `hub`.
local function store_token(hub, token)
  local me = remote.client(hub, { token = token }):whoami()
  config.set_token(hub, token)
  local c = config.load()
  if not c.hub then
    c.hub = hub
    config.save(c)
  end
  print(("Signed in successfully as %s (%s)"):format(me.user, hub))
end

return {
  summary = "sign in to a bbit server (browser, or --token for CI)",
  usage = "bbit login [--hub URL] [--token TOKEN] [--no-browser] [--port P]",
  description = [[
With --token, the token is checked with the server (whoami) and stored in
$BBIT_HOME/config.json (mode 0600). Without it, bbit opens the server's
sign-in page in a browser and receives a new token on 127.0.0.1.
CI can also set BBIT_TOKEN instead of logging in.]],
  options = {
    { "hub", type = "string", arg = "URL", help = "the server (default: BBIT_HUB / the configured hub)" },
    { "token", type = "string", arg = "TOKEN", help = "use this token (verified before it is stored)" },
    { "no-browser", type = "boolean", help = "print the sign-in URL instead of opening a browser" },
    { "port", type = "number", arg = "P", help = "the local port the browser returns to (default: random)" },
    { "timeout", type = "number", arg = "SECONDS", help = "how long to wait for the browser (default 300)" },
  },
  run = function(ctx)
    local hub = hub_of(ctx)
    if ctx.opts.token then
      store_token(hub, ctx.opts.token)
      return 0
    end
    local token = require("bbit.login").browser_flow(hub, {
      port = ctx.opts.port,
      no_browser = ctx.opts.no_browser,
      timeout = ctx.opts.timeout or 300,
    })
    store_token(hub, token)
    return 0
  end,
}
