--- Workflows: ordered lists of named steps (tag, export, pipeline) that a
--- workspace can replace, wrap one step of, or hook into (SPEC §4).
---
--- A built-in workflow script returns `workflow.new(name)` with its steps.
--- A workspace script of the same name (`.bbit/scripts/tag.lua`) may:
---   * replace it: return its own workflow (or any table with `run`);
---   * extend it without copying: return a table of hooks and overrides,
---       return {
---         after_tag = function(ctx) ... end,        -- after the whole workflow
---         before_store = function(ctx) ... end,     -- before one step
---         override = { store = function(original, ctx) ...; original(ctx) end },
---       }
---   * or start from `base()` (the script it overrides) and change it:
---       local tag = base(); tag:override("store", function(original, ctx) ... end); return tag
local errors = require("bbit.errors")
local clock = require("bbit.term").clock
local log = require("bbit.log")

local M = {}

local Workflow = {}
Workflow.__index = Workflow

--- A new, empty workflow called `name`.
---@param name string
---@return table
function M.new(name)
  return setmetatable({ name = name, steps = {}, hooks = {} }, Workflow)
end

--- Is `v` a workflow?
function M.is_workflow(v)
  return getmetatable(v) == Workflow
end

--- Appends step `name`; `fn(ctx)` does its work.
---@param name string
---@param fn fun(ctx: table): any
---@return table self
function Workflow:step(name, fn)
  assert(type(fn) == "function", "workflow step needs a function")
  for _, s in ipairs(self.steps) do
    assert(s.name ~= name, "duplicate workflow step " .. name)
  end
  self.steps[#self.steps + 1] = { name = name, fn = fn }
  return self
end

--- The names of the steps, in order.
---@return string[]
function Workflow:step_names()
  local names = {}
  for _, s in ipairs(self.steps) do
    names[#names + 1] = s.name
  end
  return names
end

local function find_step(self, name)
  for _, s in ipairs(self.steps) do
    if s.name == name then
      return s
    end
  end
  errors.fail(("workflow '%s' has no step '%s' (its steps: %s)"):format(self.name, name,
    table.concat(self:step_names(), ", ")))
end

--- Replaces step `name` by `fn(original, ctx)`, which may call `original(ctx)`.
---@param name string
---@param fn fun(original: function, ctx: table): any
---@return table self
function Workflow:override(name, fn)
  local s = find_step(self, name)
  local original = s.fn
  s.fn = function(ctx)
    return fn(original, ctx)
  end
  return self
end

local function add_hook(self, key, fn)
  self.hooks[key] = self.hooks[key] or {}
  table.insert(self.hooks[key], fn)
end

--- Runs `fn(ctx)` before step `name` (or before the whole workflow when `name`
--- is the workflow's own name).
function Workflow:before(name, fn)
  if name ~= self.name then
    find_step(self, name)
  end
  add_hook(self, "before_" .. name, fn)
  return self
end

--- Runs `fn(ctx)` after step `name` (or after the whole workflow).
function Workflow:after(name, fn)
  if name ~= self.name then
    find_step(self, name)
  end
  add_hook(self, "after_" .. name, fn)
  return self
end

local function run_hooks(self, key, ctx)
  for _, fn in ipairs(self.hooks[key] or {}) do
    fn(ctx)
  end
end

--- Runs every step in order with its hooks; `ctx.stop = true` set by a step
--- ends the run early (e.g. "nothing to tag").
---@param ctx table
---@return table ctx
function Workflow:run(ctx)
  run_hooks(self, "before_" .. self.name, ctx)
  for _, s in ipairs(self.steps) do
    if ctx.stop then
      break
    end
    local started = clock()
    run_hooks(self, "before_" .. s.name, ctx)
    s.fn(ctx)
    run_hooks(self, "after_" .. s.name, ctx)
    log.debug("%s: step %s took %.1f ms", self.name, s.name, (clock() - started) * 1000)
  end
  if not ctx.stop then
    run_hooks(self, "after_" .. self.name, ctx)
  end
  return ctx
end

--- Applies an extension table (hooks and overrides, see the module doc) to `wf`.
---@param wf table
---@param ext table
---@return table wf
function M.extend(wf, ext)
  for key, value in pairs(ext) do
    if key == "override" then
      for step, fn in pairs(value) do
        wf:override(step, fn)
      end
    elseif type(key) == "string" and key:match("^before_") then
      wf:before(key:sub(8), value)
    elseif type(key) == "string" and key:match("^after_") then
      wf:after(key:sub(7), value)
    else
      errors.fail(("workflow '%s': unknown key '%s' in the extension (use before_STEP, after_STEP or override)"):format(
        wf.name, tostring(key)))
    end
  end
  return wf
end

--- Loads workflow `name` through the script lookup: a workflow returned by
--- the winning script is used as is; a table of hooks extends the script it
--- overrides.
---@param name string
---@param workspace_root? string
---@return table workflow
function M.load(name, workspace_root)
  local scripts = require("bbit.scripts")
  local module, found = scripts.load(name, workspace_root)
  while not M.is_workflow(module) and type(module) == "table" and type(module.run) ~= "function" do
    local base_module, base_found = scripts.load_next(found, workspace_root)
    if not base_module then
      errors.fail(("%s: extends workflow '%s' but there is no script it overrides"):format(found.path, name))
    end
    local ext = module
    module, found = base_module, base_found
    if M.is_workflow(module) then
      scripts.call(found, M.extend, module, ext)
    end
  end
  return module
end

return M
