-- Generates docs/lua-api.md from the LuaCATS annotations of the public stdlib
-- (stdlib/bbit/*.lua) and the header comments of the workflow scripts.
--   build/bbit run tools/gen-lua-api.lua > docs/lua-api.md
-- tests/e2e/test_docs.sh checks the committed file is up to date.
local root = (arg[0]:match("^(.*)/tools/[^/]*$") or ".")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local function lines(text)
  local out = {}
  for line in (text .. "\n"):gmatch("(.-)\n") do
    out[#out + 1] = line
  end
  return out
end

local out = {}
local function emit(s)
  out[#out + 1] = s or ""
end

-- One module: its leading `---` block, then each documented public function.
local function module_doc(name, text)
  local ls = lines(text)
  local i = 1
  local intro = {}
  while ls[i] and ls[i]:match("^%-%-%-") do
    intro[#intro + 1] = (ls[i]:gsub("^%-%-%- ?", ""))
    i = i + 1
  end
  emit("## `" .. name .. "`")
  emit()
  if #intro > 0 then
    emit(table.concat(intro, "\n"))
    emit()
  end
  local block = {}
  for j = i, #ls do
    local line = ls[j]
    if line:match("^%-%-%-") then
      block[#block + 1] = line
    else
      local fname, params = line:match("^function ([%w_]+[%.:][%w_]+)(%b())")
      if fname and not fname:match("[%.:]_") and #block > 0 then
        local desc, tags = {}, {}
        for _, b in ipairs(block) do
          local tag = b:match("^%-%-%-@(.*)$")
          if tag then
            if not tag:match("^class") and not tag:match("^field") and not tag:match("^private") then
              tags[#tags + 1] = tag
            end
          else
            desc[#desc + 1] = (b:gsub("^%-%-%- ?", ""))
          end
        end
        local shown = fname:gsub("^M%.", name:gsub("^bbit%.", "") .. ".")
        emit("### `" .. shown .. params .. "`")
        emit()
        if #desc > 0 then
          emit(table.concat(desc, "\n"))
          emit()
        end
        for _, tag in ipairs(tags) do
          local kind, rest = tag:match("^(%w+)%s+(.*)$")
          if kind == "param" or kind == "return" then
            emit("- " .. kind .. " `" .. rest:gsub("^(%S+)", "%1`", 1))
          end
        end
        if #tags > 0 then
          emit()
        end
      end
      block = {}
    end
  end
end

-- A script's leading `--` comment block.
local function script_doc(name, text)
  local doc = {}
  for _, line in ipairs(lines(text)) do
    if not line:match("^%-%-") then
      break
    end
    doc[#doc + 1] = (line:gsub("^%-%- ?", ""))
  end
  emit("### `" .. name .. "`")
  emit()
  emit("```")
  emit(table.concat(doc, "\n"))
  emit("```")
  emit()
end

emit("# The bbit Lua API")
emit()
emit("Generated from the annotations in `stdlib/bbit/*.lua` and the header comments of")
emit("`scripts/` by `tools/gen-lua-api.lua`; do not edit by hand.")
emit()
emit("Scripts (`bbit run`, workspace scripts, tasks) `require` these modules, or use the")
emit("global `bbit` table (`bbit.json.decode(...)`). Functions raise a failure with context")
emit("(the CLI prints it and exits 1); `try_*` variants return `nil, err` instead.")
emit()
emit("## Workflows, tasks and routing")
emit()
for _, s in ipairs({ "pipeline", "tag", "export", "route", "deps", "tasks/validate", "tasks/test", "tasks/package" }) do
  script_doc(s, read(root .. "/scripts/" .. s .. ".lua"))
end
emit("### Workflow extension (`bbit.workflow`)")
emit()
local p = io.popen("ls " .. root .. "/stdlib/bbit/*.lua")
local files = {}
for file in p:lines() do
  files[#files + 1] = file
end
p:close()
table.sort(files)
local skip = { ["_cli"] = true }
for _, file in ipairs(files) do
  local base = file:match("([^/]+)%.lua$")
  if not skip[base] and not base:match("^_") then
    module_doc("bbit." .. base, read(file))
  end
end
while out[#out] == "" do
  out[#out] = nil
end
io.write(table.concat(out, "\n"), "\n")
