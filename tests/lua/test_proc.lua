-- Tests of bbit.proc and bbit.core.proc (spawning, capture, timeouts, errors).
local t = require("testlib")
local proc = require("bbit.proc")
local core = require("bbit.core.proc")
local errors = require("bbit.errors")

-- Is `pid` a live process (not a zombie)?
local function running(pid)
  local f = io.open(("/proc/%d/stat"):format(pid), "r")
  if not f then
    return false
  end
  local stat = f:read("a")
  f:close()
  return stat:match("^%d+ %b() (%a)") ~= "Z"
end

-- Is our direct child `pid` reaped (no process, not even a zombie)? Strict and
-- immediate: bbit reaps its children itself.
local function reaped(pid)
  return os.execute(("kill -0 %d 2>/dev/null"):format(pid)) ~= true
end

-- Has `pid` gone? Killed orphans are reaped by init a moment later, so this
-- waits up to 2 s for `pid` to go away (or become a zombie) before saying no.
local function gone(pid)
  for _ = 1, 40 do
    if os.execute(("kill -0 %d 2>/dev/null"):format(pid)) ~= true or not running(pid) then
      return true
    end
    os.execute("sleep 0.05")
  end
  return false
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Waits (up to `seconds`) for a file to exist and hold a line.
local function wait_for_line(path, seconds)
  for _ = 1, seconds * 20 do
    local f = io.open(path, "rb")
    if f then
      local s = f:read("a")
      f:close()
      if s:find("\n") then
        return s
      end
    end
    os.execute("sleep 0.05")
  end
  error("no line in " .. path)
end

t.test("argv runs without a shell: metacharacters reach the program unchanged", function()
  local r = proc.run({ "printf", "%s|", "a b", "it's \"quoted\"", "$HOME", "*", "" })
  t.eq(r.code, 0)
  t.eq(r.stdout, "a b|it's \"quoted\"|$HOME|*||")
  t.eq(r.stderr, "")
  t.eq(r.timed_out, false)
  t.eq(r.signal, nil)
end)

t.test("a string runs through /bin/sh -c", function()
  local r = proc.run("echo $((6 * 7)) | tr 4 X")
  t.eq(r.code, 0)
  t.eq(r.stdout, "X2\n")
end)

t.test("opts.shell runs an argv table as a shell line", function()
  local r = proc.run({ "echo", "one", "&&", "echo", "two" }, { shell = true })
  t.eq(r.stdout, "one\ntwo\n")
end)

t.test("shell_quote round-trips awkward arguments through the shell", function()
  local args = { "a b", "it's", "\"dq\"", "$HOME `x` \\ ;|&", "", "plain-arg_1.2/x", "new\nline" }
  local quoted = {}
  for i, a in ipairs(args) do
    quoted[i] = proc.shell_quote(a)
  end
  t.eq(proc.shell_quote("plain-arg_1.2/x"), "plain-arg_1.2/x")
  t.eq(proc.shell_quote(""), "''")
  t.eq(proc.shell_quote("it's"), "'it'\\''s'")
  local r = proc.run("printf '%s|' " .. table.concat(quoted, " "))
  t.eq(r.stdout, table.concat(args, "|") .. "|")
end)

t.test("stdout and stderr are captured separately", function()
  local r = proc.run("echo to-out; echo to-err >&2; echo more-out")
  t.eq(r.stdout, "to-out\nmore-out\n")
  t.eq(r.stderr, "to-err\n")
end)

t.test("exit codes are reported, non-zero does not raise without check", function()
  t.eq(proc.run("exit 0").code, 0)
  t.eq(proc.run("exit 3").code, 3)
  t.eq(proc.run({ "false" }).code, 1)
  t.eq(proc.run("exit 255").code, 255)
end)

t.test("death by a signal is reported as signal, code nil", function()
  local r = proc.run("kill -TERM $$")
  t.eq(r.code, nil)
  t.eq(r.signal, 15)
  t.eq(r.signal_name, "SIGTERM")
  t.eq(r.timed_out, false)
end)

t.test("10 MB of output on both streams does not deadlock", function()
  local r = proc.run("head -c 10000000 /dev/zero; head -c 3000000 /dev/zero >&2; echo done >&2")
  t.eq(r.code, 0)
  t.eq(#r.stdout, 10000000)
  t.eq(#r.stderr, 3000005)
  t.eq(r.stdout:find("[^%z]"), nil)
  t.eq(r.truncated, false)
end)

t.test("1 MB of stdin is fed to the child without deadlock", function()
  local parts = {}
  for i = 1, 1024 * 1024 / 16 do
    parts[i] = ("%015d\n"):format(i)
  end
  local input = table.concat(parts)
  t.eq(#input, 1024 * 1024)
  local r = proc.run({ "cat" }, { stdin = input })
  t.eq(r.code, 0)
  t.ok(r.stdout == input, "cat echoes the 1 MB stdin byte for byte")
  -- a child that reads slowly in small pieces
  r = proc.run("wc -c", { stdin = input })
  t.eq(r.stdout:match("%d+"), "1048576")
end)

t.test("stdin is /dev/null by default; a child ignoring big stdin does not hang", function()
  t.eq(proc.run("cat").stdout, "")
  local r = proc.run("exit 4", { stdin = string.rep("y", 4 * 1024 * 1024) })
  t.eq(r.code, 4)
end)

t.test("env overrides merge into the inherited environment", function()
  local r = proc.run("printf '%s|%s|%s' \"$BBIT_T_A\" \"$HOME\" \"${NO_COLOR-unset}\"",
    { env = { BBIT_T_A = "va lue", NO_COLOR = false } })
  t.eq(r.stdout, "va lue|" .. os.getenv("HOME") .. "|unset")
end)

t.test("env_clear gives the child only the given variables", function()
  local r = proc.run({ "/usr/bin/env" }, { env_clear = true, env = { ONLY = "1", N = 2 } })
  local lines = {}
  for l in r.stdout:gmatch("[^\n]+") do
    lines[#lines + 1] = l
  end
  table.sort(lines)
  t.eq(lines, { "N=2", "ONLY=1" })
  -- without PATH in env, programs are searched in the default PATH
  t.eq(proc.run({ "env" }, { env_clear = true }).stdout, "")
end)

t.test("PATH of env decides where an argv program is found", function()
  local dir = t.tmpdir()
  local f = assert(io.open(dir .. "/bbit-t-tool", "w"))
  f:write("#!/bin/sh\necho tool ran\n")
  f:close()
  os.execute("chmod +x " .. dir .. "/bbit-t-tool")
  t.eq(proc.run({ "bbit-t-tool" }, { env = { PATH = dir .. ":/usr/bin:/bin" } }).stdout, "tool ran\n")
  t.raises(function()
    proc.run({ "bbit-t-tool" })
  end, "bbit-t-tool: No such file or directory")
end)

t.test("cwd sets the working directory", function()
  local dir = t.tmpdir()
  t.eq(proc.run({ "pwd" }, { cwd = dir }).stdout, dir .. "\n")
  t.eq(proc.run("pwd", { cwd = dir }).stdout, dir .. "\n")
end)

t.test("a bad cwd is a clean spawn failure", function()
  local msg = t.raises(function()
    proc.run({ "pwd" }, { cwd = "/nonexistent/bbit-dir" })
  end, "proc.spawn: cwd /nonexistent/bbit-dir: No such file or directory")
  t.contains(msg, "cannot run pwd")
  local h, err = core.spawn({ argv = { "true" }, cwd = "/etc/passwd" })
  t.eq(h, nil)
  t.eq(err, "proc.spawn: cwd /etc/passwd: Not a directory")
end)

t.test("a missing executable is a clean failure, not an exit 127", function()
  local h, err = core.spawn({ argv = { "bbit-no-such-program", "x" } })
  t.eq(h, nil)
  t.eq(err, "proc.spawn: bbit-no-such-program: No such file or directory")
  h, err = core.spawn({ argv = { "/nonexistent/prog" } })
  t.eq(h, nil)
  t.eq(err, "proc.spawn: /nonexistent/prog: No such file or directory")
  h, err = core.spawn({ argv = { "/etc/passwd" } })
  t.eq(h, nil)
  t.eq(err, "proc.spawn: /etc/passwd: Permission denied")
  local msg, e = t.raises(function()
    proc.run({ "bbit-no-such-program", "some arg" })
  end)
  t.ok(errors.is_failure(e), "a reported failure, not a bug")
  t.eq(msg, "cannot run bbit-no-such-program 'some arg': proc.spawn: bbit-no-such-program: No such file or directory")
  local r, err2 = proc.try_run({ "bbit-no-such-program" })
  t.eq(r, nil)
  t.contains(err2, "No such file or directory")
end)

t.test("check = true raises naming the command, exit code and output tail", function()
  local script = "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line$i >&2; done; echo partial-out; exit 7"
  local msg, e = t.raises(function()
    proc.run(script, { check = true })
  end)
  t.ok(errors.is_failure(e))
  t.contains(msg, "command failed with exit code 7: " .. script)
  t.contains(msg, "stderr (last lines):\n  line3\n")
  t.contains(msg, "  line12")
  t.ok(not msg:find("line2\n", 1, true), "only the last 10 lines: " .. msg)
  t.contains(msg, "stdout (last lines):\n  partial-out")
  local r, err = proc.try_run({ "sh", "-c", "exit 2" }, { check = true })
  t.eq(r, nil)
  t.eq(err, "command failed with exit code 2: sh -c 'exit 2'")
  t.eq(proc.run("true", { check = true }).code, 0)
end)

t.test("output returns stdout without trailing newlines and checks", function()
  t.eq(proc.output({ "printf", "a\nb\n\n" }), "a\nb")
  t.raises(function()
    proc.output("echo nope >&2; exit 1")
  end, "command failed with exit code 1")
end)

t.test("max_output keeps the tail of each stream", function()
  local r = proc.run("seq 1 100000; echo ERR-TAIL >&2", { max_output = 20 })
  t.eq(r.code, 0)
  t.eq(r.stdout, "\n99998\n99999\n100000\n") -- the last 20 bytes
  t.eq(#r.stdout, 20)
  t.eq(r.stderr, "ERR-TAIL\n")
  t.eq(r.truncated, true)
  -- a ring that wraps many times, with a buffer larger than one read
  r = proc.run("seq 1 300000", { max_output = 100000 })
  local full = proc.run("seq 1 300000").stdout
  t.eq(#r.stdout, 100000)
  t.ok(r.stdout == full:sub(-100000), "the last 100000 bytes")
  r = proc.run("echo hidden", { max_output = 0 })
  t.eq(r.stdout, "")
  t.eq(r.truncated, true)
end)

t.test("timeout kills the whole process group", function()
  local dir = t.tmpdir()
  local r = proc.run(("sleep 100 & echo $! > %s/bg; sleep 100"):format(dir), { timeout = 0.5 })
  t.eq(r.timed_out, true)
  t.eq(r.code, nil)
  t.eq(r.signal_name, "SIGTERM")
  t.ok(r.duration >= 0.5 and r.duration < 1.5, "duration " .. r.duration)
  local bg = tonumber(read_file(dir .. "/bg"))
  t.ok(bg, "background pid recorded")
  t.ok(gone(bg), "the background sleep was killed too")
  t.ok(reaped(r.pid), "the shell is reaped")
  local msg = t.raises(function()
    proc.run("sleep 100", { timeout = 0.2, check = true })
  end)
  t.eq(msg, "command timed out after 0.2 s: sleep 100")
end)

t.test("a group ignoring SIGTERM gets SIGKILL after kill_grace", function()
  local dir = t.tmpdir()
  local r = proc.run(("trap '' TERM; sleep 100 & echo $! > %s/bg; sleep 100"):format(dir),
    { timeout = 0.3, kill_grace = 0.3 })
  t.eq(r.timed_out, true)
  t.eq(r.signal_name, "SIGKILL")
  t.ok(r.duration >= 0.6 and r.duration < 5, "duration " .. r.duration)
  t.ok(gone(tonumber(read_file(dir .. "/bg"))), "background sleep killed")
end)

t.test("spawn returns a handle: pid, wait, kill", function()
  local p = proc.spawn({ "sleep", "100" })
  t.ok(running(p:pid()))
  t.eq(p.kind, "proc")
  p:kill()
  local r = p:wait()
  t.eq(r.signal, 9)
  t.ok(reaped(p:pid()))
  local q = proc.spawn("sleep 100")
  q:kill("TERM")
  t.eq(q:wait().signal_name, "SIGTERM")
  t.eq(q:wait().signal, 15) -- wait again: the same result
  local ok = proc.spawn({ "echo", "hi" }):wait()
  t.eq(ok.stdout, "hi\n")
  local c = proc.spawn({ "sh", "-c", "exit 5" }, { check = true })
  t.raises(function()
    c:wait()
  end, "exit code 5")
end)

t.test("a collected or closed handle kills its process group and reaps it", function()
  local dir = t.tmpdir()
  local h = assert(core.spawn({ shell = ("sleep 100 & echo $! > %s/bg; sleep 100"):format(dir) }))
  local pid = h:pid()
  local bg = tonumber(wait_for_line(dir .. "/bg", 5))
  t.ok(running(pid) and running(bg))
  h = nil
  collectgarbage()
  collectgarbage()
  t.ok(reaped(pid), "child killed and reaped (no zombie)")
  t.ok(gone(bg), "grandchild killed")
  do
    local h2 <close> = assert(core.spawn({ argv = { "sleep", "100" } }))
    pid = h2:pid()
  end
  t.ok(reaped(pid), "closed by <close>: killed and reaped")
end)

t.test("raw handle: waitable protocol, result only when finished, closed handle", function()
  local h = assert(core.spawn({ argv = { "sh", "-c", "read x; echo got $x" }, stdin = "abc\n" }))
  t.eq(h.kind, "proc")
  t.ok(#h:poll_fds() >= 2, "pipes and pidfd")
  t.raises(function()
    h:result()
  end, "still running")
  while not h:step() do
    core.wait(h:poll_fds(), 1000)
  end
  t.eq(h:poll_fds(), {})
  local r = h:result()
  t.eq(r.stdout, "got abc\n")
  t.eq(r.code, 0)
  t.ok(r.duration >= 0 and r.duration < 5)
  h:cancel() -- after the end: harmless
  t.eq(h:result().code, 0)
  local fail, err = h:signal("TERM")
  t.eq(fail, nil)
  t.contains(err, "already exited")
  h:close()
  h:close() -- idempotent
  t.raises(function()
    h:step()
  end, "attempt to use a closed process")
  t.eq(tostring(h), "process (closed)")
end)

t.test("misuse raises", function()
  t.raises(function()
    core.spawn({})
  end, "exactly one of argv")
  t.raises(function()
    core.spawn({ argv = { "a" }, shell = "b" })
  end, "exactly one of argv")
  t.raises(function()
    core.spawn({ argv = {} })
  end, "argv is empty")
  t.raises(function()
    core.spawn({ argv = { "echo", {} } })
  end, "argv[2] must be a string")
  t.raises(function()
    core.spawn({ argv = { "echo", "a\0b" } })
  end, "argv[2] must be a string without NUL bytes")
  t.raises(function()
    core.spawn({ shell = "echo a\0; rm -rf x" })
  end, "shell must be a string without NUL bytes")
  t.raises(function()
    core.spawn({ argv = { "echo" }, env = { ["A=B"] = "x" } })
  end, "env keys")
  t.raises(function()
    core.spawn({ argv = { "echo" }, timeout = "soon" })
  end, "timeout must be a number")
  t.raises(function()
    proc.run(42)
  end, "command must be a string or an argv table")
  local h = assert(core.spawn({ argv = { "true" } }))
  t.raises(function()
    h:signal("NOPE")
  end, "unknown signal name")
  h:close()
end)

t.test("no descriptor leaks, and the child inherits none of ours", function()
  -- our descriptors, seen by the kernel (the child's parent is us)
  local me = tonumber(proc.output("echo $PPID"))
  local function open_fds()
    local l = io.popen(("ls /proc/%d/fd | wc -l"):format(me))
    local n = tonumber(l:read("a"))
    l:close()
    return n
  end
  local before = open_fds()
  for _ = 1, 20 do
    proc.run({ "true" })
    proc.run("cat", { stdin = "some input" })
    proc.try_run({ "bbit-no-such-program" })
    proc.try_run({ "true" }, { cwd = "/nonexistent" })
    proc.spawn({ "sleep", "100" }):kill()
    proc.run("sleep 10", { timeout = 0.01 })
    local h = core.spawn({ argv = { "sleep", "100" }, stdin = string.rep("z", 200000) })
    h = nil
    collectgarbage()
  end
  t.eq(open_fds(), before)
  -- a file we hold open is not visible to the child (only 0, 1, 2 are)
  local f <close> = assert(io.open("/dev/null"))
  local r = proc.run("ls /proc/self/fd")
  local fds = {}
  for fd in r.stdout:gmatch("%d+") do
    fds[#fds + 1] = tonumber(fd)
  end
  table.sort(fds)
  t.eq(fds, { 0, 1, 2, 3 }) -- 3 is ls's own directory handle
end)

t.test("--verbose echoes each command as `$ cmd args`; quiet suppresses it", function()
  local dir = t.tmpdir()
  local script = dir .. "/echo.lua"
  local f = assert(io.open(script, "w"))
  f:write([[
local proc = require("bbit.proc")
proc.run({ "echo", "a b", "c" })
proc.run("true && true")
proc.run({ "echo", "hidden" }, { quiet = true })
]])
  f:close()
  local bbit = require("bbit.core.host").exe()
  local r = proc.run({ bbit, "--verbose", "run", script }, { env = { NO_COLOR = "1" } })
  t.eq(r.code, 0)
  t.contains(r.stderr, "$ echo 'a b' c\n")
  t.contains(r.stderr, "$ true && true\n")
  t.ok(not r.stderr:find("hidden", 1, true), "quiet command not echoed")
  r = proc.run({ bbit, "run", script })
  t.eq(r.stderr, "")
end)

t.test("cpu_count and wait", function()
  t.ok(core.cpu_count() >= 1)
  t.eq(core.wait({}, 10), 0)
end)

t.done()
