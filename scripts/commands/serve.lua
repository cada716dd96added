-- bbit serve: run the scope server (SPEC §7) until SIGINT or SIGTERM.
local errors = require("bbit.errors")
local host = require("bbit.core.host")
local server = require("bbit.core.server")

local function size_option(ctx, name, value)
  if value == nil then
    return nil
  end
  local n = math.tointeger(value)
  if not n or n <= 0 then
    errors.usage(("option --%s needs a positive whole number, got %s"):format(name, tostring(value)))
  end
  return n
end

return {
  summary = "run the scope server",
  usage = "bbit serve --root DIR [--listen 127.0.0.1:3000]",
  description = [[
Serves the scopes of a server root (created with `bbit server init`) over the
JSON API under /api/v1/. Plain HTTP: it listens on loopback addresses only
unless --public-listen is given (put a TLS proxy in front). Port 0 lets the
kernel choose; the real address is printed as
"bbit serve: listening on http://HOST:PORT (root DIR)". Stops cleanly on
SIGINT or SIGTERM.]],
  options = {
    { "root", type = "string", arg = "DIR", help = "the server root (default: $BBIT_SERVER_ROOT)" },
    { "listen", type = "string", arg = "HOST:PORT", default = "127.0.0.1:3000", help = "address to listen on" },
    { "public-listen", type = "boolean", help = "allow a non-loopback address" },
    { "max-object-size", type = "number", arg = "BYTES", help = "largest accepted object (default 2 GiB)" },
    { "max-connections", type = "number", arg = "N", help = "simultaneous connections (default 64)" },
  },
  run = function(ctx)
    local root = ctx.opts.root or os.getenv("BBIT_SERVER_ROOT")
    if not root or root == "" then
      errors.usage("bbit serve needs --root DIR (a server root; create one with `bbit server init --root DIR`)")
    end
    if #ctx.args > 0 then
      errors.usage(("unexpected argument '%s' (see bbit serve --help)"):format(ctx.args[1]))
    end
    io.stdout:flush()
    errors.check(server.serve({
      root = root,
      listen = ctx.opts.listen,
      public_listen = ctx.opts.public_listen == true,
      max_object_size = size_option(ctx, "max-object-size", ctx.opts.max_object_size),
      max_connections = size_option(ctx, "max-connections", ctx.opts.max_connections),
      version = host.version,
    }))
    return 0
  end,
}
