#!/usr/bin/env bash
# bbit export against a real bbit serve: the seed flow, dry-run, nothing to
# export, only missing objects sent, divergence, permissions, unreachable server.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/server_lib.sh"

server_setup A
server_start A
ws="$T_DIR/ws"
make_workspace "$ws"
cd "$ws"

run "$BBIT" export
expect_code 0; expect_out "nothing to export"
ok "nothing staged: nothing to export"

run "$BBIT" tag -m "first version"
expect_code 0
run "$BBIT" remote add "$A_URL" --scope 'my-org.*'
expect_code 0; expect_out "remote added: my-org.* → $A_URL"
cp .bitmap "$T_DIR/bitmap.staged"

run "$BBIT" export --dry-run
expect_code 0
expect_out "my-org.ui → $A_URL"; expect_out "ui/button@0.0.1"; expect_out "my-org.my-scope → $A_URL"
expect_out "compressed"
cmp -s .bitmap "$T_DIR/bitmap.staged" || fail "--dry-run changed .bitmap"
[ -z "$(scope_state A my-org.ui)" ] || fail "--dry-run sent something"
ok "--dry-run shows what goes where, with sizes, and sends nothing"

# no token
run "$BBIT" export
expect_code 1
expect_err "scope my-org."; expect_err "not signed in"; expect_err "bbit login"
cmp -s .bitmap "$T_DIR/bitmap.staged" || fail "a refused export changed .bitmap"
ok "no token: 401 becomes a message naming the scope and how to sign in"

run env BBIT_TOKEN=bbit_0000000000000000000000000000000000000000 "$BBIT" export
expect_code 1; expect_err "not signed in or the token is not valid"
ok "a wrong token is refused"

run env BBIT_TOKEN="$READ_TOKEN" "$BBIT" export
expect_code 1; expect_err "permission denied (403)"; expect_err "write"
cmp -s .bitmap "$T_DIR/bitmap.staged" || fail "a refused export changed .bitmap"
[ -z "$(scope_state A my-org.ui)" ] || fail "a read-only token changed the server"
ok "a read-only token: 403 naming the scope and the missing write permission"

run env BBIT_TOKEN="$OTHER_TOKEN" "$BBIT" export
expect_code 1; expect_err "permission denied (403)"; expect_err "my-org."
ok "a token for another scope is refused"

run "$BBIT" login --hub "$A_URL" --token not-a-token
expect_code 1; expect_err "not signed in or the token is not valid"
[ ! -f "$BBIT_HOME/config.json" ] || ! grep -q not-a-token "$BBIT_HOME/config.json" || fail "a bad token was stored"
run "$BBIT" login --hub "$A_URL" --token "$WRITE_TOKEN"
expect_code 0; expect_out "Signed in successfully as alice ($A_URL)"
[ "$(stat -c %a "$BBIT_HOME/config.json")" = 600 ] || fail "config.json is not 0600"
expect_no "$WRITE_TOKEN"
run "$BBIT" whoami --hub "$A_URL"
expect_code 0; expect_out "alice"
ok "login --token verifies the token, stores it 0600, never prints it"

run "$BBIT" --verbose export
expect_code 0
expect_out "exported 3 component(s) to 2 scope(s)"
expect_out "my-org.ui ($A_URL)"; expect_out "ui/button@0.0.1"; expect_out "utils/format@0.0.1"
expect_out "git commit -am 'updated .bitmap file after a successful export'"
expect_no "$WRITE_TOKEN"; expect_err "Bearer ***"
ok "export publishes both scopes; --verbose redacts the token"

cat >"$T_DIR/bm.lua" <<'LUA'
local bm = require("bbit.json").read(arg[1])
local e = bm[arg[2]]
print(e.scope, e.version, e.defaultScope == nil and "no-defaultScope" or e.defaultScope)
LUA
[ "$("$BBIT" run "$T_DIR/bm.lua" .bitmap ui/button)" = "my-org.ui	0.0.1	no-defaultScope" ] || fail ".bitmap entry: $(cat .bitmap)"
[ "$("$BBIT" run "$T_DIR/bm.lua" .bitmap utils/format)" = "my-org.my-scope	0.0.1	no-defaultScope" ] || fail ".bitmap"
run "$BBIT" status
expect_no "staged"
ok ".bitmap records scope and version, drops defaultScope; status shows nothing staged"

run "$BBIT" list my-org.ui
expect_code 0; expect_out "ui/button"; expect_out "ui/theme"; expect_out "0.0.1"
run "$BBIT" log my-org.ui/ui/button --remote
expect_code 0; expect_out "first version"; expect_out "ci <ci@example.com>"
ok "the remote scopes list the components with their log"

run "$BBIT" export
expect_code 0; expect_out "nothing to export"

# only missing objects are sent: change one file, tag, export
echo "// tweak" >>components/utils/format/index.js
run "$BBIT" tag
expect_jv .bit/refs/staged.json 'd["utils/format"]' true
printf '{"not": ' >.bit/refs/staged.json # a damaged list of staged components is worked out again
asked=$(grep -c 'objects/missing' "$T_DIR/server-A.log")
run "$BBIT" export
expect_code 0
expect_out "utils/format@0.0.2"
expect_out "uploaded 3 object(s)"
expect_out "already on the server"
ok "a new version uploads only the objects the server lacks"
expect_jv .bit/refs/staged.json 'next(d)' nil
ok "the list of staged components (refs/staged.json) follows; a damaged one is worked out again"
[ "$(grep -c 'objects/missing' "$T_DIR/server-A.log")" = "$asked" ] ||
  fail "a component exported before was negotiated again: $(grep /api/ "$T_DIR/server-A.log")"
ok "a component exported before: no negotiation, its last export tells what the server has"

# the server lost an object of the last exported version: prepare says so, the
# client then asks what it lacks and sends it
echo "# format" >components/utils/format/README.md
run "$BBIT" tag utils/format --skip-auto-tag
run "$BBIT" export
expect_code 0; expect_out "utils/format@0.0.3"
readme=$(sha256sum components/utils/format/README.md | cut -d' ' -f1)
lost=$(find "$T_DIR/server-A/scopes" -path "*/objects/${readme:0:2}/${readme:2}")
[ -n "$lost" ] || fail "no loose object $readme on the server"
rm "$lost"
echo "// tweak again" >>components/utils/format/index.js
run "$BBIT" tag utils/format --skip-auto-tag
run "$BBIT" --verbose export
expect_code 0
expect_out "utils/format@0.0.4"
expect_err "asking what it lacks"
[ -f "$lost" ] || fail "the lost object was not sent again"
ok "a server lacking an object of the last export: it is asked, sent what it lacks, and the export commits"

# divergence: a second workspace with its own 0.0.2 of ui/theme
ws2="$T_DIR/ws2"
make_workspace "$ws2"
(cd "$ws2" && "$BBIT" remote add "$A_URL" --scope 'my-org.*' >/dev/null)
echo "// mine" >>components/ui/theme/index.js
run "$BBIT" tag ui/theme --skip-auto-tag -m "workspace one"
run "$BBIT" export
expect_code 0
cd "$ws2"
run "$BBIT" tag -m "first version" # the same 0.0.1 as workspace one (deterministic ids)
echo "// theirs" >>components/ui/theme/index.js
run "$BBIT" tag ui/theme --ver 0.0.3 --skip-auto-tag -m "workspace two"
expect_code 0
run "$BBIT" export
expect_code 1
expect_err "ui/theme"; expect_err "0.0.2"; expect_err "bbit import"
run "$BBIT" list
expect_out "staged: 0.0.1, 0.0.3"
[ "$(scope_state A my-org.ui | grep ui/theme | cut -f2)" = 0.0.2 ] || fail "the refused export changed the server"
ok "diverging histories: the second export is refused with the fix; local versions kept"

cd "$ws"
# a staged dependency goes along with what depends on it, even when the list
# of staged components lacks it (the refs are worked out from, not the list)
echo "// dep" >>components/ui/theme/index.js
run "$BBIT" tag ui/theme -m "dep" # ui/button is auto-tagged: it depends on ui/theme
expect_code 0; expect_out "ui/button@"
cat >"$T_DIR/unstage.lua" <<'LUA'
local fs, json = require("bbit.fs"), require("bbit.json")
local staged = json.read(".bit/refs/staged.json")
staged["ui/theme"] = nil
fs.write(".bit/refs/staged.json", json.encode(json.object(staged), { pretty = true }))
LUA
"$BBIT" run "$T_DIR/unstage.lua" || fail "cannot edit staged.json"
run "$BBIT" export ui/button
expect_code 0
expect_err "also exporting ui/theme"
expect_out "ui/theme@0.0.3"; expect_out "ui/button@0.0.2"
run "$BBIT" status
expect_no "staged"
ok "a staged dependency is exported along, also when the staged list lacks it"

# server unreachable
cd "$ws"
echo "// again" >>components/ui/button/index.js
run "$BBIT" tag
cp .bitmap "$T_DIR/bitmap.before"
refs_json .bit >"$T_DIR/refs.before"
server_kill A
run "$BBIT" export
expect_code 1
expect_err "cannot reach the server of scope my-org.ui at $A_URL"
cmp -s .bitmap "$T_DIR/bitmap.before" || fail "an unreachable server changed .bitmap"
refs_json .bit | cmp -s - "$T_DIR/refs.before" || fail "an unreachable server changed the refs"
ok "server unreachable: the message names scope and URL; nothing changes locally"
finish
