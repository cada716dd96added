-- Dependencies between workspace components.
--
-- Copy it to <workspace>/.bbit/scripts/deps.lua (`bbit scripts show deps`) to
-- detect dependencies your own way. `dependencies(component, workspace,
-- components)` returns two lists: the ids of the workspace components it
-- depends on, and the names it declares that are not workspace components
-- ("unknown dependency" issues). `component` = { id, root_dir, entry, files =
-- { {path, abs, ...} } }; `components` maps id -> entry of every tracked one.
--
-- The default: ids declared in the component's .bitmap entry
-- ("config": {"bbit": {"dependencies": ["ui/theme"]}}), plus relative imports
-- (`import ... from "../theme"`, `require("../theme")`, `import("./x")`,
-- `export ... from`) in JS/TS sources that resolve into another component's
-- rootDir.
local fs = require("bbit.fs")
local path = require("bbit.path")

local M = {}

local SOURCE = { js = true, jsx = true, ts = true, tsx = true, mjs = true, cjs = true, mts = true, cts = true }
local MAX_SCANNED_BYTES = 1024 * 1024

local PATTERNS = {
  "from%s*[\"'](%.%.?/[^\"']*)[\"']",
  "require%s*%(%s*[\"'](%.%.?/[^\"']*)[\"']%s*%)",
  "import%s*%(%s*[\"'](%.%.?/[^\"']*)[\"']%s*%)",
  "import%s+[\"'](%.%.?/[^\"']*)[\"']",
}

-- rootDir -> id of every component (built once per `components` table).
local roots_of = setmetatable({}, { __mode = "k" })
local function roots(components)
  local map = roots_of[components]
  if not map then
    map = {}
    for id, entry in pairs(components) do
      map[entry.rootDir] = id
    end
    roots_of[components] = map
  end
  return map
end

-- The component whose rootDir holds workspace-relative `file`, or nil: the
-- nearest folder above it that is a rootDir (O(depth)).
local function owner(file, components)
  local map = roots(components)
  local dir = file
  while dir do
    if map[dir] then
      return map[dir]
    end
    dir = dir:match("^(.*)/[^/]*$")
  end
  return nil
end

function M.dependencies(component, workspace, components)
  local deps, unknown, seen = {}, {}, {}
  local function add(id)
    if not seen[id] and id ~= component.id then
      seen[id] = true
      deps[#deps + 1] = id
    end
  end
  local cfg = component.entry.config
  local declared = type(cfg) == "table" and type(cfg.bbit) == "table" and cfg.bbit.dependencies
  if type(declared) == "table" then
    for _, id in ipairs(declared) do
      if components[id] then
        add(id)
      else
        unknown[#unknown + 1] = tostring(id)
      end
    end
  end
  for _, f in ipairs(component.files or {}) do
    local ext = f.path:match("%.([%w]+)$")
    if ext and SOURCE[ext] and (f.size or 0) <= MAX_SCANNED_BYTES then
      local text = fs.try_read(f.abs)
      if text then
        local file_dir = path.dirname(component.root_dir .. "/" .. f.path)
        for _, pattern in ipairs(PATTERNS) do
          for spec in text:gmatch(pattern) do
            local target = path.normalize(file_dir .. "/" .. spec)
            local id = owner(target, components)
            if id then
              add(id)
            end
          end
        end
      end
    end
  end
  table.sort(deps)
  table.sort(unknown)
  return deps, unknown
end

return M
