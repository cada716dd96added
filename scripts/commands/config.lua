-- bbit config get|set|list|del: user settings in $BBIT_HOME/config.json.
local config = require("bbit.config")
local errors = require("bbit.errors")
local json = require("bbit.json")

local PROTECTED = { tokens = true, remotes = true }

local function key_arg(ctx)
  local key = ctx.args[1] or errors.usage(("bbit %s needs a KEY"):format(ctx.command))
  if PROTECTED[key] then
    errors.usage(("'%s' is managed by bbit (%s)"):format(key, key == "tokens" and "bbit login/logout" or "bbit remote"))
  end
  return key
end

return {
  summary = "read and change user settings (e.g. hub)",
  usage = "bbit config get KEY | set KEY VALUE | list | del KEY",
  description = [[
Settings live in $BBIT_HOME/config.json (mode 0600). Known keys: hub (the
default server URL). Tokens are never printed.]],
  subcommands = {
    get = {
      summary = "print a setting",
      run = function(ctx)
        local key = key_arg(ctx)
        local value = config.load()[key]
        if value == nil then
          errors.fail(("%s is not set"):format(key))
        end
        print(type(value) == "table" and json.encode(value) or tostring(value))
        return 0
      end,
    },
    set = {
      summary = "change a setting",
      run = function(ctx)
        local key = key_arg(ctx)
        local value = ctx.args[2] or errors.usage("bbit config set needs a VALUE")
        if key == "hub" then
          value = config.normalize_url(value)
        end
        local c = config.load()
        c[key] = value
        config.save(c)
        print(("%s = %s"):format(key, value))
        return 0
      end,
    },
    del = {
      summary = "remove a setting",
      run = function(ctx)
        local key = key_arg(ctx)
        local c = config.load()
        c[key] = nil
        config.save(c)
        return 0
      end,
    },
    list = {
      summary = "print every setting (tokens hidden)",
      run = function()
        local c = config.load()
        local keys = {}
        for k in pairs(c) do
          keys[#keys + 1] = k
        end
        table.sort(keys)
        for _, k in ipairs(keys) do
          local v = c[k]
          if k == "tokens" then
            local hubs = {}
            for hub in pairs(v) do
              hubs[#hubs + 1] = hub
            end
            table.sort(hubs)
            v = "(tokens for " .. table.concat(hubs, ", ") .. ")"
          elseif type(v) == "table" then
            v = json.encode(v)
          end
          print(("%s = %s"):format(k, tostring(v)))
        end
        return 0
      end,
    },
  },
}
