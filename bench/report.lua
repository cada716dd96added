-- Turns bench/run's raw measurements into the results table (stdout) and the
-- JSON file. Run by bench/run:
--   bbit run bench/report.lua RAW.tsv OUT.json
-- RAW.tsv lines: case, metric, tool, run, value, unit (tab-separated). The
-- machine description comes from BENCH_* environment variables.
local json = require("bbit.json")

local raw_path, out_path = arg[1], arg[2]
assert(raw_path and out_path, "usage: bbit run bench/report.lua RAW.tsv OUT.json")

local raw, values = {}, {}
for line in io.lines(raw_path) do
  local case, metric, tool, run, value, unit = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)$")
  if case then
    local v = assert(tonumber(value), "not a number: " .. line)
    raw[#raw + 1] = { case = case, metric = metric, tool = tool, run = tonumber(run), value = v, unit = unit }
    local key = case .. "|" .. metric .. "|" .. tool
    values[key] = values[key] or {}
    table.insert(values[key], v)
  end
end

local function median(list)
  if not list or #list == 0 then
    return nil
  end
  local sorted = { table.unpack(list) }
  table.sort(sorted)
  local n = #sorted
  if n % 2 == 1 then
    return sorted[(n + 1) // 2]
  end
  return (sorted[n // 2] + sorted[n // 2 + 1]) / 2
end

-- median of CASE METRIC TOOL, or nil when it was not measured
local function m(case, metric, tool)
  return median(values[case .. "|" .. metric .. "|" .. tool])
end
local function n_runs(case, metric, tool)
  local list = values[case .. "|" .. metric .. "|" .. tool]
  return list and #list or 0
end

local function secs(v)
  if not v then
    return "-"
  end
  return v < 10 and ("%.3f s"):format(v) or ("%.1f s"):format(v)
end
local function bytes(v)
  if not v then
    return "-"
  end
  if v >= 10240 then
    return ("%.1f KB"):format(v / 1024)
  end
  return math.type(v) == "float" and v % 1 ~= 0 and ("%.1f B"):format(v) or ("%d B"):format(math.floor(v)) -- a median of an even count can be a half
end
local function mb(kb)
  return kb and ("%.1f MB"):format(kb / 1024) or "-"
end
local function ratio(a, b)
  if a and b and b > 0 then
    return a / b
  end
end
local function fmt_ratio(r)
  return r and ("%.2fx"):format(r) or "-"
end

local rows = {}
-- row{metric, bbit = number, baseline = number, fmt = fn, ratio = number,
--     target = text, pass = bool|nil (nil: informational), runs = n}
local function row(r)
  rows[#rows + 1] = r
end

-- 1 + 2: full flow at 1,000
local flow1k_bbit, flow1k_git = m("flow1k", "flow", "bbit"), m("flow1k", "flow", "git")
if flow1k_bbit then
  local r = ratio(flow1k_bbit, flow1k_git)
  row({ metric = "full flow 1k: add+tag+export vs git add+commit+push", bbit = flow1k_bbit, baseline = flow1k_git,
    fmt = secs, ratio = r, target = "<= 0.50x git", pass = r and r <= 0.5, runs = n_runs("flow1k", "flow", "bbit") })
  for _, pair in ipairs({ { "bbit.add", "git.add" }, { "bbit.tag", "git.commit" }, { "bbit.export", "git.push" } }) do
    local b, g = m("flow1k", pair[1], "bbit"), m("flow1k", pair[2], "git")
    row({ metric = ("  %s vs %s"):format(pair[1]:gsub("^bbit%.", "bbit "), pair[2]:gsub("^git%.", "git ")),
      bbit = b, baseline = g, fmt = secs, ratio = ratio(b, g), target = "", runs = n_runs("flow1k", pair[1], "bbit") })
  end
  row({ metric = "  bbit export CPU: client / server", bbit = m("flow1k", "bbit.export.cpu", "bbit"),
    baseline = m("flow1k", "serve.cpu", "bbit"), fmt = secs, target = "(wall: see above)" })
end

-- 3: status at 10,000
local st_bbit, st_git = m("status10k", "status", "bbit"), m("status10k", "status", "git")
if st_bbit then
  local r = ratio(st_bbit, st_git)
  row({ metric = "status 10k unchanged vs git status", bbit = st_bbit, baseline = st_git, fmt = secs, ratio = r,
    target = "<= 1.00x git", pass = r and r <= 1.0, runs = n_runs("status10k", "status", "bbit") })
end

-- 4: incremental
local incr_bbit, incr_git = m("incr", "time", "bbit"), m("incr", "time", "git")
if incr_bbit then
  local full = flow1k_bbit
  local full_note = "flow1k"
  if not full then
    full = (m("incr", "setup.add", "bbit") or 0) + (m("incr", "setup.tag", "bbit") or 0)
      + (m("incr", "setup.export", "bbit") or 0)
    full_note = "incr setup"
  end
  local limit = 0.05 * full
  row({ metric = "incremental: tag+export vs git commit+push", bbit = incr_bbit, baseline = incr_git, fmt = secs,
    ratio = ratio(incr_bbit, incr_git), target = ("<= 5%% of %s = %.3f s"):format(full_note, limit),
    pass = incr_bbit <= limit, runs = n_runs("incr", "time", "bbit") })
  row({ metric = "  bbit tag / bbit export", bbit = m("incr", "bbit.tag", "bbit"),
    baseline = m("incr", "bbit.export", "bbit"), fmt = secs, target = "" })
  local up_bbit, up_git, zstd3 = m("incr", "up", "bbit"), m("incr", "up", "git"), m("incr", "zstd3", "file")
  local byte_limit = zstd3 and zstd3 + 4096
  row({ metric = "incremental: bytes sent (client->server)", bbit = up_bbit, baseline = up_git, fmt = bytes,
    ratio = ratio(up_bbit, up_git), target = byte_limit and ("<= zstd3 %d B + 4 KB"):format(zstd3) or "?",
    pass = byte_limit and up_bbit <= byte_limit, runs = n_runs("incr", "up", "bbit") })
  row({ metric = "  bbit HTTP requests / connections", bbit = m("incr", "requests", "bbit"),
    baseline = m("incr", "connections", "bbit"), fmt = function(v) return v and (v % 1 ~= 0 and ("%.1f"):format(v) or ("%d"):format(math.floor(v))) or "-" end,
    target = ("(components tagged: %s)"):format(m("incr", "tagged", "bbit") and ("%g"):format(m("incr", "tagged", "bbit")) or "?") })
  row({ metric = "  bytes received (server->client)", bbit = m("incr", "down", "bbit"), baseline = m("incr", "down", "git"),
    fmt = bytes, ratio = ratio(m("incr", "down", "bbit"), m("incr", "down", "git")), target = "" })
end

-- linearity: full flow at 10,000
local flow10k_bbit, flow10k_git = m("flow10k", "flow", "bbit"), m("flow10k", "flow", "git")
if flow10k_bbit then
  row({ metric = "full flow 10k: add+tag+export vs git", bbit = flow10k_bbit, baseline = flow10k_git, fmt = secs,
    ratio = ratio(flow10k_bbit, flow10k_git), target = "", runs = n_runs("flow10k", "flow", "bbit") })
  for _, pair in ipairs({ { "bbit.add", "git.add" }, { "bbit.tag", "git.commit" }, { "bbit.export", "git.push" } }) do
    local b, g = m("flow10k", pair[1], "bbit"), m("flow10k", pair[2], "git")
    row({ metric = ("  %s vs %s"):format(pair[1]:gsub("^bbit%.", "bbit "), pair[2]:gsub("^git%.", "git ")),
      bbit = b, baseline = g, fmt = secs, ratio = ratio(b, g), target = "", runs = n_runs("flow10k", pair[1], "bbit") })
  end
  if flow1k_bbit then
    local lin = flow10k_bbit / flow1k_bbit
    row({ metric = "linearity: flow 10k / flow 1k", bbit = lin, baseline = ratio(flow10k_git, flow1k_git),
      fmt = function(v) return v and ("%.2fx"):format(v) or "-" end, target = "bbit <= 12x", pass = lin <= 12 })
  end
end

-- 5: peak RSS at 100 x 10 x 1 MB
local rss_export, rss_serve = m("rss", "bbit.export.rss", "bbit"), m("rss", "serve.hwm", "bbit")
if rss_export then
  local gb = m("rss", "files.bytes", "tree")
  local size = gb and (" (%.2f GB)"):format(gb / 2 ^ 30) or ""
  row({ metric = "peak RSS bbit export, 100x10x1MB" .. size, bbit = rss_export, fmt = mb, target = "<= 64 MB",
    pass = rss_export <= 65536, runs = n_runs("rss", "bbit.export.rss", "bbit") })
  row({ metric = "peak RSS bbit serve (VmHWM)", bbit = rss_serve, fmt = mb, target = "<= 64 MB",
    pass = rss_serve and rss_serve <= 65536, runs = n_runs("rss", "serve.hwm", "bbit") })
  row({ metric = "  peak RSS bbit add / bbit tag", bbit = m("rss", "bbit.add.rss", "bbit"),
    baseline = m("rss", "bbit.tag.rss", "bbit"), fmt = mb, target = "" })
  row({ metric = "  time bbit tag / bbit export (1 GB)", bbit = m("rss", "bbit.tag", "bbit"),
    baseline = m("rss", "bbit.export", "bbit"), fmt = secs, target = "" })
end

-- the table
local headers = { "metric", "bbit", "baseline", "ratio", "target", "result" }
local cells = { headers }
for _, r in ipairs(rows) do
  local result = ""
  if r.pass == true then
    result = "PASS"
  elseif r.pass == false then
    result = "MISS"
  end
  local name = r.metric .. ((r.runs and r.runs > 1) and (" [n=%d]"):format(r.runs) or "")
  cells[#cells + 1] = { name, r.fmt(r.bbit), r.baseline and r.fmt(r.baseline) or "-", fmt_ratio(r.ratio), r.target, result }
end
local widths = {}
for _, line in ipairs(cells) do
  for i, c in ipairs(line) do
    widths[i] = math.max(widths[i] or 0, utf8.len(c) or #c)
  end
end
local function pad(c, w, right)
  local gap = string.rep(" ", w - (utf8.len(c) or #c))
  return right and gap .. c or c .. gap
end
for li, line in ipairs(cells) do
  local out = {}
  for i, c in ipairs(line) do
    out[i] = pad(c, widths[i], i >= 2 and i <= 4)
  end
  print((table.concat(out, "  "):gsub("%s+$", "")))
  if li == 1 then
    local rule = {}
    for i, w in ipairs(widths) do
      rule[i] = string.rep("-", w)
    end
    print(table.concat(rule, "  "))
  end
end
print("")
print("baseline: git " .. (os.getenv("BENCH_GIT") or "?"):gsub("^git version ", "")
  .. " (git daemon --enable=receive-pack on 127.0.0.1); ratio = bbit / baseline; times are medians of n runs.")
if values["harness|true.floor|true"] then
  print(("timing: bench/timeit, from spawn to exit; /bin/true measures %.2f ms (the floor of every timed command).")
    :format(median(values["harness|true.floor|true"]) * 1000))
end
if values["incr|up|bbit"] then
  print("bytes sent: counted by bench/countproxy, a TCP relay between the client and the server (all bytes the"
    .. " client wrote: HTTP headers and bodies / git protocol).")
end

-- the JSON file
local results = {}
for _, r in ipairs(rows) do
  results[#results + 1] = { metric = r.metric, bbit = r.bbit or json.null, baseline = r.baseline or json.null,
    ratio = r.ratio or json.null, target = r.target, pass = (r.pass == nil) and json.null or r.pass,
    runs = r.runs or json.null }
end
local medians = {}
for key, list in pairs(values) do
  medians[key] = median(list)
end
local env = os.getenv
local doc = {
  date = os.date("!%Y-%m-%dT%H:%M:%SZ"),
  commit = env("BENCH_COMMIT"),
  uncommitted_files = tonumber(env("BENCH_DIRTY") or ""),
  machine = { cpu = env("BENCH_CPU"), cores = tonumber(env("BENCH_NPROC") or ""),
    memory_kb = tonumber(env("BENCH_MEM_KB") or ""), kernel = env("BENCH_KERNEL"), tmp_filesystem = env("BENCH_FS") },
  bbit = env("BENCH_BBIT"),
  baseline = env("BENCH_GIT"),
  options = { cases = env("BENCH_CASES"), runs = tonumber(env("BENCH_RUNS") or ""),
    runs_incr = tonumber(env("BENCH_RUNS_INCR") or "") },
  total_seconds = tonumber(env("BENCH_TOTAL") or ""),
  results = json.array(results),
  medians = medians,
  raw = json.array(raw),
}
json.write(out_path, doc)
print("raw runs and medians: " .. out_path)
