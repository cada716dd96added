-- bbit remote add|ls|rm: which server hosts which scopes.
local config = require("bbit.config")
local errors = require("bbit.errors")
local json = require("bbit.json")
local remote = require("bbit.remote")
local workspace = require("bbit.workspace")

local function lists(ctx, global)
  if global then
    local c = config.load()
    return c.remotes or {}, function(list)
      local fresh = config.load()
      fresh.remotes = #list > 0 and json.array(list) or nil
      config.save(fresh)
    end, config.path()
  end
  local ws = workspace.open(nil, { lock = "fail" })
  local list = remote.entries(ws)
  return list, function(l)
    remote.save_workspace_entries(ws, l)
  end, remote.workspace_file(ws)
end

return {
  summary = "map scopes to bbit servers",
  usage = "bbit remote add URL [--scope PATTERN] [--global] | remote ls | remote rm URL [--scope PATTERN] [--global]",
  description = [[
A remote maps a scope pattern (my-org.*, an exact scope, or * for all) to a
server URL. Workspace remotes are kept in the local scope; --global ones in
$BBIT_HOME/config.json. The server of a scope: workspace remotes, then global
ones, then "bbit.remotes" in workspace.jsonc, then BBIT_HUB / `bbit config set hub`.]],
  subcommands = {
    add = {
      summary = "add a remote (checks that the server answers)",
      usage = "bbit remote add URL [--scope PATTERN] [--global]",
      options = {
        { "scope", type = "string", arg = "PATTERN", help = "scopes this server hosts (default: *)" },
        { "global", type = "boolean", help = "for every workspace of this user" },
      },
      run = function(ctx)
        local url = ctx.args[1] or errors.usage("bbit remote add needs a server URL")
        url = config.normalize_url(url)
        local pattern = ctx.opts.scope or "*"
        if not pattern:match("^[a-z0-9_.*%-]+$") then
          errors.usage(("--scope '%s' is not a scope pattern (letters, digits, '.', '-', '_', '*')"):format(pattern))
        end
        local health = remote.client(url):health()
        local list, save, where = lists(ctx, ctx.opts.global)
        for i = #list, 1, -1 do
          if list[i].scope == pattern then
            table.remove(list, i)
          end
        end
        list[#list + 1] = { url = url, scope = pattern }
        save(list)
        print(("remote added: %s → %s (server bbit %s; in %s)"):format(pattern, url, tostring(health.version), where))
        return 0
      end,
    },
    ls = {
      summary = "list the remotes",
      usage = "bbit remote ls [--json]",
      options = { { "json", type = "boolean", help = "print JSON" } },
      run = function(ctx)
        local ws = ctx.workspace_root and workspace.open() or nil
        local local_entries, global = remote.entries(ws)
        local rows = {}
        for _, e in ipairs(local_entries) do
          rows[#rows + 1] = { scope = e.scope, url = e.url, where = "workspace" }
        end
        for _, e in ipairs(global) do
          rows[#rows + 1] = { scope = e.scope, url = e.url, where = "global" }
        end
        if ws and type(ws:bbit_config().remotes) == "table" then
          for pattern, url in pairs(ws:bbit_config().remotes) do
            rows[#rows + 1] = { scope = pattern, url = url, where = "workspace.jsonc" }
          end
        end
        local hub = config.hub()
        if hub then
          rows[#rows + 1] = { scope = "*", url = hub, where = "hub" }
        end
        if ctx.opts.json then
          io.write(json.encode(json.array(rows), { pretty = true }))
          return 0
        end
        if #rows == 0 then
          print("no remotes (add one with `bbit remote add URL --scope PATTERN`)")
        end
        for _, r in ipairs(rows) do
          print(("%-24s %-36s %s"):format(r.scope, r.url, r.where))
        end
        return 0
      end,
    },
    rm = {
      summary = "remove a remote",
      usage = "bbit remote rm URL|PATTERN [--global]",
      options = { { "global", type = "boolean", help = "remove a global remote" } },
      run = function(ctx)
        local what = ctx.args[1] or errors.usage("bbit remote rm needs the URL or scope pattern of a remote")
        local list, save, where = lists(ctx, ctx.opts.global)
        local kept, removed = {}, 0
        for _, e in ipairs(list) do
          if e.scope == what or e.url == what or e.url == what:gsub("/+$", "") then
            removed = removed + 1
          else
            kept[#kept + 1] = e
          end
        end
        if removed == 0 then
          errors.fail(("no remote %s in %s"):format(what, where), "see `bbit remote ls`")
        end
        save(kept)
        print(("removed %d remote(s) from %s"):format(removed, where))
        return 0
      end,
    },
  },
}
