#!/usr/bin/env bash
# Object packs end to end: a tag of many components stores one pack in the
# local scope (no loose object files); export stores one on the server; show,
# log, import and the web file view read packed objects; a small tag or
# export stays loose; packs accumulate and merge without losing an object.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/server_lib.sh"

server_setup A
"$BBIT" server scope create my-org.pub --public --root "$T_DIR/server-A" >/dev/null 2>&1
server_start A

# N components of 2 files each under components/c<i>
make_components() {
  local n=$1 tag=$2 i
  for i in $(seq 1 "$n"); do
    mkdir -p "components/c$i"
    printf 'export const v%d = "%s";\n' "$i" "$tag" >"components/c$i/index.js"
    printf '# c%d\n%s\n' "$i" "$tag" >"components/c$i/README.md"
  done
}
loose_objects() { find "$1/objects" -mindepth 2 -path "$1/objects/??/*" -type f | wc -l; }
packs() { find "$1/objects/pack" -name 'pack-*.pack' 2>/dev/null | wc -l; }
# every object id named by a version in the refs (files, artifacts, version objects)
cat >"$T_DIR/ids.lua" <<'LUA'
local json = require("bbit.json")
local store = require("bbit.store").open(arg[1])
local refs = json.decode(io.read("a"))
local n = 0
for _, ref in pairs(refs.components) do
  for _, v in pairs(ref.versions) do
    local obj = json.decode(store:get(v.id))
    for _, f in ipairs(obj.files) do assert(store:verify(f.blob)); n = n + 1 end
    for _, a in ipairs(obj.artifacts) do assert(store:verify(a.blob)); n = n + 1 end
    n = n + 1
  end
end
print(n)
LUA

mkdir "$T_DIR/ws"
cd "$T_DIR/ws"
"$BBIT" init --default-scope my-org.pub >/dev/null
make_components 40 one
"$BBIT" add components/* >/dev/null
run "$BBIT" tag -m first
expect_code 0; expect_out "40 component(s) tagged"
[ "$(packs .bit)" = 1 ] || fail "a tag of 40 components should store one pack: $(ls -R .bit/objects)"
[ "$(loose_objects .bit)" = 0 ] || fail "loose object files beside the pack: $(loose_objects .bit)"
[ -z "$(ls -A .bit/objects/tmp)" ] || fail "temp files left: $(ls .bit/objects/tmp)"
idx=$(find .bit/objects/pack -name '*.idx')
[ "$(stat -c %a "$idx")" = 444 ] || fail "the pack index is writable"
checked=$(refs_json .bit | "$BBIT" run "$T_DIR/ids.lua" .bit) || fail "a packed object does not verify"
[ "$checked" -ge 120 ] || fail "expected >= 120 object references, got $checked"
run "$BBIT" show c7
expect_code 0; expect_out "index.js"
run "$BBIT" status
expect_code 0; expect_out "staged"
ok "a tag of 40 components stores one pack (0444), no loose files; every object verifies; show and status read it"

# export: one pack request per batch, stored as a pack on the server
"$BBIT" remote add "$A_URL" >/dev/null
server_login A
run "$BBIT" export
expect_code 0; expect_out "exported 40 component(s)"
srv_scope="$T_DIR/server-A/scopes/my-org.pub"
[ "$(packs "$srv_scope")" -ge 1 ] || fail "the server stored no pack: $(ls -R "$srv_scope/objects" | head)"
[ "$(loose_objects "$srv_scope")" = 0 ] || fail "the server stored loose objects for a large upload"
grep -q "internal error" "$T_DIR/server-A.log" && fail "server errors: $(grep 'internal error' "$T_DIR/server-A.log")"
ok "export of 40 components: the server stores the upload as a pack"

# reads of packed objects on the server: the web file view and import
page=$(curl -sf "$A_URL/my-org.pub/c12/-/raw/index.js?v=0.0.1") || fail "cannot fetch a packed file from the web view"
[ "$page" = 'export const v12 = "one";' ] || fail "the web view served '$page'"
mkdir "$T_DIR/b"
cd "$T_DIR/b"
"$BBIT" init >/dev/null
"$BBIT" remote add "$A_URL" --scope 'my-org.*' >/dev/null
run "$BBIT" import my-org.pub/c3 my-org.pub/c33
expect_code 0; expect_out "imported my-org.pub/c3@0.0.1"
cmp "$T_DIR/ws/components/c33/README.md" components/c33/README.md || fail "an imported file differs"
ok "the server reads packed objects: the web file view and import (byte-identical)"

# a small tag and its export stay loose (a pack of a few objects is not worth a file)
cd "$T_DIR/ws"
echo "// two" >>components/c5/index.js
run "$BBIT" tag -m small
expect_code 0; expect_out "1 component(s) tagged"
[ "$(packs .bit)" = 1 ] || fail "a one-component tag made a pack"
[ "$(loose_objects .bit)" -ge 3 ] || fail "a one-component tag should store loose objects"
before=$(packs "$srv_scope")
run "$BBIT" export
expect_code 0
[ "$(packs "$srv_scope")" = "$before" ] || fail "a one-component export made a pack on the server"
[ "$(loose_objects "$srv_scope")" -ge 2 ] || fail "the server stored no loose object for a small export"
ok "a one-component tag and export store loose objects, not a pack"

# packs accumulate; past 16 the 9 smallest merge; nothing is lost on either side
for round in two three four; do
  make_components 40 "$round"
  "$BBIT" tag -m "$round" >/dev/null 2>&1 || fail "tag $round failed"
done
[ "$(packs .bit)" = 4 ] || fail "4 large tags should leave 4 packs, not $(packs .bit)"
for round in $(seq 5 17); do # 22 components: 66 new objects, a pack each
  for i in $(seq 1 22); do printf 'export const v%d = "round %d";\n' "$i" "$round" >"components/c$i/index.js"; done
  "$BBIT" tag -m "round $round" >/dev/null 2>&1 || fail "tag round $round failed"
  [ "$round" = 17 ] || [ "$(packs .bit)" = "$round" ] || fail "after $round large tags: $(packs .bit) packs"
done
[ "$(packs .bit)" = 9 ] || fail "the 17th pack should merge the 9 smallest (9 left), not $(packs .bit)"
[ -z "$(ls -A .bit/objects/tmp)" ] || fail "the merge left temp files"
checked=$(refs_json .bit | "$BBIT" run "$T_DIR/ids.lua" .bit) || fail "an object was lost in the merge"
[ "$checked" -ge 1300 ] || fail "expected >= 1300 object references after 17 tags, got $checked"
run "$BBIT" export
expect_code 0
run "$BBIT" log c40
expect_code 0; expect_out "four"; expect_out "first"
run "$BBIT" log c1
expect_code 0; expect_out "round 17"; expect_out "round 5"
cd "$T_DIR/b"
run "$BBIT" import my-org.pub/c40 my-org.pub/c1
expect_code 0; expect_out "c40@0.0.4"; expect_out "c1@0.0.17"
grep -q '"four"' components/c40/index.js || fail "import did not bring the last version of c40"
grep -q '"round 17"' components/c1/index.js || fail "import did not bring the last version of c1"
ok "17 large tags: 16 packs, then the 9 smallest merge into one; every object verifies; export and import of the latest work"
finish
