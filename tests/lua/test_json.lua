-- Tests of bbit.json: JSONC decode and its error messages, numbers, strings,
-- markers, pretty/compact encode, encode errors, read/write.
local t = require("testlib")
local json = require("bbit.json")
local errors = require("bbit.errors")

local function decode_error(text, opts)
  local v, err = json.try_decode(text, opts)
  t.eq(v, nil, "try_decode of " .. ("%q"):format(text))
  return err
end

local function encode_error(value, opts)
  local s, err = json.try_encode(value, opts)
  t.eq(s, nil, "try_encode result")
  return err
end

-- Decode: values ------------------------------------------------------------

t.test("decodes scalars with their Lua types", function()
  t.eq(json.decode("true"), true)
  t.eq(json.decode("false"), false)
  t.eq(json.decode("null"), json.null)
  t.eq(json.decode('"x"'), "x")
  t.eq(math.type(json.decode("12")), "integer")
  t.eq(json.decode("-12"), -12)
  t.eq(math.type(json.decode("1.0")), "float")
  t.eq(math.type(json.decode("1e2")), "float")
  t.eq(json.decode("1e2"), 100.0)
  t.eq(json.decode("-0.25"), -0.25)
  t.eq(json.decode(" \r\n\t[1]\n "), { 1 })
end)

t.test("decodes objects and arrays with markers", function()
  local v = json.decode('{"a": [1, "two", {"b": null}], "c": {}}')
  t.eq(getmetatable(v), json.object_mt)
  t.eq(getmetatable(v.a), json.array_mt)
  t.eq(getmetatable(v.a[3]), json.object_mt)
  t.eq(getmetatable(v.c), json.object_mt)
  t.eq(v.a[1], 1)
  t.eq(v.a[2], "two")
  t.eq(v.a[3].b, json.null)
  t.ok(json.is_array(v.a) and not json.is_object(v.a))
  t.ok(json.is_object(v.c) and not json.is_array(v.c))
end)

t.test("null values keep their keys and array slots", function()
  local v = json.decode('{"a": null, "b": [null, 1, null]}')
  t.eq(v.a, json.null)
  t.eq(#v.b, 3)
  t.eq(v.b[1], json.null)
  t.eq(v.b[3], json.null)
  t.eq(json.encode(v), '{"a":null,"b":[null,1,null]}')
end)

t.test("integers are exact beyond 2^53 and up to int64", function()
  t.eq(json.decode("9007199254740993"), 9007199254740993)
  t.eq(math.type(json.decode("9007199254740993")), "integer")
  t.eq(json.decode("9223372036854775807"), math.maxinteger)
  t.eq(json.decode("-9223372036854775808"), math.mininteger)
  t.eq(json.encode(json.decode("[9007199254740993,-9223372036854775808]")),
    "[9007199254740993,-9223372036854775808]")
  -- beyond int64: a float
  local big = json.decode("9223372036854775808")
  t.eq(math.type(big), "float")
  t.eq(big, 2.0 ^ 63)
  t.eq(math.type(json.decode("-9223372036854775809")), "float")
  t.eq(math.type(json.decode("123456789012345678901234567890")), "float")
  -- very long numbers (more than cJSON's old 63-character buffer)
  local long = json.decode(string.rep("1", 80))
  t.eq(math.type(long), "float")
  t.ok(math.abs(long / 1.1111111111111111e79 - 1) < 1e-15, tostring(long))
  t.eq(json.decode("0." .. string.rep("5", 80)), 0.5555555555555556)
end)

t.test("floats decode and encode round-trippably", function()
  for _, x in ipairs({ 0.1, 1 / 3, 1e-7, 1.5e300, -2.5, 123456.789, 2 ^ 60 + 0.0, 5e-324, 0.0 }) do
    local s = json.encode(x)
    local back = json.decode(s)
    t.eq(math.type(back), "float", s)
    t.eq(back, x, s)
  end
  t.eq(json.encode(0.1), "0.1")
  t.eq(json.encode(1.0), "1.0")
  t.eq(json.encode(-0.0), "-0.0")
  t.eq(json.encode(1e300), "1e+300")
  t.eq(json.encode(1 / 3), "0.3333333333333333")
  t.eq(json.encode(0.1 + 0.2), "0.30000000000000004")
  t.eq(json.encode(42), "42")
end)

t.test("strings: escapes, unicode escapes and surrogate pairs", function()
  t.eq(json.decode([["a\"b\\c\/d\b\f\n\r\t"]]), 'a"b\\c/d\b\f\n\r\t')
  t.eq(json.decode([["\u00e9\u20AC"]]), "é€")
  t.eq(json.decode([["\ud83d\ude00"]]), "😀")
  t.eq(json.decode([["\uD834\uDD1E x"]]), "𝄞 x")
  t.eq(json.decode([["a\u0000b"]]), "a\0b")
  t.eq(#json.decode([["a\u0000b"]]), 3)
  t.eq(json.decode('"é😀 raw"'), "é😀 raw")
  t.eq(json.decode([["http://x/*y*/ // z"]]), "http://x/*y*/ // z")
end)

t.test("encodes strings per JSON, UTF-8 kept, '/' not escaped", function()
  t.eq(json.encode('q"b\\s/'), [["q\"b\\s/"]])
  t.eq(json.encode("\n\r\t\b\f"), [["\n\r\t\b\f"]])
  t.eq(json.encode("\1\31\0"), [["\u0001\u001f\u0000"]])
  t.eq(json.encode("é😀"), '"é😀"')
  local all = {}
  for i = 0, 255 do
    all[#all + 1] = string.char(i)
  end
  local s = table.concat(all)
  t.eq(json.decode(json.encode(s)), s)
end)

t.test("JSONC: comments and trailing commas", function()
  local text = [[
// a comment
{
  /* block
     comment */
  "a": [1, 2,], // after
  "b": {"c": "// not a comment", "d": "/* nor this */",},
  "e": "back\\", // trailing backslash in a string
}
]]
  local v = json.decode(text)
  t.eq(v.a, { 1, 2 })
  t.eq(v.b.c, "// not a comment")
  t.eq(v.b.d, "/* nor this */")
  t.eq(v.e, "back\\")
end)

t.test("UTF-8 byte order mark is skipped", function()
  t.eq(json.decode('\xEF\xBB\xBF{"a": 1}').a, 1)
  t.eq(decode_error('\xEF\xBB\xBF{"a" 1}'), "<string>:1:6: expected ':' after an object key")
end)

-- Decode: errors --------------------------------------------------------------

t.test("error: expected ',' or '}' names file, line and column", function()
  local text = '{\n  "name": "x",\n  "a": 1\n  "b": 2\n}\n'
  t.eq(decode_error(text, { name = "workspace.jsonc" }),
    "workspace.jsonc:4:3: expected ',' or '}' after an object member")
  local msg = t.raises(function()
    json.decode(text, { name = "workspace.jsonc" })
  end)
  t.eq(msg, "workspace.jsonc:4:3: expected ',' or '}' after an object member")
end)

t.test("decode raises a failure; try_decode returns nil, err", function()
  local ok, e = pcall(json.decode, "[1,")
  t.eq(ok, false)
  t.ok(errors.is_failure(e), "a failure, not a bug")
  t.eq(errors.message(e), "<string>:1:4: unexpected end of input")
  local v, err = json.try_decode("[1,")
  t.eq(v, nil)
  t.eq(err, "<string>:1:4: unexpected end of input")
end)

t.test("error messages with line:column", function()
  local cases = {
    { '[1, 2\n', "<string>:2:1: unexpected end of input" },
    { '', "<string>:1:1: unexpected end of input" },
    { '{"a": "abc\n}', "<string>:1:7: unterminated string" },
    { '["ok",\n  "abc', "<string>:2:3: unterminated string" },
    { '{\n  /* note\n', "<string>:2:3: unterminated comment" },
    { '{} x', "<string>:1:4: trailing data after the JSON value" },
    { '[1]\n[2]', "<string>:2:1: trailing data after the JSON value" },
    { '{"a" 1}', "<string>:1:6: expected ':' after an object key" },
    { '{a: 1}', "<string>:1:2: expected a string key or '}' (keys need double quotes)" },
    { '[1 2]', "<string>:1:4: expected ',' or ']' after an array element" },
    { '[1,,2]', "<string>:1:4: expected a value" },
    { '{"a": 01}', "<string>:1:7: leading zeros are not allowed in numbers" },
    { '{"a": tru}', "<string>:1:7: expected a value (strings need double quotes; the literals are true, false and null)" },
    { '["\\q"]', "<string>:1:3: invalid escape '\\q' in string" },
    { '["\\ud83d"]', "<string>:1:3: unpaired surrogate in \\u escape" },
    { '["\\u12"]', "<string>:1:3: invalid \\u escape (expected 4 hex digits)" },
    { '["a\tb"]', "<string>:1:4: control character in string (write it as \\u00XX)" },
    { '{} \0', "<string>:1:4: trailing data after the JSON value" },
  }
  for _, c in ipairs(cases) do
    t.eq(decode_error(c[1]), c[2], ("%q"):format(c[1]))
  end
end)

t.test("duplicate key: position of the second occurrence", function()
  t.eq(decode_error('{\n  "a": 1,\n  "b": 2,\n  "a": 3\n}', { name = "x.json" }),
    'x.json:4:3: duplicate key "a"')
  t.eq(decode_error('{"k": {"x": null, "x": null}}'), '<string>:1:19: duplicate key "x"')
  -- the same key written with an escape is the same key
  t.eq(decode_error('{"a": 1, "\\u0061": 2}'), '<string>:1:10: duplicate key "\\u0061"')
  -- case-sensitive: not duplicates
  local v = json.decode('{"A": 1, "a": 2}')
  t.eq(v.A, 1)
  t.eq(v.a, 2)
end)

t.test("columns count characters; CRLF lines count like LF", function()
  t.eq(decode_error('{"é€😀": 1 "x": 2}'), "<string>:1:11: expected ',' or '}' after an object member")
  t.eq(decode_error('{\r\n  "a": 1\r\n  "b": 2\r\n}'), "<string>:3:3: expected ',' or '}' after an object member")
  t.eq(decode_error('/* é */ {"a" 1}'), "<string>:1:14: expected ':' after an object key")
end)

t.test("strict mode refuses comments and trailing commas", function()
  t.eq(json.decode('{"a": [1]}', { strict = true }).a, { 1 })
  t.eq(decode_error('// c\n{}', { strict = true }), "<string>:1:1: comments are not allowed in strict JSON")
  t.eq(decode_error('{"a": 1,\n}', { strict = true }),
    "<string>:2:1: expected a string key after ',' (trailing commas are not allowed in strict JSON)")
  t.eq(decode_error('[1,]', { strict = true, name = "s.json" }),
    "s.json:1:4: expected a value after ',' (trailing commas are not allowed in strict JSON)")
end)

t.test("nesting: 1000 levels decode, 1001 is an error", function()
  local ok = string.rep("[", 1000) .. string.rep("]", 1000)
  local v = json.decode(ok)
  local depth = 0
  while type(v) == "table" do
    depth = depth + 1
    v = v[1]
  end
  t.eq(depth, 1000)
  local deep = string.rep("[", 1001) .. string.rep("]", 1001)
  t.eq(decode_error(deep), "<string>:1:1001: nesting deeper than 1000 levels")
  local objects = string.rep('{"a":', 1001) .. "1" .. string.rep("}", 1001)
  t.eq(decode_error(objects), "<string>:1:5001: nesting deeper than 1000 levels")
end)

t.test("error messages and positions of the decoder, case by case", function()
  local cases = {
    -- structure
    { "{1: 2}", "1:2: expected a string key or '}'" },
    { '{"a": 1, b: 2}', "1:10: expected a string key after ',' (keys need double quotes)" },
    { '{"a": 1, 2}', "1:10: expected a string key after ','" },
    { '{"a":1,]', "1:8: expected a string key after ','" },
    { "[}", "1:2: expected a value" },
    { "{]", "1:2: expected a string key or '}'" },
    { "[1,}", "1:4: expected a value" },
    { "{\"a\": 'x'}", "1:7: expected a value (strings need double quotes, not single quotes)" },
    { "{'a': 1}", "1:2: expected a string key or '}' (keys need double quotes)" },
    { "[tru]", "1:2: expected a value (strings need double quotes; the literals are true, false and null)" },
    { "[True]", "1:2: expected a value (strings need double quotes; the literals are true, false and null)" },
    { "[NaN]", "1:2: expected a value (strings need double quotes; the literals are true, false and null)" },
    { "{} {}", "1:4: trailing data after the JSON value" },
    { "nulls", "1:5: trailing data after the JSON value" },
    { "[1]]", "1:4: trailing data after the JSON value" },
    { "1,", "1:2: trailing data after the JSON value" },
    { "1,]", "1:2: trailing data after the JSON value" },
    { "[\v1]", "1:2: expected a value" }, -- only space, tab, CR and LF are blanks
    { "[\xC2\xA01]", "1:2: expected a value" },
    { "\0", "1:1: expected a value" },
    -- the end of the input
    { "   ", "1:4: unexpected end of input" },
    { '{"a":', "1:6: unexpected end of input" },
    { '{"a"', "1:5: unexpected end of input" },
    { "{", "1:2: unexpected end of input" },
    { "[[]", "1:4: unexpected end of input" },
    { "[1,\n", "2:1: unexpected end of input" },
    { "-", "1:2: unexpected end of input" },
    { "1.", "1:3: unexpected end of input" },
    { "1e+", "1:4: unexpected end of input" },
    -- strings
    { '"abc', "1:1: unterminated string" },
    { '["ab\ncd"]', "1:2: unterminated string" },
    { '["ab\rcd"]', "1:2: unterminated string" },
    { '"a\\', "1:1: unterminated string" },
    { '["a\\\n"]', "1:2: unterminated string" },
    { '"a\0b"', "1:3: control character in string (write it as \\u00XX)" },
    { '"a\31b"', "1:3: control character in string (write it as \\u00XX)" },
    { '"\\x"', "1:2: invalid escape '\\x' in string" },
    { '"ab\\\xC3\xA9"', "1:4: invalid escape in string" },
    { '"\\u12G4"', "1:2: invalid \\u escape (expected 4 hex digits)" },
    { '"\\u0041\\u00"', "1:8: invalid \\u escape (expected 4 hex digits)" },
    { '"\\U0041"', "1:2: invalid escape '\\U' in string" },
    { '"\\uD800"', "1:2: unpaired surrogate in \\u escape" },
    { '"\\uD800\\u0041"', "1:2: unpaired surrogate in \\u escape" },
    { '"\\uD800\\uD800"', "1:2: unpaired surrogate in \\u escape" },
    { '"x\\uDC00"', "1:3: unpaired surrogate in \\u escape" },
    { '"' .. string.rep("x", 5000) .. '\\n\\q"', "1:5004: invalid escape '\\q' in string" },
    -- numbers
    { "01", "1:1: leading zeros are not allowed in numbers" },
    { "[-00]", "1:2: leading zeros are not allowed in numbers" },
    { "-a", "1:2: expected a digit after '-'" },
    { "- 1", "1:2: expected a digit after '-'" },
    { "-/**/1", "1:2: expected a digit after '-'" }, -- a comment is not allowed inside a number
    { "1.e5", "1:3: expected a digit after '.' in a number" },
    { "[1ex]", "1:4: expected a digit in the exponent of a number" },
    { ".5", "1:1: expected a value" },
    { "+1", "1:1: expected a value" },
    { "0x10", "1:2: trailing data after the JSON value" },
    { "[Infinity]", "1:2: expected a value (strings need double quotes; the literals are true, false and null)" },
    { "[-Infinity]", "1:3: expected a digit after '-'" },
    -- comments
    { "// nothing", "1:11: unexpected end of input" },
    { "/* x */", "1:8: unexpected end of input" },
    { "{} /* never closed", "1:4: unterminated comment" },
    { "[1] /*/", "1:5: unterminated comment" },
    { '"/*" /* x *', "1:6: unterminated comment" },
    { "1 / 2", "1:3: trailing data after the JSON value" },
    { "[1 /]", "1:4: expected ',' or ']' after an array element" },
    { "tr/**/ue", "1:1: expected a value (strings need double quotes; the literals are true, false and null)" },
    { "[1/**/2]", "1:7: expected ',' or ']' after an array element" },
    -- commas that are not trailing
    { "[,]", "1:2: expected a value" },
    { "[1,,]", "1:4: expected a value" },
    { '{"a":,}', "1:6: expected a value" },
    { "{,}", "1:2: expected a string key or '}'" },
    { '{"a",}', "1:5: expected ':' after an object key" },
    -- byte order mark
    { "\xEF\xBB\xBF", "1:1: unexpected end of input" },
    { "\xEF\xBB\xBF \xEF\xBB\xBF", "1:2: expected a value" },
  }
  for _, c in ipairs(cases) do
    t.eq(decode_error(c[1]), "<string>:" .. c[2], ("%q"):format(c[1]))
  end
end)

t.test("strict mode: comments and trailing commas anywhere", function()
  local cases = {
    { '{"a": 1,}', "1:9: expected a string key after ',' (trailing commas are not allowed in strict JSON)" },
    { '{"a": 1, }', "1:10: expected a string key after ',' (trailing commas are not allowed in strict JSON)" },
    { "[[1,]]", "1:5: expected a value after ',' (trailing commas are not allowed in strict JSON)" },
    { "[1 /* c */]", "1:4: comments are not allowed in strict JSON" },
    { "[1, // c\n2]", "1:5: comments are not allowed in strict JSON" },
    { '{"a" /* c */: 1}', "1:6: comments are not allowed in strict JSON" },
    { '{"a": 1} // end', "1:10: comments are not allowed in strict JSON" },
    { "/* c", "1:1: comments are not allowed in strict JSON" },
    { "1 / 2", "1:3: trailing data after the JSON value" },
  }
  for _, c in ipairs(cases) do
    t.eq(decode_error(c[1], { strict = true }), "<string>:" .. c[2], ("%q"):format(c[1]))
  end
  -- without strict the same inputs decode
  t.eq(json.decode('{"a": 1, }'), { a = 1 })
  t.eq(json.decode("[[1,]]"), { { 1 } })
  t.eq(json.decode("[1 /* c */]"), { 1 })
  t.eq(json.decode('{"a" /* c */: 1}'), { a = 1 })
  t.eq(json.decode('{"a": 1} // end'), { a = 1 })
end)

t.test("JSONC edge cases: comments at the ends, nested trailing commas", function()
  t.eq(json.decode('{"a": 1} // end'), { a = 1 })
  t.eq(json.decode('{"a": 1} // end\n'), { a = 1 })
  t.eq(json.decode('{"a": 1} /* end */'), { a = 1 })
  t.eq(json.decode("[1] //"), { 1 })
  t.eq(json.decode("/**/1/***/"), 1)
  t.eq(json.decode("/* a */ /* b */ // c\n // d\n 1 // e\n /* f */"), 1)
  t.eq(json.decode("1 //x\r\n"), 1)
  t.eq(json.decode("[1 // a /* b\n]"), { 1 })
  t.eq(json.decode("/* a\n * b */ [\n 1, /* ] */ 2 /* , */\n]"), { 1, 2 })
  t.eq(json.decode('{"a"/**/:/**/1/**/,/**/"b"//\n:2}'), { a = 1, b = 2 })
  t.eq(json.decode('\xEF\xBB\xBF// c\n[1]'), { 1 })
  -- nested trailing commas
  local v = json.decode('[[1,],{"a":[],},]')
  t.eq(v, { { 1 }, { a = {} } })
  t.eq(getmetatable(v[2].a), json.array_mt)
  t.eq(json.decode('{"a": {"b": [1, [2,],],},}'), { a = { b = { 1, { 2 } } } })
  t.eq(json.decode("[1, /* x */ ]"), { 1 })
  t.eq(json.decode("[1, // x\n]"), { 1 })
  t.eq(json.decode('{"a": 1 ,\n}'), { a = 1 })
  t.eq(json.decode('["s",\r\n]'), { "s" })
  -- comment-like text in strings and keys is text
  t.eq(json.decode('{"//k": "/*v*/"}'), { ["//k"] = "/*v*/" })
end)

t.test("the first error in the text is the one reported", function()
  -- a duplicate key before a syntax error
  t.eq(decode_error('{"a": 1, "a": 2, oops}'), '<string>:1:10: duplicate key "a"')
  t.eq(decode_error('{"a": 1, "a" 2}'), '<string>:1:10: duplicate key "a"')
  -- a syntax error before an unterminated comment
  t.eq(decode_error("[1 2] /* x"), "<string>:1:4: expected ',' or ']' after an array element")
end)

t.test("error positions in deep nesting", function()
  local text = string.rep("[\n", 600) .. "  1 2" .. string.rep("]", 600)
  t.eq(decode_error(text), "<string>:601:5: expected ',' or ']' after an array element")
  text = string.rep('{"a":\n', 300) .. '  {"b": 1, "b": 2}' .. string.rep("}", 300)
  t.eq(decode_error(text), '<string>:301:12: duplicate key "b"')
  text = string.rep("[", 999) .. "[1,,]" .. string.rep("]", 999)
  t.eq(decode_error(text), "<string>:1:1003: expected a value")
  text = string.rep('{"a": [\n', 500) .. '  {"b": 0}' .. string.rep("]}", 500)
  t.eq(decode_error(text), "<string>:501:3: nesting deeper than 1000 levels")
  t.eq(decode_error(string.rep("[", 5000)), "<string>:1:1001: nesting deeper than 1000 levels")
  t.eq(decode_error(string.rep("[", 1000)), "<string>:1:1001: unexpected end of input")
  local v = json.decode(string.rep('{"a":[', 500) .. "0" .. string.rep("]}", 500))
  for _ = 1, 500 do
    t.eq(getmetatable(v), json.object_mt)
    v = v.a
    t.eq(getmetatable(v), json.array_mt)
    v = v[1]
  end
  t.eq(v, 0)
end)

t.test("numbers: -0, huge integers, overflow and underflow", function()
  t.eq(math.type(json.decode("-0")), "integer") -- an integer: Lua integers have no -0
  t.eq(json.decode("-0"), 0)
  local z = json.decode("-0.0")
  t.eq(math.type(z), "float")
  t.eq(1 / z, -math.huge)
  t.eq(1 / json.decode("-0e0"), -math.huge)
  t.eq(math.type(json.decode("0")), "integer")
  t.eq(math.type(json.decode("0e0")), "float")
  t.eq(json.decode("1E+2"), 100.0)
  t.eq(json.decode("1e-2"), 0.01)
  t.eq(json.decode("0.1"), 0.1)
  t.eq(json.decode("1.7976931348623157e308"), 1.7976931348623157e308)
  -- beyond the range of a double: infinity (as strtod); underflow: 0
  t.eq(json.decode("1e400"), math.huge)
  t.eq(json.decode("-1e400"), -math.huge)
  t.eq(json.decode("[1e999999999999999999999]")[1], math.huge)
  t.eq(json.decode("1e-400"), 0.0)
  t.eq(json.decode("5e-324"), 5e-324)
  -- integers: int64 exactly, floats beyond, whatever the length
  t.eq(json.decode("18446744073709551615"), 18446744073709551615.0)
  t.eq(math.type(json.decode("18446744073709551616")), "float")
  t.eq(json.decode("-9223372036854775807"), -9223372036854775807)
  t.eq(math.type(json.decode("-9223372036854775807")), "integer")
  t.eq(math.type(json.decode("9223372036854775807.0")), "float")
  t.eq(math.type(json.decode("1e2")), "float")
  t.eq(json.decode("[" .. string.rep("9", 400) .. "]")[1], 1e400)
  t.eq(json.decode("-" .. string.rep("9", 400)), -math.huge)
  t.eq(json.decode("0." .. string.rep("0", 400) .. "1"), 0.0)
  t.eq(json.decode("1" .. string.rep("0", 300) .. ".5e-300"), 1.0)
end)

-- A comma-decimal locale is generated into a temp folder (LOCPATH) and a
-- child bbit switches to it: decode and encode must still use '.'.
t.test("numbers decode and encode whatever the locale's decimal point", function()
  local proc = require("bbit.proc")
  local bbit = os.getenv("BBIT") or require("bbit.core.host").exe()
  assert(require("bbit.fs").exists("/usr/share/i18n/locales/de_DE"),
    "the de_DE locale source is missing: apt-get install locales (tools/setup-debian does)")
  local dir = t.tmpdir()
  proc.run({ "localedef", "-i", "de_DE", "-f", "UTF-8", dir .. "/de_DE.UTF-8" }, { check = true })
  t.write(dir .. "/check.lua", [[
    local json = require("bbit.json")
    assert(os.setlocale("de_DE.UTF-8", "numeric"), "cannot switch to de_DE")
    assert(tostring(1.5) == "1,5", "the locale has no comma decimal point")
    local v = json.decode("[1.5, -2.25e2, 7, 0.]] .. string.rep("5", 80) .. [[]")
    assert(v[1] == 1.5 and v[2] == -225.0 and v[3] == 7 and v[4] == 0.5555555555555556, "decode")
    local text = json.encode({ 1.5, 0.1, 2.0, -3.25e-7 })
    assert(text == "[1.5,0.1,2.0,-3.25e-07]", "encode gave " .. text)
    print("ok")
  ]])
  local r = proc.run({ bbit, "run", dir .. "/check.lua" }, { env = { LOCPATH = dir } })
  t.eq(r.stdout .. r.stderr, "ok\n")
end)

t.test("strings: long, escaped, raw bytes; empty keys", function()
  local long = string.rep("abc", 100000)
  t.eq(json.decode('"' .. long .. '"'), long)
  t.eq(json.decode('"' .. long .. '\\n"'), long .. "\n")
  t.eq(json.decode('"\\n' .. long .. '"'), "\n" .. long)
  t.eq(json.decode(string.rep('"\\"', 1) .. string.rep("\\\\", 1000) .. '"'), '"' .. string.rep("\\", 1000))
  t.eq(json.decode([["\uDBFF\uDFFF"]]), "\xF4\x8F\xBF\xBF")
  t.eq(json.decode([["\u007f\u0080\u07FF\u0800\uFFFF"]]), "\x7f\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF")
  t.eq(json.decode('"\xff\xfe"'), "\xff\xfe") -- bytes are kept as they are
  t.eq(json.decode('{"": 1}')[""], 1)
  t.eq(decode_error('{"": 1, "": 2}'), '<string>:1:9: duplicate key ""')
  local k = string.rep("k", 100)
  t.eq(decode_error('{"' .. k .. '": 1, "' .. k .. '": 2}'),
    '<string>:1:109: duplicate key "' .. string.rep("k", 60) .. '..."')
  t.eq(decode_error('{"a\\u0000": 1, "a\\u0000": 2}'), '<string>:1:16: duplicate key "a\\u0000"')
  t.eq(json.decode('{"a": 1, "a\\u0000": 2}')["a\0"], 2)
end)

t.test("large documents", function()
  local parts = {}
  for i = 1, 20000 do
    parts[i] = ('"c%05d": {"head": "0.0.%d", "n": %d, "f": %d.5, "tags": ["x", null, true, false], "e": {}}')
      :format(i, i, i, i)
  end
  local text = "{\n" .. table.concat(parts, ",\n") .. ",\n}\n"
  local v = json.decode(text)
  local n = 0
  for _ in pairs(v) do
    n = n + 1
  end
  t.eq(n, 20000)
  t.eq(v.c12345.head, "0.0.12345")
  t.eq(v.c12345.n, 12345)
  t.eq(v.c12345.f, 12345.5)
  t.eq(v.c20000.tags, { "x", json.null, true, false })
  t.eq(getmetatable(v.c00001.e), json.object_mt)
  t.eq(json.decode(json.encode(v)), v)
end)

t.test("decode misuse raises", function()
  t.raises(function()
    json.decode(42)
  end, "json.decode: text must be a string, got number")
  t.raises(function()
    json.try_decode(nil)
  end, "json.decode: text must be a string, got nil")
end)

-- Encode ------------------------------------------------------------------------

local sample = {
  name = "ui/button",
  version = "0.0.1",
  tags = { "a", "b" },
  empty_object = {},
  empty_array = json.array(),
  nested = { z = 1, a = { true, false, json.null }, m = 1.5 },
}

t.test("pretty output is byte-exact (2 spaces, sorted, final newline)", function()
  t.eq(json.encode(sample, { pretty = true }), [[
{
  "empty_array": [],
  "empty_object": {},
  "name": "ui/button",
  "nested": {
    "a": [
      true,
      false,
      null
    ],
    "m": 1.5,
    "z": 1
  },
  "tags": [
    "a",
    "b"
  ],
  "version": "0.0.1"
}
]])
end)

t.test("pretty output with indent = 4 (like Bit's .bitmap)", function()
  local bitmap = {
    ["ui/button"] = { name = "ui/button", scope = "", version = "", mainFile = "index.js" },
    ["$schema-version"] = "17.0.0",
  }
  t.eq(json.encode(bitmap, { indent = 4 }), [[
{
    "$schema-version": "17.0.0",
    "ui/button": {
        "mainFile": "index.js",
        "name": "ui/button",
        "scope": "",
        "version": ""
    }
}
]])
  t.eq(json.encode({}, { indent = 4 }), "{}\n")
  t.eq(json.encode("x", { pretty = true }), '"x"\n')
  t.eq(json.encode({ a = 1 }, { indent = 4, pretty = false }), '{"a":1}')
end)

t.test("compact output: no whitespace, keys sorted bytewise", function()
  t.eq(json.encode(sample),
    '{"empty_array":[],"empty_object":{},"name":"ui/button","nested":{"a":[true,false,null],"m":1.5,"z":1},"tags":["a","b"],"version":"0.0.1"}')
  t.eq(json.encode({ b = 1, B = 2, a = 3, ["a\0"] = 4, [""] = 5, ["é"] = 6, ab = 7 }),
    '{"":5,"B":2,"a":3,"a\\u0000":4,"ab":7,"b":1,"é":6}')
end)

t.test("compact output is deterministic regardless of insertion order", function()
  local keys = {}
  for i = 1, 200 do
    keys[i] = "key" .. i
  end
  local forward, backward = {}, {}
  for i = 1, #keys do
    forward[keys[i]] = { i, tostring(i) }
  end
  for i = #keys, 1, -1 do
    backward[keys[i]] = { i, tostring(i) }
  end
  -- a table that grew and shrank has another internal layout
  local churned = {}
  for i = 1, 1000 do
    churned["tmp" .. i] = i
  end
  for i = 1, 1000 do
    churned["tmp" .. i] = nil
  end
  for i = 1, #keys, 2 do
    churned[keys[i]] = { i, tostring(i) }
  end
  for i = 2, #keys, 2 do
    churned[keys[i]] = { i, tostring(i) }
  end
  local a = json.encode(forward)
  t.eq(json.encode(backward), a)
  t.eq(json.encode(churned), a)
  t.ok(a:find('^{"key1":%[1,"1"%],"key10":%[10,"10"%],"key100":'), a:sub(1, 60))
end)

t.test("empty object and empty array round-trip", function()
  local text = '{"a":{},"b":[],"c":[{},[]]}'
  t.eq(json.encode(json.decode(text)), text)
  t.eq(json.encode(json.object()), "{}")
  t.eq(json.encode(json.array()), "[]")
  t.eq(json.encode({}), "{}")
  t.eq(json.encode({ list = json.array({}) }), '{"list":[]}')
end)

t.test("unknown keys and values round-trip", function()
  local text = [==[
/* written by bit */
{
  "ui/button": {
    "name": "ui/button", "scope": "", "version": "0.0.1",
    "config": {"teambit.react/react": {}, "x": [1, 2.5, null, true, {"deep": [[]]}]},
    "nextVersion": {"version": "patch", "message": "m\u00e9\n"},
    "big": 12345678901234567890, "id": 9007199254740993
  },
  "$schema-version": "17.0.0",
  "_bit_lane": null
}
]==]
  local once = json.decode(text)
  local twice = json.decode(json.encode(once))
  t.eq(twice, once)
  t.eq(json.encode(twice, { indent = 4 }), json.encode(once, { indent = 4 }))
  t.eq(twice._bit_lane, json.null)
  t.eq(twice["ui/button"].config["teambit.react/react"], {})
  t.eq(getmetatable(twice["ui/button"].config.x[5].deep[1]), json.array_mt)
  t.eq(twice["ui/button"].id, 9007199254740993)
end)

t.test("encode errors name the path of the bad value", function()
  t.eq(encode_error({ a = { 1, { x = 1, 2 } } }), "json.encode: $.a[2]: mixed table keys (strings and integers)")
  t.eq(encode_error({ list = { 1, nil, 3 } }),
    "json.encode: $.list: sparse array (keys are not 1..n; use json.null for null)")
  t.eq(encode_error({ [0] = "x" }), "json.encode: $: sparse array (keys are not 1..n; use json.null for null)")
  t.eq(encode_error({ ["a b"] = { f = print } }), 'json.encode: $["a b"].f: cannot encode a function value')
  t.eq(encode_error({ x = 0 / 0 }), "json.encode: $.x: cannot encode NaN")
  t.eq(encode_error({ 1, math.huge }), "json.encode: $[2]: cannot encode infinity")
  t.eq(encode_error({ x = -math.huge }), "json.encode: $.x: cannot encode infinity")
  t.eq(encode_error({ [1.5] = 1 }), "json.encode: $: unsupported table key type float")
  t.eq(encode_error({ [true] = 1 }), "json.encode: $: unsupported table key type boolean")
  t.eq(encode_error({ co = coroutine.create(print) }), "json.encode: $.co: cannot encode a thread value")
  t.eq(encode_error(json.array({ a = 1 })), "json.encode: $: array has string keys")
  t.eq(encode_error(json.object({ 1 })), "json.encode: $: object has integer keys (JSON object keys are strings)")
  t.eq(encode_error({ k = io.stdout }), "json.encode: $.k: cannot encode a FILE* value")
  local msg = t.raises(function()
    json.encode({ a = { b = { print } } })
  end)
  t.eq(msg, "json.encode: $.a.b[1]: cannot encode a function value")
end)

t.test("encode: cycles are an error", function()
  local t1 = { name = "x" }
  t1.self = t1
  t.eq(encode_error(t1), "json.encode: $.self: cycle (a table contains itself)")
  local a, b = {}, {}
  a.list = { b }
  b.back = a
  t.eq(encode_error(a), "json.encode: $.list[1].back: cycle (a table contains itself)")
  -- the same table twice, not nested in itself, is fine
  local shared = { 1 }
  t.eq(json.encode({ x = shared, y = shared }), '{"x":[1],"y":[1]}')
end)

t.test("encode: nesting limit", function()
  local v = 1
  for _ = 1, 1000 do
    v = { v }
  end
  local s = json.encode(v)
  t.eq(#s, 1000 * 2 + 1)
  t.eq(json.decode(s), v)
  local msg = encode_error({ v })
  t.ok(msg:find("^json%.encode: %$%[1%]%[1%]"), msg:sub(1, 40))
  t.contains(msg, "[1]: nesting deeper than 1000 levels")
end)

t.test("encode option misuse raises", function()
  t.raises(function()
    json.encode({}, { indent = 0 })
  end, "json.encode: indent must be an integer 1..16, got 0")
  t.raises(function()
    json.encode({}, { indent = 2.5 })
  end, "json.encode: indent must be an integer 1..16, got 2.5")
end)

t.test("encode of nil and json.null is null", function()
  t.eq(json.encode(nil), "null")
  t.eq(json.encode(json.null), "null")
  t.eq(json.encode({ json.null }), "[null]")
end)

-- Markers ---------------------------------------------------------------------------

t.test("array / object / is_array / is_object", function()
  local list = { 1, 2 }
  t.eq(json.array(list), list)
  t.eq(getmetatable(list), json.array_mt)
  local obj = json.object({ a = 1 })
  t.eq(getmetatable(obj), json.object_mt)
  t.eq(getmetatable(json.array()), json.array_mt)
  -- re-marking a decoded table is allowed
  local decoded = json.decode("[]")
  json.object(decoded)
  t.eq(json.encode(decoded), "{}")
  t.ok(json.is_array({ 1, 2, 3 }))
  t.ok(json.is_array(json.array()))
  t.ok(not json.is_array({}))
  t.ok(not json.is_array({ 1, nil, 3 }))
  t.ok(not json.is_array({ 1, x = 2 }))
  t.ok(not json.is_array("[]"))
  t.ok(json.is_object({}))
  t.ok(json.is_object({ a = 1 }))
  t.ok(not json.is_object({ 1 }))
  t.ok(not json.is_object(json.array()))
  t.ok(not json.is_object(json.null))
  t.raises(function()
    json.array(setmetatable({}, {}))
  end, "json.array: the table already has another metatable")
  t.raises(function()
    json.object("x")
  end, "json.object: expected a table, got string")
end)

-- Files -----------------------------------------------------------------------------------

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function list_dir(dir)
  local p = io.popen("ls -A '" .. dir .. "'")
  local names = {}
  for line in p:lines() do
    names[#names + 1] = line
  end
  p:close()
  return names
end

t.test("read decodes JSONC files; errors name the path", function()
  local dir = t.tmpdir()
  local path = dir .. "/workspace.jsonc"
  spit(path, '{\n  // comment\n  "a": [1,],\n}\n')
  t.eq(json.read(path).a, { 1 })
  spit(path, '{\n  "a": 1\n  "b": 2\n}\n')
  t.eq(select(2, json.try_read(path)), path .. ":3:3: expected ',' or '}' after an object member")
  t.raises(function()
    json.read(path)
  end, path .. ":3:3: expected ',' or '}' after an object member")
  t.eq(select(2, json.try_read(path, { name = "workspace.jsonc" })),
    "workspace.jsonc:3:3: expected ',' or '}' after an object member")
  spit(path, "// c\n{}")
  local v, err
  t.eq(select(2, json.try_read(path, { strict = true })),
    path .. ":1:1: comments are not allowed in strict JSON")
  v, err = json.try_read(dir)
  t.eq(v, nil)
  t.eq(err, dir .. ": Is a directory")
  v, err = json.try_read(dir .. "/missing.json")
  t.eq(v, nil)
  t.eq(err, dir .. "/missing.json: No such file or directory")
  t.raises(function()
    json.read(dir .. "/missing.json")
  end, dir .. "/missing.json: No such file or directory")
  -- read_if_exists: nil for a missing file only
  t.eq(json.read_if_exists(dir .. "/missing.json"), nil)
  spit(path, '{"a": [1, 2]}')
  t.eq(json.read_if_exists(path).a, { 1, 2 })
  spit(path, '{"a": }')
  t.raises(function()
    json.read_if_exists(path)
  end, path .. ":1:7: expected a value")
  t.raises(function()
    json.read_if_exists(dir)
  end, dir .. ": Is a directory")
end)

t.test("decode takes a string or a file read as a buffer (no Lua string copy)", function()
  local dir = t.tmpdir()
  local path = dir .. "/big.json"
  local parts = {}
  for i = 1, 20000 do
    parts[#parts + 1] = ('"k%05d": {"v": %d, "s": "x\\u00e9"}'):format(i, i)
  end
  spit(path, "{" .. table.concat(parts, ",") .. "}")
  local core_fs, core_json = require("bbit.core.fs"), require("bbit.core.json")
  local buf = core_fs.read(path, true)
  t.eq(type(buf), "userdata")
  local v = core_json.decode(buf, "big.json")
  t.eq(v.k12345.v, 12345)
  t.eq(v.k00001.s, "x\195\169")
  t.eq(core_json.decode(core_fs.read(path), "big.json").k20000.v, 20000, "the same from a string")
  t.raises(function()
    core_json.decode(42)
  end, "string or buffer expected")
end)

t.test("write is atomic and pretty by default", function()
  local dir = t.tmpdir()
  local path = dir .. "/.bitmap"
  json.write(path, { b = 1, a = json.array() })
  t.eq(slurp(path), '{\n  "a": [],\n  "b": 1\n}\n')
  json.write(path, { x = 1 }, { indent = 4 })
  t.eq(slurp(path), '{\n    "x": 1\n}\n')
  json.write(path, { x = 1 }, { pretty = false })
  t.eq(slurp(path), '{"x":1}')
  t.eq(list_dir(dir), { ".bitmap" })
  -- a value that cannot be encoded leaves the old file as it was
  local ok, err = json.try_write(path, { f = print })
  t.eq(ok, nil)
  t.eq(err, "json.encode: $.f: cannot encode a function value")
  t.raises(function()
    json.write(path, { f = print })
  end, "json.encode: $.f: cannot encode a function value")
  t.eq(slurp(path), '{"x":1}')
  t.eq(list_dir(dir), { ".bitmap" })
  -- the rename fails (the target is a directory): the temporary file is removed
  os.execute("mkdir '" .. dir .. "/taken'")
  ok, err = json.try_write(dir .. "/taken", { x = 1 })
  t.eq(ok, nil)
  t.eq(err, "fs.write: " .. dir .. "/taken: Is a directory")
  local names = list_dir(dir)
  table.sort(names)
  t.eq(names, { ".bitmap", "taken" })
  -- a missing directory
  ok, err = json.try_write(dir .. "/no/such/file.json", {})
  t.eq(ok, nil)
  t.eq(err, "fs.write: " .. dir .. "/no/such/file.json: No such file or directory")
  t.raises(function()
    json.write(dir .. "/no/such/file.json", {})
  end, dir .. "/no/such/file.json: No such file or directory")
end)

t.done()
