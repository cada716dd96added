-- bbit whoami: who the stored token (or BBIT_TOKEN) signs in as.
local config = require("bbit.config")
local errors = require("bbit.errors")
local remote = require("bbit.remote")

return {
  summary = "show who you are signed in as on a server",
  usage = "bbit whoami [--hub URL]",
  options = { { "hub", type = "string", arg = "URL", help = "the server (default: BBIT_HUB / the configured hub)" } },
  run = function(ctx)
    local hub = ctx.opts.hub and config.normalize_url(ctx.opts.hub) or config.hub()
      or errors.fail("no server given", "use --hub URL, set BBIT_HUB, or `bbit config set hub URL`")
    local token, source = config.token_for(hub)
    if not token then
      errors.fail(("not signed in to %s"):format(hub), "run `bbit login --hub " .. hub .. "`")
    end
    local me = remote.client(hub, { token = token }):whoami()
    print(("%s (%s, token %s from %s)"):format(me.user, hub, tostring(me.token and me.token.name or "?"), source))
    for _, g in ipairs(me.grants or {}) do
      print(("  %s on %s"):format(g.role, g.scope))
    end
    return 0
  end,
}
