-- Tests of bbit.components.order: dependencies first, ties by id, cycles named.
local t = require("testlib")
local components = require("bbit.components")

-- by_id from { id = {deps...} }, with the dependents lists analyze builds
local function graph(deps)
  local by_id = {}
  for id, list in pairs(deps) do
    by_id[id] = { id = id, deps = list, dependents = {} }
  end
  for id, list in pairs(deps) do
    for _, d in ipairs(list) do
      if by_id[d] then
        table.insert(by_id[d].dependents, id)
      end
    end
  end
  return by_id
end

t.test("dependencies come first; among ready ones the smallest id", function()
  local by_id = graph({ app = { "ui", "utils" }, ui = { "theme" }, theme = {}, utils = {}, zed = {}, aaa = { "zed" } })
  t.eq(components.order({ "zed", "utils", "ui", "theme", "app", "aaa" }, by_id),
    { "theme", "ui", "utils", "app", "zed", "aaa" })
end)

t.test("a diamond: the shared dependency once, before both sides", function()
  local by_id = graph({ top = { "left", "right" }, left = { "base" }, right = { "base" }, base = {} })
  t.eq(components.order({ "top", "right", "left", "base" }, by_id), { "base", "left", "right", "top" })
end)

t.test("dependencies outside the list are ignored", function()
  local by_id = graph({ b = { "a" }, a = {}, c = { "b" } })
  t.eq(components.order({ "c", "b" }, by_id), { "b", "c" })
end)

t.test("a chain of 10,000 components comes out in dependency order", function()
  local deps, ids = {}, {}
  for i = 10000, 1, -1 do
    local id = ("c%05d"):format(i)
    deps[id] = i > 1 and { ("c%05d"):format(i - 1) } or {}
    ids[#ids + 1] = id
  end
  local out = components.order(ids, graph(deps))
  t.eq(#out, 10000)
  t.eq(out[1], "c00001")
  t.eq(out[10000], "c10000")
end)

t.test("a cycle is an error naming its components", function()
  local by_id = graph({ a = { "b" }, b = { "a" }, c = {} })
  t.raises(function()
    components.order({ "a", "b", "c" }, by_id)
  end, "dependency cycle between components: a, b")
end)

t.done()
