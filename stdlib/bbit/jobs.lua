--- Running work in parallel from Lua coroutines: the basis of the parallel
--- pipeline and of parallel uploads.
---
--- `jobs.run(list, {jobs = n})` runs each function of `list` in its own
--- coroutine, at most `n` at once. A job that waits on a process or an HTTP
--- transfer (`bbit.proc.run`, `bbit.http.request`, ... all go through
--- `jobs.await`) yields to the scheduler, which waits on every pending handle
--- at once: shell tasks and transfers of different jobs really overlap.
---
--- The waitable protocol (implemented by process and transfer handles):
---   w:poll_fds() -> integer[]   file descriptors to wait on (readable)
---   w:poll_write_fds()          optional: file descriptors to wait on (writable);
---                               only "http" waitables have them
---   w:step()     -> boolean     make progress without blocking; true when finished
---   w:cancel()                  stop (kill the process, drop the transfer)
---   w.kind                      "proc" or "http"
local core_proc = require("bbit.core.proc")

local M = {}

-- coroutine -> true for the coroutines a scheduler runs as jobs
local job_coroutines = setmetatable({}, { __mode = "k" })

local MAX_WAIT_MS = 200 -- upper bound of one wait; waitables check their own deadlines

-- The descriptors all of `ws` wait on: method "poll_fds" or "poll_write_fds"
-- (optional).
local function all_fds(ws, method)
  local fds = {}
  for _, w in ipairs(ws) do
    for _, fd in ipairs(w[method] and w[method](w) or {}) do
      fds[#fds + 1] = fd
    end
  end
  return fds
end

-- Blocks until one of `ws` may progress (or a short timeout).
local function wait_any(ws)
  local fds, http = all_fds(ws, "poll_fds"), false
  for _, w in ipairs(ws) do
    if w.kind == "http" then
      http = true
    end
  end
  if http then
    require("bbit.core.http").wait(fds, MAX_WAIT_MS, all_fds(ws, "poll_write_fds"))
  else
    core_proc.wait(fds, MAX_WAIT_MS)
  end
end

--- Is the running code a job of a scheduler (so `await` yields)?
---@return boolean
function M.in_job()
  local co = coroutine.running()
  return job_coroutines[co] == true
end

--- Waits until waitable `w` finishes. Inside a job it yields to the scheduler;
--- elsewhere it blocks.
---@param w table a waitable
function M.await(w)
  if M.in_job() then
    while not w:step() do
      coroutine.yield(w)
    end
    return
  end
  while not w:step() do
    wait_any({ w })
  end
end

-- A waitable standing for several (what a nested jobs.run yields to the outer
-- scheduler): its fds are all of theirs; its step is always true, because the
-- inner scheduler re-steps its own waitables when resumed; cancelling it
-- cancels the inner scheduler's jobs.
local function any_of(ws, cancel)
  local kind = "proc"
  for _, w in ipairs(ws) do
    if w.kind == "http" then
      kind = "http"
    end
  end
  return {
    kind = kind,
    poll_fds = function()
      return all_fds(ws, "poll_fds")
    end,
    poll_write_fds = function()
      return all_fds(ws, "poll_write_fds")
    end,
    step = function()
      return true
    end,
    cancel = cancel,
  }
end

--- The default parallelism: the number of cores.
---@return integer
function M.default_jobs()
  return core_proc.cpu_count()
end

--- Runs every function of `list` (each called with its index, in its own
--- coroutine) in parallel, at most `opts.jobs` at once (default: the number of
--- cores). Returns their first results, in list order. On the first error
--- (raised by a job before or while it waits): starts nothing more, cancels
--- what runs (processes are killed and reaped), closes the other jobs'
--- coroutines, and raises that error object unchanged. Nests: inside a job,
--- an inner `run` yields to the outer scheduler.
---@param list function[]
---@param opts? {jobs?: integer}
---@return any[] results `results[i]` is the first value returned by `list[i]`
function M.run(list, opts)
  for i = 1, #list do
    if type(list[i]) ~= "function" then
      error(("jobs.run: list[%d] is a %s, not a function"):format(i, type(list[i])), 2)
    end
  end
  local limit = math.max(1, math.floor((opts and opts.jobs) or M.default_jobs()))
  local results, running = {}, {}
  local next_index, active, failure = 1, 0, nil

  local function cancel_all()
    local current = running
    running, active = {}, 0
    for _, r in pairs(current) do
      if r.waiting then
        pcall(r.waiting.cancel, r.waiting)
      end
      pcall(coroutine.close, r.co)
    end
  end
  -- Whatever ends this call (an error, the closing of the coroutine of an
  -- outer job running it), nothing it started keeps running.
  local guard <close> = setmetatable({}, { __close = cancel_all })

  local function resume(r)
    local ok, waiting = coroutine.resume(r.co)
    if not ok then
      failure = failure or { err = waiting }
      running[r.index] = nil
      active = active - 1
      return
    end
    if coroutine.status(r.co) == "dead" then
      results[r.index] = waiting
      running[r.index] = nil
      active = active - 1
    else
      r.waiting = waiting
    end
  end

  local function start(index)
    local fn = list[index]
    local co = coroutine.create(function()
      return fn(index)
    end)
    job_coroutines[co] = true
    local r = { index = index, co = co }
    running[index] = r
    active = active + 1
    resume(r)
  end

  while not failure and (next_index <= #list or active > 0) do
    while not failure and next_index <= #list and active < limit do
      next_index = next_index + 1
      start(next_index - 1)
    end
    if failure or active == 0 then
      break
    end
    -- Wait for any waitable of the running jobs, then resume those that can go on.
    local waiting = {}
    for _, r in pairs(running) do
      if r.waiting then
        waiting[#waiting + 1] = r.waiting
      end
    end
    -- Block only when nothing can go on already (a dependency that just
    -- finished, a process that already exited): no needless wait.
    local ready = false
    for _, w in ipairs(waiting) do
      if w:step() then
        ready = true
        break
      end
    end
    if ready then
      -- resume below without waiting
    elseif M.in_job() then
      coroutine.yield(any_of(waiting, cancel_all))
    else
      wait_any(waiting)
    end
    local indices = {}
    for index in pairs(running) do
      indices[#indices + 1] = index
    end
    table.sort(indices)
    for _, index in ipairs(indices) do
      local r = running[index]
      if r and not failure then
        resume(r)
      end
    end
  end
  if failure then
    cancel_all()
    error(failure.err, 0)
  end
  return results
end

return M
