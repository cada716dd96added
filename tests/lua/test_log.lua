-- bbit.log and bbit.term: levels, redaction, colours (NO_COLOR), and a
-- progress display that only draws on a terminal.
local t = require("testlib")
local log = require("bbit.log")
local term = require("bbit.term")

local BBIT = assert(os.getenv("BBIT"), "run through ctest (BBIT unset)")
local dir = t.tmpdir()

local q = t.quote

-- Runs a Lua snippet with bbit (options before `run`), returns its stderr.
local function stderr_of(code, options, env)
  local file = dir .. "/snippet.lua"
  local f = assert(io.open(file, "w"))
  f:write(code)
  f:close()
  local p = io.popen(("%s %s %s run %s 2>&1 >/dev/null"):format(env or "", q(BBIT), options or "", q(file)))
  local out = p:read("a")
  p:close()
  return out
end

t.test("redact hides bearer tokens and token= values", function()
  t.eq(log.redact("Authorization: Bearer bbit_0123456789abcdef"), "Authorization: Bearer ***")
  t.eq(log.redact('{"token": "bbit_secret"}'), '{"token": "***"}')
  t.eq(log.redact("GET /callback?state=x&token=abc&user=a"), "GET /callback?state=x&token=***&user=a")
  t.eq(log.redact("nothing secret here"), "nothing secret here")
end)

t.test("levels: info by default; verbose and debug only when asked", function()
  local code = [[
local log = require("bbit.log")
log.info("an info line")
log.verbose("a verbose line with Bearer bbit_topsecret")
log.debug("a debug line")
log.warn("careful")
]]
  local plain = stderr_of(code, "", "NO_COLOR=1")
  t.contains(plain, "an info line")
  t.contains(plain, "warning: careful")
  t.ok(not plain:find("a verbose line", 1, true), "verbose hidden by default")
  t.ok(not plain:find("a debug line", 1, true), "debug hidden by default")
  local verbose = stderr_of(code, "--verbose", "NO_COLOR=1")
  t.contains(verbose, "a verbose line with Bearer ***")
  t.ok(not verbose:find("topsecret", 1, true), "the token never appears")
  t.ok(not verbose:find("a debug line", 1, true))
  t.contains(stderr_of(code, "--debug", "NO_COLOR=1"), "debug: a debug line")
end)

t.test("colours only on a terminal, never with NO_COLOR", function()
  t.eq(term.color("red", "x", 1), "x") -- stdout is a pipe under ctest
  local code = 'io.stdout:write(require("bbit.term").color("red", "x", 1))'
  local f = assert(io.open(dir .. "/c.lua", "w"))
  f:write(code)
  f:close()
  -- script(1) gives the child a terminal
  local p = io.popen(("script -qec %s /dev/null"):format(q(("NO_COLOR= %s run %s"):format(q(BBIT), q(dir .. "/c.lua")))))
  local on_tty = p:read("a")
  p:close()
  t.contains(on_tty, "\27[31mx\27[0m")
  p = io.popen(("script -qec %s /dev/null"):format(q(("NO_COLOR=1 %s run %s"):format(q(BBIT), q(dir .. "/c.lua")))))
  local no_color = p:read("a")
  p:close()
  t.ok(not no_color:find("\27[", 1, true), "NO_COLOR disables colours: " .. no_color)
end)

t.test("the progress display draws only on a terminal", function()
  local code = [[
local p = require("bbit.log").progress(4, "build")
for i = 1, 4 do p:update(i, "item " .. i) end
p:line("a permanent line")
p:done()
]]
  local piped = stderr_of(code, "", "NO_COLOR=1")
  t.eq(piped, "a permanent line\n")
  local f = assert(io.open(dir .. "/p.lua", "w"))
  f:write(code)
  f:close()
  local p = io.popen(("script -qec %s /dev/null"):format(q(("NO_COLOR=1 %s run %s"):format(q(BBIT), q(dir .. "/p.lua")))))
  local on_tty = p:read("a")
  p:close()
  t.contains(on_tty, "[100%] build: item 4")
  t.contains(on_tty, "\r\27[K")
  t.contains(on_tty, "a permanent line")
end)

t.test("term facts", function()
  t.eq(term.isatty(1), false)
  t.eq(term.width(1), 80)
  local a = term.clock()
  local b = term.clock()
  t.ok(b >= a and a > 0)
end)

t.done()
