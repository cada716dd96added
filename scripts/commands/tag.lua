-- bbit tag: run the pipeline and store new versions in the local scope.
local workflow = require("bbit.workflow")
local workspace = require("bbit.workspace")

return {
  summary = "build and version components into the local scope (staged for export)",
  usage = "bbit tag [PATTERN...] [--ver V | --patch | --minor | --major] [-m MSG] [--skip-auto-tag] [-j N] [--no-cache]",
  description = [[
Without PATTERN, tags every new or modified component. A PATTERN is an id, a
folder or a glob (ui/*); NAME@1.2.0 sets that component's version. The first
version is 0.0.1; later ones bump the patch unless told otherwise. Components
depending on a tagged one are auto-tagged with a patch bump. The build
pipeline runs first: if a task fails, nothing is stored.
The steps are a workflow (bbit scripts show tag) a workspace can hook into.]],
  options = {
    { "ver", type = "string", arg = "VERSION", help = "the exact version for the tagged components" },
    { "patch", type = "boolean", help = "bump the patch number (the default)" },
    { "minor", type = "boolean", help = "bump the minor number" },
    { "major", type = "boolean", help = "bump the major number" },
    { "message", short = "m", type = "string", arg = "MSG", help = "the log message of the new versions" },
    { "skip-auto-tag", type = "boolean", help = "do not tag the components that depend on the tagged ones" },
    { "jobs", short = "j", type = "number", arg = "N", help = "build N components at once (default: cores)" },
    { "no-cache", type = "boolean", help = "run every task, even those whose inputs are unchanged" },
  },
  run = function(ctx)
    local semver = require("bbit.semver")
    if ctx.opts.ver and not semver.valid(ctx.opts.ver) then
      require("bbit.errors").usage(("--ver %s is not a valid version (expected MAJOR.MINOR.PATCH)"):format(ctx.opts.ver))
    end
    local levels = (ctx.opts.patch and 1 or 0) + (ctx.opts.minor and 1 or 0) + (ctx.opts.major and 1 or 0)
      + (ctx.opts.ver and 1 or 0)
    if levels > 1 then
      require("bbit.errors").usage("give one of --ver, --patch, --minor, --major")
    end
    local ws = workspace.open(nil, { lock = "fail" })
    local tag = workflow.load("tag", ws.root)
    -- a tag that stopped (a task failed) keeps what it stored in its pack:
    -- the task cache refers to it
    local keep <close> = setmetatable({}, {
      __close = function(_, err)
        if ws.scope.store:packing() and not require("bbit.errors").is_interrupt(err) then
          pcall(ws.scope.store.commit_pack, ws.scope.store)
        end
      end,
    })
    tag:run({ workspace = ws, opts = ctx.opts, patterns = ctx.args })
    ws:close()
    return 0
  end,
}
