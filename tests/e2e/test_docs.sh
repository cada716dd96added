#!/usr/bin/env bash
# docs/lua-api.md is generated from the annotations of the code: it must be
# up to date (regenerate: build/bbit run tools/gen-lua-api.lua > docs/lua-api.md).
source "$(dirname "$0")/lib.sh"

run "$BBIT" run "$BBIT_SRC/tools/gen-lua-api.lua"
expect_code 0
diff -u "$BBIT_SRC/docs/lua-api.md" <(printf '%s\n' "$OUT") >"$T_DIR/diff" ||
  fail "docs/lua-api.md is stale; regenerate it: build/bbit run tools/gen-lua-api.lua > docs/lua-api.md
$(head -30 "$T_DIR/diff")"
ok "docs/lua-api.md matches the code's annotations"

for module in bbit.json bbit.fs bbit.hash bbit.archive bbit.http bbit.proc bbit.jobs bbit.workflow bbit.store; do
  grep -q "^## \`$module\`" "$BBIT_SRC/docs/lua-api.md" || fail "docs/lua-api.md lacks $module"
done
grep -q '^### `pipeline`' "$BBIT_SRC/docs/lua-api.md" || fail "docs lack the pipeline task API"
ok "the reference covers the stdlib, the pipeline and the workflows"
finish
