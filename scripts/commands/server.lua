-- bbit server init|scope|user|token ...: administer a scope server root
-- directly (no running server needed: the root's SQLite is in WAL mode, so
-- this is safe while `bbit serve` runs on it).
local errors = require("bbit.errors")
local json = require("bbit.json")
local log = require("bbit.log")
local server = require("bbit.core.server")

local ROOT_OPTION = { "root", type = "string", arg = "DIR", help = "the server root (default: $BBIT_SERVER_ROOT)" }
local JSON_OPTION = { "json", type = "boolean", help = "print JSON" }

--- The --root option (or $BBIT_SERVER_ROOT); a usage error without either.
---@param ctx table the command context
---@return string root
local function root_of(ctx)
  local root = ctx.opts.root or os.getenv("BBIT_SERVER_ROOT")
  if not root or root == "" then
    errors.usage(("bbit %s needs --root DIR (the server root)"):format(ctx.command))
  end
  return root
end

--- The single positional argument `what` of the command; a usage error otherwise.
---@param ctx table
---@param what string what the argument is, for the message
---@return string
local function one_arg(ctx, what)
  if #ctx.args ~= 1 then
    errors.usage(("bbit %s needs exactly one %s (see bbit %s --help)"):format(ctx.command, what, ctx.command))
  end
  return ctx.args[1]
end

--- Reads the new user's password: a line of stdin with --password-stdin,
--- else a prompt without echo on a terminal.
---@param ctx table
---@return string password
local function read_password(ctx)
  if ctx.opts.password_stdin then
    local line = io.stdin:read("l")
    if not line then
      errors.fail("no password on stdin (--password-stdin reads one line)")
    end
    return (line:gsub("\r$", ""))
  end
  if not require("bbit.term").isatty(0) then
    errors.fail("no terminal to ask for the password: use --password-stdin", "pipe it in with --password-stdin, e.g. `echo \"$PW\" | bbit server user add NAME --password-stdin --root DIR`")
  end
  local pw = errors.check(server.read_password("Password: "))
  local again = errors.check(server.read_password("Repeat the password: "))
  if pw ~= again then
    errors.fail("the passwords do not match")
  end
  return pw
end

local function print_json(value)
  io.write(json.encode(value, { pretty = true }))
  io.write("\n")
end

local function grants_text(grants)
  local parts = {}
  for _, g in ipairs(grants or {}) do
    parts[#parts + 1] = g.scope .. "=" .. g.role
  end
  return #parts > 0 and table.concat(parts, ",") or "-"
end

return {
  summary = "administer a scope server root (scopes, users, tokens)",
  usage = "bbit server init|scope|user|token ... --root DIR",
  description = [[
These commands work directly on the server root's database; no running server
is needed. --root may be replaced by the environment variable BBIT_SERVER_ROOT.]],
  subcommands = {
    init = {
      summary = "create a server root",
      usage = "bbit server init --root DIR",
      options = { ROOT_OPTION },
      run = function(ctx)
        local root = root_of(ctx)
        local state = errors.check(server.init(root))
        if state == "exists" then
          log.info(("%s is already initialized as a bbit server root"):format(root))
        else
          print(("Initialized a bbit server root in %s"):format(root))
          log.info(("next: bbit server scope create OWNER.SCOPE --root %s"):format(root))
        end
        return 0
      end,
    },
    scope = {
      summary = "create or list the hosted scopes",
      usage = "bbit server scope create|list ...",
      subcommands = {
        create = {
          summary = "host a new scope (owner.scope or a bare name)",
          usage = "bbit server scope create NAME [--public] --root DIR",
          options = {
            { "public", type = "boolean", help = "anyone may read it without a token" },
            ROOT_OPTION,
          },
          run = function(ctx)
            local root = root_of(ctx)
            local name = one_arg(ctx, "scope NAME")
            errors.check(server.scope_create(root, name, ctx.opts.public == true))
            print(("Created %sscope %s"):format(ctx.opts.public and "public " or "", name))
            return 0
          end,
        },
        list = {
          summary = "the hosted scopes",
          usage = "bbit server scope list [--json] --root DIR",
          options = { JSON_OPTION, ROOT_OPTION },
          run = function(ctx)
            local scopes = errors.check(server.scope_list(root_of(ctx)))
            if ctx.opts.json then
              print_json(json.array(scopes))
              return 0
            end
            for _, s in ipairs(scopes) do
              print(("%-40s %-8s %d component%s"):format(s.name, s.public and "public" or "private",
                s.components, s.components == 1 and "" or "s"))
            end
            return 0
          end,
        },
      },
    },
    user = {
      summary = "add users",
      usage = "bbit server user add ...",
      subcommands = {
        add = {
          summary = "add a user (password from stdin or a terminal prompt)",
          usage = "bbit server user add NAME [--password-stdin] [--grant PATTERN=ROLE ...] --root DIR",
          description = [[
A user's grants are used by the tokens that have none of their own (the tokens
a sign-in creates). ROLE is read, write or admin; PATTERN is a scope name or a
glob such as my-org.*]],
          options = {
            { "password-stdin", type = "boolean", help = "read the password from one line of stdin" },
            { "grant", type = "list", arg = "PATTERN=ROLE", help = "a grant (repeatable)" },
            ROOT_OPTION,
          },
          run = function(ctx)
            local root = root_of(ctx)
            local name = one_arg(ctx, "user NAME")
            local password = read_password(ctx)
            errors.check(server.user_add(root, name, password, ctx.opts.grant or {}))
            print(("Added user %s"):format(name))
            return 0
          end,
        },
      },
    },
    token = {
      summary = "issue, revoke and list tokens",
      usage = "bbit server token create|revoke|list ...",
      subcommands = {
        create = {
          summary = "issue a token (printed alone on the last line of stdout)",
          usage = "bbit server token create USER --scope PATTERN --role read|write|admin [--name N] --root DIR",
          description = [[
The token is shown once: the server keeps only its SHA-256. Use it with
`bbit login --token T` or the BBIT_TOKEN environment variable.]],
          options = {
            { "scope", type = "string", arg = "PATTERN", help = "the scopes it may use (a name or a glob: my-org.*)" },
            { "role", type = "string", arg = "ROLE", help = "read, write or admin" },
            { "name", type = "string", arg = "N", help = "a label (default token-ID)" },
            ROOT_OPTION,
          },
          run = function(ctx)
            local root = root_of(ctx)
            local user = one_arg(ctx, "USER")
            if not ctx.opts.scope or not ctx.opts.role then
              errors.usage("bbit server token create needs --scope PATTERN and --role read|write|admin")
            end
            local token, id, name = errors.check(server.token_create(root, user, ctx.opts.scope, ctx.opts.role, ctx.opts.name))
            log.info(("Created token %d (%s) for %s: %s=%s"):format(id, name, user, ctx.opts.scope, ctx.opts.role))
            io.stdout:write(token, "\n")
            return 0
          end,
        },
        revoke = {
          summary = "revoke a token by id",
          usage = "bbit server token revoke ID --root DIR",
          options = { ROOT_OPTION },
          run = function(ctx)
            local root = root_of(ctx)
            local arg = one_arg(ctx, "token ID")
            local id = math.tointeger(tonumber(arg))
            if not id or id <= 0 then
              errors.usage(("invalid token id '%s' (a number, see bbit server token list)"):format(arg))
            end
            local _, already = errors.check(server.token_revoke(root, id))
            if already then
              print(("Token %d was already revoked"):format(id))
            else
              print(("Revoked token %d"):format(id))
            end
            return 0
          end,
        },
        list = {
          summary = "every token (never the secret itself)",
          usage = "bbit server token list [--json] --root DIR",
          options = { JSON_OPTION, ROOT_OPTION },
          run = function(ctx)
            local tokens = errors.check(server.token_list(root_of(ctx)))
            if ctx.opts.json then
              for _, t in ipairs(tokens) do
                t.grants = json.array(t.grants)
              end
              print_json(json.array(tokens))
              return 0
            end
            for _, t in ipairs(tokens) do
              print(("%-5d %-16s %-20s %-30s %s"):format(t.id, t.user, t.name, grants_text(t.grants),
                t.revoked_at and ("revoked " .. t.revoked_at) or ("last used " .. (t.last_used_at or "never"))))
            end
            return 0
          end,
        },
      },
    },
  },
}
