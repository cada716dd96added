-- bbit.shards: a map kept in small files, read and written shard by shard.
local t = require("testlib")
local fs = require("bbit.fs")
local hash = require("bbit.hash")
local shards = require("bbit.shards")

local root = t.tmpdir()

local function shard_file(dir, key)
  return ("%s/%02d.json"):format(dir, tonumber(hash.sha256(key):sub(1, 2), 16) // 4)
end

t.test("values survive a save and a reopen; nothing is written before a change", function()
  local dir = root .. "/a"
  local m = shards.open(dir)
  t.eq(m:get("x"), nil)
  m:save()
  t.eq(fs.exists(dir), false, "no change, no folder")
  m:set("x", { n = 1, list = { "a", "b" } })
  m:set("y", "text")
  m:save()
  local again = shards.open(dir)
  t.eq(again:get("x").n, 1)
  t.eq(again:get("x").list[2], "b")
  t.eq(again:get("y"), "text")
  again:set("y", nil)
  again:save()
  t.eq(shards.open(dir):get("y"), nil, "set to nil removes")
end)

t.test("only the shards of changed keys are rewritten", function()
  local dir = root .. "/b"
  local m = shards.open(dir)
  for i = 1, 200 do
    m:set("k" .. i, i)
  end
  m:save()
  local files = fs.glob(dir .. "/*.json")
  t.ok(#files > 50 and #files <= 64, "keys spread over the 64 shards (" .. #files .. ")")
  local before = {}
  for _, f in ipairs(files) do
    before[f] = fs.stat(f).mtime_ns
  end
  local m2 = shards.open(dir)
  m2:set("k7", 70)
  os.execute("sleep 0.02")
  m2:save()
  local changed = {}
  for _, f in ipairs(files) do
    if fs.stat(f).mtime_ns ~= before[f] then
      changed[#changed + 1] = f
    end
  end
  t.eq(changed, { shard_file(dir, "k7") })
  t.eq(shards.open(dir):get("k7"), 70)
  t.eq(shards.open(dir):get("k8"), 8)
end)

t.test("keep() drops entries of the shards being written; a damaged shard reads as empty", function()
  local dir = root .. "/c"
  local m = shards.open(dir)
  m:set("old", { day = 1 })
  m:set("new", { day = 100 })
  m:save()
  local m2 = shards.open(dir)
  m2:set("old", { day = 1 }) -- its shard is rewritten
  m2:set("new", { day = 100 })
  m2:save(function(_, v)
    return v.day > 50
  end)
  t.eq(shards.open(dir):get("old"), nil)
  t.eq(shards.open(dir):get("new").day, 100)
  fs.write(shard_file(dir, "new"), "{ not json")
  t.eq(shards.open(dir):get("new"), nil, "a damaged shard is only a lost cache")
end)

t.test("count: fewer files; load_all then finds keys without hashing; pairs; clear", function()
  local dir = root .. "/d"
  local m = shards.open(dir, { count = 16 })
  for i = 1, 100 do
    m:set("k" .. i, { n = i })
  end
  m:save()
  local files = fs.glob(dir .. "/*.json")
  t.ok(#files > 10 and #files <= 16, "keys spread over 16 shards (" .. #files .. ")")
  t.ok(fs.exists(("%s/%02d.json"):format(dir, tonumber(hash.sha256("k1"):sub(1, 2), 16) // 16)), "k1's shard")
  local all = shards.open(dir, { count = 16 })
  all:load_all()
  t.eq(all:get("k42").n, 42)
  t.eq(all:get("nope"), nil)
  local seen = 0
  for key, value in all:pairs() do
    seen = seen + 1
    t.eq(key, "k" .. value.n)
    all:set(key, { n = value.n * 2 }) -- setting while iterating
  end
  t.eq(seen, 100)
  all:set("new", { n = 0 })
  all:set("k1", nil)
  all:save()
  local again = shards.open(dir, { count = 16 })
  t.eq(again:get("k42").n, 84)
  t.eq(again:get("new").n, 0)
  t.eq(again:get("k1"), nil)
  again:clear()
  t.eq(again:get("k42"), nil)
  t.eq(fs.exists(dir), false, "clear removes the files")
  t.eq(shards.open(dir, { count = 16 }):get("k42"), nil)
  t.raises(function()
    shards.open(dir, { count = 3 })
  end, "count must be a power of 2")
end)

t.done()
