#!/usr/bin/env bash
# examples/route-by-owner: a workspace whose .bbit/scripts/route.lua routes each
# component to the scope of the team named in the nearest OWNERS file, falling
# back to the built-in rule (variants, then defaultScope). Runs on a copy.
source "$(dirname "$0")/lib.sh"

export SOURCE_DATE_EPOCH=1700000000 BBIT_AUTHOR_NAME="Ada Lovelace" BBIT_AUTHOR_EMAIL="ada@example.com"

# status_field ID FIELD: a field of component ID in `bbit status --json`
status_field() {
  "$BBIT" status --json >"$T_DIR/status.json" || fail "status --json failed"
  jv "$T_DIR/status.json" "(function() for _, c in ipairs(d.components) do if c.id == \"$1\" then return c.$2 end end end)()"
}
sum() { cat "$@" | sha256sum | cut -d' ' -f1; }

example="$BBIT_SRC/examples/route-by-owner"
[ -f "$example/.bbit/scripts/route.lua" ] || fail "the example is missing: $example"
[ ! -e "$example/.bitmap" ] && [ ! -e "$example/.bit" ] || fail "the example folder holds a .bitmap or .bit: it must stay a clean template"
ex="$T_DIR/route-by-owner"
cp -r "$example" "$ex"
cd "$ex"

config_sum=$(sum workspace.jsonc)
run "$BBIT" init
expect_code 0; expect_out "created .bitmap, .bit/"
[ "$(sum workspace.jsonc)" = "$config_sum" ] || fail "init rewrote the example's workspace.jsonc"
run "$BBIT" scripts which route
expect_code 0; expect_out "$ex/.bbit/scripts/route.lua"
ok "init keeps the example's workspace.jsonc; its route.lua wins over the built-in one"

run "$BBIT" add components/*/*/
expect_code 0
expect_out "added payments/checkout (components/payments/checkout, main file index.js) → acme.payments (team payments, components/payments/OWNERS)"
expect_out "added payments/refund (components/payments/refund, main file index.js) → acme.payments (team payments, components/payments/OWNERS)"
expect_out "added search/query (components/search/query, main file index.ts) → acme.search (team search, components/search/OWNERS)"
expect_out "added search/legacy-query (components/search/legacy-query, main file index.js) → acme.platform (team platform, components/search/legacy-query/OWNERS)"
expect_out 'added shared/format (components/shared/format, main file index.js) → acme.shared (variant "components/shared")'
expect_jv .bitmap 'd["payments/checkout"].defaultScope' acme.payments
expect_jv .bitmap 'd["search/legacy-query"].defaultScope' acme.platform
expect_jv .bitmap 'd["shared/format"].defaultScope' acme.shared
ok "add: each component routed by the nearest OWNERS file (over a variant), unowned ones by the built-in rule"

[ "$(status_field payments/refund scopeReason)" = "team payments, components/payments/OWNERS" ] || fail "status scopeReason"
[ "$(status_field payments/refund 'dependencies[1]')" = "payments/checkout" ] || fail "refund should depend on checkout"
[ "$(status_field payments/checkout 'dependencies[1]')" = "shared/format" ] || fail "checkout should depend on shared/format"
run "$BBIT" status
expect_code 0
expect_out "> search/legacy-query  → acme.platform"; expect_out "> shared/format  → acme.shared"
ok "status: target scopes and reasons from the workspace's routing script"

run "$BBIT" tag -m "first versions"
expect_code 0
expect_out "5 component(s) tagged"
expect_out "> payments/checkout@0.0.1  → acme.payments"
expect_out "> search/legacy-query@0.0.1  → acme.platform"
expect_out "> shared/format@0.0.1  → acme.shared"
for id in payments/checkout payments/refund search/query search/legacy-query shared/format; do
  expect_jv .bitmap "d[\"$id\"].version" 0.0.1
  expect_jv .bitmap "d[\"$id\"].scope" ""
done
expect_jv .bitmap 'd["search/query"].defaultScope' acme.search
ok "tag: .bitmap versions set, scope empty, defaultScope as routed by owner"

# a change in unowned shared code auto-tags the payments components using it
echo '// rounding fixed' >>components/shared/format/index.js
run "$BBIT" tag -m "format: rounding"
expect_code 0
expect_out "> shared/format@0.0.2  → acme.shared"
expect_out "> payments/checkout@0.0.2 (auto-tagged)  → acme.payments"
expect_out "> payments/refund@0.0.2 (auto-tagged)  → acme.payments"
ok "dependents across teams are auto-tagged, each to its own scope"

# hand legacy-query over to the search team: its OWNERS file is inside the
# component, so the component is modified, and the next tag records the scope
printf '# moved to search\nsearch\n' >components/search/legacy-query/OWNERS
[ "$(status_field search/legacy-query scope)" = acme.search ] || fail "status does not show the new owner's scope"
run "$BBIT" tag search/legacy-query
expect_code 0; expect_out "> search/legacy-query@0.0.2  → acme.search"
expect_jv .bitmap 'd["search/legacy-query"].defaultScope' acme.search
ok "changing an OWNERS file re-routes the component; tag records the new defaultScope"

# an unowned folder outside every variant: the workspace defaultScope
mkdir -p components/tools/cli
echo 'export const cli = 1;' >components/tools/cli/index.js
run "$BBIT" add components/tools/cli
expect_code 0; expect_out "→ acme.misc (workspace defaultScope)"
# --scope wins over the owner
mkdir -p components/payments/fraud
echo 'export const fraud = 1;' >components/payments/fraud/index.js
run "$BBIT" add components/payments/fraud --scope acme.risk
expect_code 0; expect_out "→ acme.risk (--scope)"
ok "fallback to the workspace defaultScope; --scope wins over the owner"

# errors: a team with no scope, an OWNERS file naming nobody
bitmap_sum=$(sum .bitmap)
mkdir -p components/ads/banner
echo 'export const banner = 1;' >components/ads/banner/index.js
echo 'marketing' >components/ads/OWNERS
run "$BBIT" add components/ads/banner
expect_code 1
expect_err "components/ads/OWNERS names team 'marketing', which has no scope"
expect_err '"bbit": {"teams": {"marketing": "owner.scope"}}'
printf '# nobody yet\n\n' >components/ads/OWNERS
run "$BBIT" add components/ads/banner
expect_code 1; expect_err "components/ads/OWNERS names no team"
[ "$(sum .bitmap)" = "$bitmap_sum" ] || fail "a failed add changed .bitmap"
# a team losing its scope stops the tag of its components, naming the fix
sed -i 's/"search": "acme.search",//' workspace.jsonc
echo '// more' >>components/search/query/index.ts
run "$BBIT" tag search/query
expect_code 1; expect_err "OWNERS names team 'search', which has no scope"
[ "$(sum .bitmap)" = "$bitmap_sum" ] || fail "a failed tag changed .bitmap"
ok "routing errors name the OWNERS file and how to fix it; nothing changes"

[ ! -e "$example/.bitmap" ] && [ ! -e "$example/.bit" ] || fail "the test wrote into examples/"
finish
