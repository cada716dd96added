-- bbit logout: forget the stored token of a server.
local config = require("bbit.config")
local errors = require("bbit.errors")
local log = require("bbit.log")
local remote = require("bbit.remote")

return {
  summary = "sign out of a server (revokes the token when reachable, removes it locally)",
  usage = "bbit logout [--hub URL]",
  options = { { "hub", type = "string", arg = "URL", help = "the server (default: BBIT_HUB / the configured hub)" } },
  run = function(ctx)
    local hub = ctx.opts.hub and config.normalize_url(ctx.opts.hub) or config.hub()
      or errors.fail("no server given", "use --hub URL, set BBIT_HUB, or `bbit config set hub URL`")
    local tokens = config.load().tokens or {}
    local token = tokens[hub]
    if not token then
      print(("not signed in to %s; nothing to do"):format(hub))
      return 0
    end
    local ok, err = pcall(function()
      remote.client(hub, { token = token }):request("POST", "/api/v1/logout", nil, "revoke the token")
    end)
    if not ok then
      log.warn("could not revoke the token on %s (%s); removing it locally", hub, errors.message(err))
    end
    config.set_token(hub, nil)
    print(("signed out of %s"):format(hub))
    return 0
  end,
}
