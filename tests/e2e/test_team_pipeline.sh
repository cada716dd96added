#!/usr/bin/env bash
# examples/team-pipeline: a Lua lint task, a shell test task, the built-in
# package task wrapped to add a LICENSE, an after_tag hook, per-variant pipelines.
source "$(dirname "$0")/lib.sh"
export SOURCE_DATE_EPOCH=1700000000 BBIT_AUTHOR_NAME=ci BBIT_AUTHOR_EMAIL=ci@example.com

ws="$T_DIR/tp"
cp -r "$BBIT_SRC/examples/team-pipeline" "$ws"
cd "$ws"
run "$BBIT" init
expect_code 0
run "$BBIT" add components/ui/card components/ui/badge components/tools/slugify
expect_code 0; expect_out "ui/card"; expect_out "→ acme.ui"; expect_out "tools/slugify"; expect_out "→ acme.tools"

run "$BBIT" scripts list
expect_code 0
expect_out ".bbit/scripts/tasks/package.lua (overrides built-in)"
expect_out ".bbit/scripts/tag.lua (overrides built-in)"
expect_out "tasks/lint"
ok "scripts list shows the workspace's overrides"

run "$BBIT" tag -m "first release"
expect_code 0
expect_out "ui/card@0.0.1"; expect_out "tools/slugify@0.0.1"
expect_err "tools/slugify: validate, lint, sh test.sh, package"
expect_err "ui/card: validate, lint, package"
ok "per-variant pipelines: ui components skip the shell test"

grep -qx -- "- tools/slugify@0.0.1: first release" CHANGELOG.md || fail "after_tag hook did not write CHANGELOG.md: $(cat CHANGELOG.md 2>&1)"
[ "$(wc -l <CHANGELOG.md)" = 3 ] || fail "CHANGELOG.md should have 3 lines"
ok "the after_tag hook wrote one changelog line per version"

run "$BBIT" show tools/slugify --json
expect_code 0
blob=$(sed -n 's/.*"blob": "\([0-9a-f]*\)".*/\1/p' <<<"$OUT" | head -1)
pkg=$(printf '%s\n' "$OUT" | tr -d '\n ' | sed -n 's/.*"artifacts":\[{"blob":"\([0-9a-f]*\)","name":"package.tgz".*/\1/p')
[ -n "$pkg" ] || fail "no package.tgz artifact in: $OUT"
cat >"$T_DIR/unpack.lua" <<LUA
local store = require("bbit.store").open("$ws/.bit")
store:get_file("$pkg", "$T_DIR/pkg.tgz")
for _, e in ipairs(require("bbit.archive").list("$T_DIR/pkg.tgz")) do print(e.name) end
LUA
run "$BBIT" run "$T_DIR/unpack.lua"
expect_code 0; expect_out "package/LICENSE"; expect_out "package/index.js"; expect_out "package/test.sh"
ok "the wrapped package task added LICENSE to the deterministic package"

run "$BBIT" build
expect_code 0
expect_out "3 task(s) run, 7 cached"  # validate is never cached
expect_err "(cached)"
ok "a re-run is served from the task cache"

# the lint task fails the tag: nothing stored, .bitmap unchanged
echo 'export const x = 1;   ' >>components/ui/badge/index.js
cp .bitmap "$T_DIR/bitmap.before"
refs_json .bit >"$T_DIR/refs.before"
run "$BBIT" tag
expect_code 1
expect_err "ui/badge"; expect_err "lint"; expect_err "index.js:4: trailing whitespace"
cmp -s .bitmap "$T_DIR/bitmap.before" || fail ".bitmap changed after a failed tag"
refs_json .bit | cmp -s - "$T_DIR/refs.before" || fail "refs changed after a failed tag"
ok "a failing Lua task stops the tag: message names component and task, nothing stored"

# the shell test fails
sed -i 's/ *$//' components/ui/badge/index.js
sed -i 's/toLowerCase/toUpperCase/' components/tools/slugify/index.js
run "$BBIT" tag
expect_code 1
expect_err "tools/slugify: task 'sh test.sh' failed (exit code 1)"
expect_err "slugify must lowercase"
cmp -s .bitmap "$T_DIR/bitmap.before" || fail ".bitmap changed after a failed tag"
ok "a failing shell task shows its output tail; nothing stored"
finish
