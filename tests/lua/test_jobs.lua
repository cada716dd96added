-- Tests of bbit.jobs: parallel processes, limits, ordering, failures, nesting.
local t = require("testlib")
local jobs = require("bbit.jobs")
local proc = require("bbit.proc")
local errors = require("bbit.errors")

local function read_number(path)
  local f = assert(io.open(path, "r"))
  local n = tonumber(f:read("l"))
  f:close()
  return assert(n, "a timestamp in " .. path)
end

-- A task that writes its own start and end times (from `date`) around a sleep.
local function timed_sleep(dir, name, seconds)
  return function()
    local r = proc.run(("date +%%s.%%N > %s/%s.start; sleep %s; date +%%s.%%N > %s/%s.end")
      :format(dir, name, seconds, dir, name))
    return r.code
  end
end

local function interval(dir, name)
  return { read_number(dir .. "/" .. name .. ".start"), read_number(dir .. "/" .. name .. ".end") }
end

-- The largest number of intervals running at one moment.
local function max_overlap(intervals)
  local best = 0
  for _, a in ipairs(intervals) do
    local n = 0
    for _, b in ipairs(intervals) do
      if b[1] <= a[1] and a[1] < b[2] then
        n = n + 1
      end
    end
    best = math.max(best, n)
  end
  return best
end

local function reaped(pid)
  return os.execute(("kill -0 %d 2>/dev/null"):format(pid)) ~= true
end

t.test("two processes under jobs=2 overlap (timestamps written by the tasks)", function()
  local dir = t.tmpdir()
  local cpu0 = os.clock()
  local res = jobs.run({ timed_sleep(dir, "a", 1), timed_sleep(dir, "b", 1) }, { jobs = 2 })
  t.eq(res, { 0, 0 })
  local a, b = interval(dir, "a"), interval(dir, "b")
  t.ok(b[1] < a[2], ("b started (%f) before a ended (%f)"):format(b[1], a[2]))
  t.ok(a[1] < b[2], ("a started (%f) before b ended (%f)"):format(a[1], b[2]))
  -- waiting blocks in poll: no busy loop burning a core for a second
  t.ok(os.clock() - cpu0 < 0.5, ("cpu time %f s while waiting"):format(os.clock() - cpu0))
end)

t.test("jobs=2 over four 1 s sleeps: exactly two at a time", function()
  local dir = t.tmpdir()
  local list, names = {}, { "a", "b", "c", "d" }
  for i, n in ipairs(names) do
    list[i] = timed_sleep(dir, n, 1)
  end
  jobs.run(list, { jobs = 2 })
  local intervals = {}
  for i, n in ipairs(names) do
    intervals[i] = interval(dir, n)
  end
  t.eq(max_overlap(intervals), 2)
  -- the third starts only after one of the first two ended
  local first_end = math.min(intervals[1][2], intervals[2][2])
  t.ok(intervals[3][1] >= first_end - 0.01, "c waited for a free slot")
end)

t.test("jobs=1 serialises", function()
  local dir = t.tmpdir()
  jobs.run({ timed_sleep(dir, "a", 0.3), timed_sleep(dir, "b", 0.3), timed_sleep(dir, "c", 0.3) },
    { jobs = 1 })
  local a, b, c = interval(dir, "a"), interval(dir, "b"), interval(dir, "c")
  t.ok(b[1] >= a[2], "b started after a ended")
  t.ok(c[1] >= b[2], "c started after b ended")
  t.eq(max_overlap({ a, b, c }), 1)
end)

t.test("results come back in list order, whatever finishes first", function()
  local list = {}
  for i = 1, 5 do
    list[i] = function(index)
      local r = proc.run(("sleep 0.%d; echo %d"):format(6 - i, index))
      return tonumber(r.stdout)
    end
  end
  t.eq(jobs.run(list, { jobs = 5 }), { 1, 2, 3, 4, 5 })
  t.eq(jobs.run({}, { jobs = 2 }), {})
  -- jobs that never wait run too
  t.eq(jobs.run({ function() return "x" end, function(i) return i * 10 end }), { "x", 20 })
end)

t.test("the first failure stops scheduling, kills running processes, raises it unchanged", function()
  local started, pids = {}, {}
  local function long(i)
    return function()
      started[i] = true
      local p = proc.spawn({ "sleep", "100" })
      pids[#pids + 1] = p:pid()
      return p:wait()
    end
  end
  local list = {
    long(1),
    function()
      started[2] = true
      proc.run("sleep 0.2; echo broke >&2; exit 3", { check = true })
    end,
    long(3),
    long(4),
    long(5),
  }
  local msg, err = t.raises(function()
    jobs.run(list, { jobs = 3 })
  end)
  t.ok(errors.is_failure(err), "the failure keeps its metatable")
  t.contains(msg, "command failed with exit code 3")
  t.contains(msg, "broke")
  t.eq(started, { true, true, true }, "jobs 4 and 5 never started")
  t.eq(#pids, 2)
  for _, pid in ipairs(pids) do
    t.ok(reaped(pid), "sleep " .. pid .. " killed and reaped")
  end
end)

t.test("any error object is raised as is (identity kept)", function()
  local obj = setmetatable({ why = "custom" }, { __tostring = function() return "custom error" end })
  local pid
  local ok, err = pcall(jobs.run, {
    function()
      local p = proc.spawn("sleep 100")
      pid = p:pid()
      p:wait()
    end,
    function()
      proc.run("sleep 0.1")
      error(obj)
    end,
  }, { jobs = 2 })
  t.eq(ok, false)
  t.ok(rawequal(err, obj), "the very same table")
  t.ok(reaped(pid))
end)

t.test("an error before the task waits is handled too", function()
  local pid, started_third = nil, false
  local ok, err = pcall(jobs.run, {
    function()
      local p = proc.spawn({ "sleep", "100" })
      pid = p:pid()
      p:wait()
    end,
    function()
      error("boom at once", 0)
    end,
    function()
      started_third = true
    end,
  }, { jobs = 4 })
  t.eq(ok, false)
  t.eq(err, "boom at once")
  t.ok(not started_third, "nothing started after the failure")
  t.ok(reaped(pid), "the first job's process was killed")
  -- a failure in the very first job, before anything waits
  local ran_second = false
  ok, err = pcall(jobs.run, {
    function()
      error({ code = 42 })
    end,
    function()
      ran_second = true
    end,
  }, { jobs = 1 })
  t.eq(ok, false)
  t.eq(err.code, 42)
  t.ok(not ran_second)
end)

t.test("nested jobs.run: inner jobs of different outer jobs all overlap", function()
  local dir = t.tmpdir()
  local function outer(prefix)
    return function()
      return jobs.run({ timed_sleep(dir, prefix .. "1", 1), timed_sleep(dir, prefix .. "2", 1) },
        { jobs = 2 })
    end
  end
  local res = jobs.run({ outer("a"), outer("b") }, { jobs = 2 })
  t.eq(res, { { 0, 0 }, { 0, 0 } })
  local all = {}
  for _, n in ipairs({ "a1", "a2", "b1", "b2" }) do
    all[#all + 1] = interval(dir, n)
  end
  t.eq(max_overlap(all), 4)
end)

t.test("a failure inside a nested run cancels the other outer jobs' processes", function()
  local pids = {}
  local function sleeper()
    local p = proc.spawn({ "sleep", "100" })
    pids[#pids + 1] = p:pid()
    return p:wait()
  end
  local msg, err = t.raises(function()
    jobs.run({
      function()
        return jobs.run({ sleeper, sleeper }, { jobs = 2 })
      end,
      function()
        return jobs.run({
          sleeper,
          function()
            proc.run("sleep 0.2")
            errors.fail("inner task failed")
          end,
        }, { jobs = 2 })
      end,
    }, { jobs = 2 })
  end)
  t.eq(msg, "inner task failed")
  t.ok(errors.is_failure(err))
  t.eq(#pids, 3)
  for _, pid in ipairs(pids) do
    t.ok(reaped(pid), "sleep " .. pid .. " killed and reaped")
  end
end)

t.test("in_job, await outside a job blocks, default_jobs", function()
  t.eq(jobs.in_job(), false)
  t.eq(jobs.run({ function() return jobs.in_job() end }), { true })
  local p = proc.spawn({ "sh", "-c", "sleep 0.2; echo waited" })
  jobs.await(p)
  t.eq(p:wait().stdout, "waited\n")
  t.eq(jobs.default_jobs(), require("bbit.core.proc").cpu_count())
  t.ok(jobs.default_jobs() >= 1)
end)

t.test("misuse: a list entry that is not a function", function()
  t.raises(function()
    jobs.run({ function() end, "nope" })
  end, "jobs.run: list[2] is a string, not a function")
end)

t.done()
