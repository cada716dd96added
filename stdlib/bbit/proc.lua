--- Running programs: with an argv (no shell, nothing to quote) or through
--- `/bin/sh -c`, capturing stdout and stderr, with a timeout, an environment
--- and a working directory.
---
---   local proc = require("bbit.proc")
---   local r = proc.run({ "git", "status", "--porcelain" }, { cwd = root })
---   if r.code ~= 0 then ... end
---   proc.run("npm test", { cwd = dir, check = true, timeout = 600 })
---   local head = proc.output({ "git", "rev-parse", "HEAD" })
---
--- Inside a job of `bbit.jobs.run` a running process yields to the scheduler,
--- so the processes of different jobs run at the same time; elsewhere
--- `run` simply blocks. A child runs in its own process group: a timeout, a
--- cancelled job or a collected handle kills it and everything it started.
local core = require("bbit.core.proc")
local errors = require("bbit.errors")
local jobs = require("bbit.jobs")
local log = require("bbit.log")

local M = {}

---@class bbit.proc.Options
---@field shell? boolean run a string command (or an argv joined with spaces) with `/bin/sh -c`; a string command always does
---@field cwd? string working directory of the child
---@field env? table<string, string|false> variables to set (`false` unsets one); the rest is inherited unless `env_clear`
---@field env_clear? boolean start from an empty environment (only `env`)
---@field stdin? string bytes written to the child's stdin (default: `/dev/null`)
---@field timeout? number seconds; then SIGTERM to the process group, SIGKILL `kill_grace` seconds later
---@field kill_grace? number seconds between SIGTERM and SIGKILL after a timeout (default 2)
---@field max_output? integer keep only the last N bytes of each stream (default 16 MiB)
---@field check? boolean raise a failure when the command does not exit with code 0
---@field quiet? boolean do not echo the command under `--verbose`

---@class bbit.proc.Result
---@field code integer|nil exit code; nil when killed by a signal
---@field signal integer|nil the signal that killed the process, if any
---@field signal_name string|nil its name, e.g. `"SIGKILL"`
---@field stdout string captured stdout (its last `max_output` bytes)
---@field stderr string captured stderr (its last `max_output` bytes)
---@field timed_out boolean the timeout expired and the process group was killed
---@field truncated boolean some output was dropped (more than `max_output` bytes)
---@field duration number seconds from start to exit
---@field pid integer the process id the child had

local SAFE = "^[%w@%%+=:,./_-]+$"

--- Quotes `s` for `/bin/sh` so it reaches the program as one unchanged argument.
---@param s string|number
---@return string
function M.shell_quote(s)
  s = tostring(s)
  if s:match(SAFE) then
    return s
  end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- The command as a user would type it (for logs and messages).
local function display(cmd)
  if type(cmd) == "string" then
    return cmd
  end
  local parts = {}
  for i, a in ipairs(cmd) do
    parts[i] = M.shell_quote(a)
  end
  return table.concat(parts, " ")
end

-- The options of core.proc.spawn for `cmd` and `opts`.
local function spawn_spec(cmd, opts)
  local spec = {
    cwd = opts.cwd,
    env = opts.env,
    env_clear = opts.env_clear,
    stdin = opts.stdin,
    timeout = opts.timeout,
    kill_grace = opts.kill_grace,
    max_output = opts.max_output,
  }
  if type(cmd) == "string" then
    spec.shell = cmd
  else
    if opts.shell then
      spec.shell = table.concat(cmd, " ")
    else
      spec.argv = cmd
    end
  end
  return spec
end

-- The last `n` non-empty lines of `text`, indented.
local function tail_lines(text, n)
  local lines = {}
  for line in text:gmatch("[^\n]+") do
    if line:match("%S") then
      lines[#lines + 1] = line
    end
  end
  local out = {}
  for i = math.max(1, #lines - n + 1), #lines do
    out[#out + 1] = "  " .. lines[i]
  end
  return table.concat(out, "\n")
end

-- nil when `r` is a success, else the message of a failed command.
local function failure_message(shown, r, opts)
  local why
  if r.timed_out then
    why = ("timed out after %g s"):format(opts.timeout)
  elseif r.signal then
    why = ("was killed by signal %d (%s)"):format(r.signal, r.signal_name or "?")
  elseif r.code ~= 0 then
    why = ("failed with exit code %s"):format(tostring(r.code))
  else
    return nil
  end
  local msg = ("command %s: %s"):format(why, shown)
  local err, out = tail_lines(r.stderr, 10), tail_lines(r.stdout, 10)
  if err ~= "" then
    msg = msg .. "\nstderr (last lines):\n" .. err
  end
  if out ~= "" then
    msg = msg .. "\nstdout (last lines):\n" .. out
  end
  return msg
end

---@class bbit.proc.Process
---@field kind string "proc" (a waitable for `bbit.jobs.await`)
---@field command string the command as shown in logs
local Process = {}
Process.__index = Process
Process.kind = "proc"

--- The child's process id.
---@return integer
function Process:pid()
  return self._pid
end

--- Waits for the process (yielding inside a job) and returns its result.
--- With the `check` option, a failed command raises.
---@return bbit.proc.Result
function Process:wait()
  if not self._result then
    jobs.await(self._h)
    self._result = self._h:result()
    self._h:close()
  end
  if self._opts.check then
    local msg = failure_message(self.command, self._result, self._opts)
    if msg then
      errors.fail(msg)
    end
  end
  return self._result
end

--- Without `signal`: kills the process group at once and reaps the child
--- (`wait` then returns a result with `signal = 9`). With `signal` (a number
--- or a name like `"TERM"`): sends it to the process group; call `wait` after.
---@param signal? integer|string
function Process:kill(signal)
  if self._result then
    return
  end
  if signal == nil then
    self._h:cancel()
  else
    self._h:signal(signal)
  end
end

--- Waitable protocol (see bbit.jobs): descriptors to wait on.
---@return integer[]
function Process:poll_fds()
  return self._result and {} or self._h:poll_fds()
end

--- Waitable protocol: progress without blocking; true when finished.
---@return boolean
function Process:step()
  return self._result ~= nil or self._h:step()
end

--- Waitable protocol: kills the process group and reaps the child.
function Process:cancel()
  if not self._result then
    self._h:cancel()
  end
end

--- Kills the process if it still runs and frees its buffers (also `<close>`).
function Process:close()
  self._h:close()
end
Process.__close = Process.close

--- Starts `cmd` and returns its handle without waiting (raises when it cannot
--- start). A string runs with `/bin/sh -c`; a table is an argv.
---@param cmd string|string[]
---@param opts? bbit.proc.Options
---@return bbit.proc.Process
function M.spawn(cmd, opts)
  opts = opts or {}
  if type(cmd) ~= "string" and type(cmd) ~= "table" then
    error(("bbit.proc: command must be a string or an argv table, got %s"):format(type(cmd)), 2)
  end
  local shown = display(cmd)
  if not opts.quiet then
    log.verbose("$ %s", shown)
  end
  local h, err = core.spawn(spawn_spec(cmd, opts))
  if not h then
    errors.fail(("cannot run %s: %s"):format(shown, err))
  end
  return setmetatable({ _h = h, _pid = h:pid(), _opts = opts, command = shown }, Process)
end

--- Runs `cmd` to completion and returns its result. Inside a job of
--- `bbit.jobs.run` it yields, so other jobs run meanwhile. Raises when the
--- command cannot start (missing program, bad `cwd`); a non-zero exit raises
--- only with `opts.check` (the failure names the command, the exit code and
--- the last lines of its stderr and stdout).
---@param cmd string|string[] a shell command line, or an argv (no shell)
---@param opts? bbit.proc.Options
---@return bbit.proc.Result
function M.run(cmd, opts)
  local p <close> = M.spawn(cmd, opts)
  return p:wait()
end

--- Like `run`, but returns `nil, message` instead of raising (when the command
--- cannot start, or with `check` when it fails).
---@param cmd string|string[]
---@param opts? bbit.proc.Options
---@return bbit.proc.Result|nil result
---@return string|nil err
function M.try_run(cmd, opts)
  local ok, r = pcall(M.run, cmd, opts)
  if ok then
    return r
  end
  if errors.is_failure(r) then
    return nil, errors.message(r)
  end
  error(r, 0) -- a bug (bad arguments), not a failed command
end

--- Runs `cmd` with `check = true` and returns its stdout without the trailing
--- newlines (like the shell's `$(...)`).
---@param cmd string|string[]
---@param opts? bbit.proc.Options
---@return string
function M.output(cmd, opts)
  local o = {}
  for k, v in pairs(opts or {}) do
    o[k] = v
  end
  o.check = true
  local r = M.run(cmd, o)
  return (r.stdout:gsub("[\r\n]+$", ""))
end

return M
