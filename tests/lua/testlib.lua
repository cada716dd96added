--- A small test library for tests/lua/test_*.lua, run by `bbit run`.
---
---   local t = require("testlib")
---   t.test("decodes numbers", function() t.eq(json.decode("1"), 1) end)
---   t.done()   -- prints the summary; exits 1 when a test failed
local errors = require("bbit.errors")

local M = {}
local passed, failed = 0, 0
local script = arg and arg[0] or "?"

local function show(v)
  if type(v) == "string" then
    return ("%q"):format(v)
  end
  if type(v) == "table" then
    local ok, json = pcall(require, "bbit.json")
    if ok and json.encode then
      local ok2, s = pcall(json.encode, v)
      if ok2 then
        return s
      end
    end
  end
  return tostring(v)
end

local function deep_eq(a, b)
  if a == b then
    return true
  end
  if type(a) ~= "table" or type(b) ~= "table" then
    return false
  end
  for k, v in pairs(a) do
    if not deep_eq(v, b[k]) then
      return false
    end
  end
  for k in pairs(b) do
    if a[k] == nil then
      return false
    end
  end
  return true
end

--- Runs one named test.
function M.test(name, fn)
  local ok, err = xpcall(fn, function(e)
    return debug.traceback(errors.message(e), 2)
  end)
  if ok then
    passed = passed + 1
    print("ok - " .. name)
  else
    failed = failed + 1
    print("not ok - " .. name)
    print("  " .. tostring(err):gsub("\n", "\n  "))
  end
end

--- Fails unless `actual` deep-equals `expected`.
function M.eq(actual, expected, what)
  if not deep_eq(actual, expected) then
    error(("%sexpected %s, got %s"):format(what and (what .. ": ") or "", show(expected), show(actual)), 2)
  end
end

--- Fails unless `v` is truthy.
function M.ok(v, what)
  if not v then
    error("expected a true value" .. (what and (": " .. what) or ""), 2)
  end
  return v
end

--- Fails unless string `s` contains plain `part`.
function M.contains(s, part, what)
  if type(s) ~= "string" or not s:find(part, 1, true) then
    error(("%sexpected %s to contain %s"):format(what and (what .. ": ") or "", show(s), show(part)), 2)
  end
end

--- Fails unless `fn` raises; returns the error message. When `part` is given,
--- the message must contain it.
function M.raises(fn, part)
  local ok, err = pcall(fn)
  if ok then
    error("expected an error" .. (part and (" containing " .. show(part)) or ""), 2)
  end
  local msg = errors.message(err)
  if part and not msg:find(part, 1, true) then
    error(("expected an error containing %s, got %s"):format(show(part), show(msg)), 2)
  end
  return msg, err
end

--- `s` quoted for /bin/sh (one word).
function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Writes `data` to the file `path` (replacing it).
function M.write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

--- A fresh empty directory under the build's test-tmp dir.
function M.tmpdir()
  local base = os.getenv("BBIT_TEST_TMP") or "/tmp"
  os.execute("mkdir -p '" .. base .. "'")
  local p = io.popen("mktemp -d '" .. base .. "/lua.XXXXXX'")
  local dir = p:read("l")
  p:close()
  return dir
end

--- Prints the summary and exits 1 if anything failed.
function M.done()
  print(("%s: %d passed, %d failed"):format(script:match("[^/]*$"), passed, failed))
  os.exit(failed == 0 and 0 or 1, true) -- close the state: __gc kills leftover processes
end

return M
