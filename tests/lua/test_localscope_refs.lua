-- bbit.localscope refs: what an update writes is exactly the shards whose
-- refs were handed out to be changed (`refs().components`), and only those
-- that differ from their files; `component` reads without marking anything.
local t = require("testlib")
local fs = require("bbit.fs")
local json = require("bbit.json")
local localscope = require("bbit.localscope")

local root = t.tmpdir()
local scope = localscope.open(root, { create = true })

local function ref(version)
  return { head = version, versions = json.object({ [version] = { id = ("a"):rep(64), tree = ("b"):rep(64) } }) }
end

-- writes the changes as Workspace:commit_changes does (without its journal)
local function apply(changes)
  fs.mkdir(scope.dir .. "/refs")
  for _, c in ipairs(changes) do
    fs.write(scope.dir .. "/refs/" .. c.file, c.text, { fsync = false })
  end
  scope:refs_reload()
end

local function files(changes)
  local out = {}
  for _, c in ipairs(changes) do
    out[#out + 1] = c.file
  end
  return out
end

t.test("new refs are written, every shard they fall in", function()
  local refs = scope:refs()
  for i = 1, 40 do
    refs.components["c" .. i] = ref("0.0.1")
  end
  local changes = scope:refs_changes()
  t.ok(#changes > 8, ("40 refs spread over the shards: %d files"):format(#changes))
  apply(changes)
  scope:read_all_refs()
  t.eq(scope:component("c7").head, "0.0.1")
  t.eq(#scope:refs_changes(), 0, "reading every ref writes nothing")
end)

t.test("a ref changed through refs() is written; its shard alone", function()
  scope:read_all_refs()
  local before = files(scope:refs_changes())
  t.eq(before, {})
  scope:refs().components.c2.head = "0.0.2"
  scope:refs().components.c2.versions["0.0.2"] = { id = ("c"):rep(64), tree = ("d"):rep(64) }
  local changes = scope:refs_changes()
  local shard_file
  for _, c in ipairs(changes) do
    if c.file ~= "staged.json" then
      t.eq(shard_file, nil, "one shard file")
      shard_file = c.file
      t.contains(c.text, '"0.0.2"')
    end
  end
  t.ok(shard_file, "the changed shard is written")
  apply(changes)
  t.eq(scope:component("c2").head, "0.0.2")
  t.eq(scope:component("c3").head, "0.0.1")
end)

t.test("a ref indexed through refs() but left as it was writes nothing", function()
  local _ = scope:refs().components.c5.head
  local _ = scope:refs().components.missing
  t.eq(scope:refs_changes(), {})
end)

t.test("component() is for reading: what is changed through it is not written", function()
  scope:read_all_refs()
  scope:component("c9").head = "9.9.9"
  t.eq(scope:refs_changes(), {})
  scope:refs_reload()
  t.eq(scope:component("c9").head, "0.0.1")
end)

t.test("pairs over refs() hands every ref out: a change found that way is written", function()
  for id, r in pairs(scope:refs().components) do
    if id == "c11" then
      r.head = "0.1.0"
      r.versions["0.1.0"] = { id = ("e"):rep(64), tree = ("f"):rep(64), exported = true }
    end
  end
  local changes = scope:refs_changes()
  t.eq(#changes, 1)
  apply(changes)
  t.eq(scope:component("c11").head, "0.1.0")
end)

os.execute("rm -rf " .. t.quote(root))
t.done()
