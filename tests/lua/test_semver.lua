local t = require("testlib")
local semver = require("bbit.semver")

t.test("parse and print", function()
  t.eq(tostring(semver.parse("1.2.3")), "1.2.3")
  t.eq(tostring(semver.parse("1.0.0-rc.1+build.5")), "1.0.0-rc.1+build.5")
  t.eq(semver.parse("10.20.30").minor, 20)
end)

t.test("invalid versions are refused with the value named", function()
  t.raises(function() semver.parse("1.2") end, "invalid version '1.2'")
  t.raises(function() semver.parse("01.2.3") end, "leading zeros")
  t.raises(function() semver.parse("1.2.3-") end, "invalid version")
  t.eq(semver.valid("v1.2.3"), false)
  local v, err = semver.try_parse("x")
  t.eq(v, nil)
  t.contains(err, "expected MAJOR.MINOR.PATCH")
end)

t.test("compare follows semver precedence", function()
  local ordered = { "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
    "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "2.0.0", "10.0.0" }
  for i = 1, #ordered - 1 do
    t.eq(semver.compare(ordered[i], ordered[i + 1]), -1, ordered[i] .. " < " .. ordered[i + 1])
    t.eq(semver.compare(ordered[i + 1], ordered[i]), 1)
  end
  t.eq(semver.compare("1.0.0+a", "1.0.0+b"), 0)
  t.eq(semver.sort({ "0.0.10", "0.0.2", "0.1.0" }), { "0.0.2", "0.0.10", "0.1.0" })
end)

t.test("bump", function()
  t.eq(semver.bump("0.0.1", "patch"), "0.0.2")
  t.eq(semver.bump("0.0.9", "minor"), "0.1.0")
  t.eq(semver.bump("1.4.2", "major"), "2.0.0")
  t.eq(semver.bump("1.0.0-rc.1", "patch"), "1.0.0")
  t.eq(semver.bump("2.0.0-rc.1", "major"), "2.0.0")
  t.raises(function() semver.bump("1.0.0", "huge") end, "unknown version bump")
end)

t.test("sort parses each version once and keeps it to itself", function()
  local list = {}
  for i = 60, 1, -1 do
    list[#list + 1] = ("1.%d.0"):format(i)
  end
  list[#list + 1] = "1.5.0-rc.1"
  semver.sort(list)
  t.eq({ list[1], list[5], list[6], list[61] }, { "1.1.0", "1.5.0-rc.1", "1.5.0", "1.60.0" })
  -- bump and parse hand out fresh tables: changing one does not change the sort
  local p = semver.parse("1.5.0")
  p.major = 99
  t.eq(semver.bump("1.5.0", "major"), "2.0.0")
  t.eq(semver.sort({ "1.5.0", "1.4.0", "2.0.0" }), { "1.4.0", "1.5.0", "2.0.0" })
  t.raises(function() semver.sort({ "1.0.0", "nope" }) end, "invalid version 'nope'")
end)

t.done()
