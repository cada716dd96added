#!/usr/bin/env bash
# The build pipeline and the extension model (issue 4): parallel shell tasks,
# cache, failures, replace / wrap / hook overrides, errors in workspace scripts.
source "$(dirname "$0")/lib.sh"
export SOURCE_DATE_EPOCH=1700000000 BBIT_AUTHOR_NAME=ci BBIT_AUTHOR_EMAIL=ci@example.com

ws="$T_DIR/ws"
mkdir -p "$ws/components/a" "$ws/components/b" "$ws/components/c"
cd "$ws"
run "$BBIT" init --default-scope acme.tools
for c in a b c; do echo "export const $c = 1;" >"components/$c/index.js"; done
echo 'import { a } from "../a";' >>components/c/index.js   # c depends on a
run "$BBIT" add components/a components/b components/c
expect_code 0

# Two slow shell tasks of independent components overlap: each records its
# start and end time; the second starts before the first ends.
stamps="$T_DIR/stamps"
mkdir -p "$stamps"
cat >workspace.jsonc <<JSONC
{
  "teambit.workspace/workspace": { "name": "p", "defaultScope": "acme.tools" },
  "bbit": { "pipeline": ["validate", "date +%s.%N > $stamps/{name}.start; sleep 1; date +%s.%N > $stamps/{name}.end"] }
}
JSONC
run "$BBIT" build components/a components/b -j 2
expect_code 0
overlap=$(awk -v as="$(cat "$stamps/a.start")" -v ae="$(cat "$stamps/a.end")" \
  -v bs="$(cat "$stamps/b.start")" -v be="$(cat "$stamps/b.end")" \
  'BEGIN { print (bs < ae && as < be) ? "yes" : "no" }')
[ "$overlap" = yes ] || fail "tasks did not overlap: a $(cat "$stamps"/a.*) b $(cat "$stamps"/b.*)"
ok "independent components' shell tasks run in parallel (-j 2)"

rm -f "$stamps"/*
run "$BBIT" build components/a components/b -j 1 --no-cache
expect_code 0
serial=$(awk -v ae="$(cat "$stamps/a.end")" -v bs="$(cat "$stamps/b.start")" 'BEGIN { print (bs >= ae) ? "yes" : "no" }')
[ "$serial" = yes ] || fail "-j 1 should serialise"
ok "-j 1 runs one component at a time"

# Dependency order: c waits for a.
rm -f "$stamps"/*
run "$BBIT" build --no-cache -j 3
expect_code 0
after=$(awk -v ae="$(cat "$stamps/a.end")" -v cs="$(cat "$stamps/c.start")" 'BEGIN { print (cs >= ae) ? "yes" : "no" }')
[ "$after" = yes ] || fail "c started before its dependency a finished"
ok "a component builds after its dependencies"

run "$BBIT" build
expect_code 0; expect_out "3 task(s) run, 3 cached"; expect_err "(cached)"  # validate always runs
ok "unchanged inputs: every cacheable task is served from the cache"
echo "// change" >>components/b/index.js
run "$BBIT" build
expect_code 0; expect_out "4 task(s) run, 2 cached"
ok "a changed component re-runs only its own tasks"

# Replace: a workspace tasks/validate.lua wins over the built-in one.
mkdir -p .bbit/scripts/tasks
cat >.bbit/scripts/tasks/validate.lua <<'LUA'
return { run = function(component, ctx)
  local f = assert(io.open(ctx.workspace.root .. "/validated.txt", "a"))
  f:write(component.id, "\n")
  f:close()
end }
LUA
run "$BBIT" scripts which tasks/validate
expect_out "$ws/.bbit/scripts/tasks/validate.lua"
cat >workspace.jsonc <<'JSONC'
{
  "teambit.workspace/workspace": { "name": "p", "defaultScope": "acme.tools" },
  "teambit.workspace/variants": { "components/b": { "bbit.pipeline": ["validate"] } },
  "bbit": { "pipeline": ["validate", "package"] }
}
JSONC
run "$BBIT" build --no-cache
expect_code 0
[ "$(sort validated.txt | tr '\n' ' ')" = "a b c " ] || fail "replaced validate did not run: $(cat validated.txt)"
expect_err "b: validate  "; expect_err "a: validate, package"
ok "replace: a workspace task script wins; per-variant pipeline applies"

# Wrap one step of the tag workflow and call the original; plus hooks.
cat >.bbit/scripts/tag.lua <<'LUA'
local tag = base()
tag:override("versions", function(original, ctx)
  original(ctx)
  for id, v in pairs(ctx.versions) do
    local f = assert(io.open(ctx.workspace.root .. "/wrapped.txt", "a"))
    f:write(id, "@", v, "\n")
    f:close()
  end
end)
tag:before("store", function(ctx)
  local f = assert(io.open(ctx.workspace.root .. "/hooks.txt", "a"))
  f:write("before_store ", #ctx.selected, "\n")
  f:close()
end)
tag:after("tag", function(ctx)
  local f = assert(io.open(ctx.workspace.root .. "/hooks.txt", "a"))
  f:write("after_tag\n")
  f:close()
end)
return tag
LUA
run "$BBIT" tag -m one
expect_code 0
grep -qx "a@0.0.1" wrapped.txt || fail "override did not run: $(cat wrapped.txt 2>&1)"
[ "$(cat hooks.txt)" = "before_store 3
after_tag" ] || fail "hooks: $(cat hooks.txt)"
run "$BBIT" show a
expect_out "a@0.0.1"
ok "wrap: an overridden step calls the original; before/after hooks run in order"

# An error inside a workspace script: file and line, "in workspace script", exit 1.
cat >.bbit/scripts/tasks/validate.lua <<'LUA'
return { run = function(component, ctx)
  local settings = nil
  return settings.strict
end }
LUA
echo "// again" >>components/a/index.js
cp .bitmap "$T_DIR/bitmap.before"
run "$BBIT" tag
expect_code 1
expect_err "in workspace script: .bbit/scripts/tasks/validate.lua:3:"
expect_err "attempt to index a nil value"
expect_no "internal error"
cmp -s .bitmap "$T_DIR/bitmap.before" || fail ".bitmap changed after a failed tag"
ok "an error in a workspace task names file:line, exit 1, nothing stored"

printf 'return {\n  after_tag = function(ctx) error("boom in hook") end,\n}\n' >.bbit/scripts/tag.lua
rm .bbit/scripts/tasks/validate.lua
run "$BBIT" tag
expect_code 1
expect_err "in workspace script: .bbit/scripts/tag.lua:2: boom in hook"
ok "an error in a hook is reported as a workspace script error"

printf 'return { before_nosuchstep = function() end }\n' >.bbit/scripts/tag.lua
run "$BBIT" tag
expect_code 1
expect_err "workflow 'tag' has no step 'nosuchstep'"
ok "a hook for an unknown step is refused with the list of steps"
finish
