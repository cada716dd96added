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
---   w:step()     -> boolean     make progress without blocking; true when finished
---   w:cancel()                  stop (kill the process, drop the transfer)
---   w.kind                      "proc" or "http"
local core_proc = require("bbit.core.proc")

local M = {}

-- coroutine -> true for the coroutines a scheduler runs as jobs
local job_coroutines = setmetatable({}, { __mode = "k" })

local MAX_WAIT_MS = 200 -- upper bound of one wait; waitables check their own deadlines

-- Blocks until one of `ws` may progress (or a short timeout).
local function wait_any(ws)
  local fds, http = {}, false
  for _, w in ipairs(ws) do
    for _, fd in ipairs(w:poll_fds()) do
      fds[#fds + 1] = fd
    end
    if w.kind == "http" then
      http = true
    end
  end
  if http then
    require("bbit.core.http").wait(fds, MAX_WAIT_MS)
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

-- A waitable standing for several: finished when any of them made progress.
local function any_of(ws)
  return {
    kind = (function()
      for _, w in ipairs(ws) do
        if w.kind == "http" then
          return "http"
        end
      end
      return "proc"
    end)(),
    poll_fds = function()
      local fds = {}
      for _, w in ipairs(ws) do
        for _, fd in ipairs(w:poll_fds()) do
          fds[#fds + 1] = fd
        end
      end
      return fds
    end,
    step = function()
      return true -- the inner scheduler re-steps its own waitables
    end,
    cancel = function()
      for _, w in ipairs(ws) do
        w:cancel()
      end
    end,
  }
end

--- The default parallelism: the number of cores.
---@return integer
function M.default_jobs()
  return core_proc.cpu_count()
end

--- Runs every function of `list` (each called with its index) in parallel,
--- at most `opts.jobs` at once (default: the number of cores). Returns their
--- first results, in list order. On the first error: starts nothing more,
--- cancels what runs, and raises that error.
---@param list function[]
---@param opts? {jobs?: integer}
---@return any[]
function M.run(list, opts)
  local limit = math.max(1, math.floor((opts and opts.jobs) or M.default_jobs()))
  local results, running = {}, {}
  local next_index, active, failure = 1, 0, nil

  local function cancel_all()
    for _, r in pairs(running) do
      if r.waiting then
        pcall(r.waiting.cancel, r.waiting)
      end
      coroutine.close(r.co)
    end
    running = {}
  end

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

  while not failure and (next_index <= #list or active > 0) do
    while not failure and next_index <= #list and active < limit do
      local index, fn = next_index, list[next_index]
      next_index = next_index + 1
      local co = coroutine.create(function()
        return fn(index)
      end)
      job_coroutines[co] = true
      local r = { index = index, co = co }
      running[index] = r
      active = active + 1
      resume(r)
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
    if M.in_job() then
      coroutine.yield(any_of(waiting))
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
