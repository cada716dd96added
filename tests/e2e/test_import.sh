#!/usr/bin/env bash
# bbit import and remote inspection: export from workspace A, import into an
# empty workspace B (files byte-identical, status clean), re-import rules,
# list/log/show --remote, and remote add/ls/rm.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/server_lib.sh"

server_setup A
server_start A
make_workspace "$T_DIR/a"
cd "$T_DIR/a"
chmod +x components/utils/format/index.js # a mode that must survive
"$BBIT" tag -m "first version" >/dev/null
"$BBIT" remote add "$A_URL" >/dev/null
server_login A
run "$BBIT" export
expect_code 0

mkdir "$T_DIR/b"
cd "$T_DIR/b"
"$BBIT" init >/dev/null
run "$BBIT" remote add "$A_URL" --scope 'my-org.*'
expect_code 0
run "$BBIT" remote ls
expect_code 0; expect_out "my-org.*"; expect_out "$A_URL"; expect_out "workspace"

run "$BBIT" import my-org.ui/ui/button my-org.my-scope/utils/format
expect_code 0
expect_out "imported my-org.ui/ui/button@0.0.1 into components/ui/button"
for f in components/ui/button/index.js components/utils/format/index.js; do
  cmp "$T_DIR/a/$f" "$f" || fail "$f differs after import"
done
[ -x components/utils/format/index.js ] || fail "the exec bit was lost"
run "$BBIT" status
expect_code 0
expect_out "nothing to tag or export"
run "$BBIT" list
expect_out "ui/button"; expect_out "exported"
cat >"$T_DIR/bm.lua" <<'LUA'
local e = require("bbit.json").read(".bitmap")[arg[1]]
print(e.scope, e.version, e.rootDir)
LUA
[ "$("$BBIT" run "$T_DIR/bm.lua" ui/button)" = "my-org.ui	0.0.1	components/ui/button" ] || fail ".bitmap entry after import"
ok "import: files byte-identical (modes kept), tracked as exported, status clean"

# a new version upstream; re-import updates an unmodified copy
cd "$T_DIR/a"
echo "// v2" >>components/ui/button/index.js
"$BBIT" tag -m "second" >/dev/null
"$BBIT" export >/dev/null
cd "$T_DIR/b"
run "$BBIT" import my-org.ui/ui/button
expect_code 0; expect_out "ui/button@0.0.2"
cmp "$T_DIR/a/components/ui/button/index.js" components/ui/button/index.js || fail "re-import did not update"
ok "re-import updates an unmodified component"

echo "// local change" >>components/ui/button/index.js
cp components/ui/button/index.js "$T_DIR/local.js"
run "$BBIT" import my-org.ui/ui/button@0.0.1
expect_code 1; expect_err "ui/button is modified"
cmp "$T_DIR/local.js" components/ui/button/index.js || fail "a refused import touched the files"
ok "re-import refuses to overwrite local changes"

run "$BBIT" import my-org.ui/ui/nope
expect_code 1; expect_err "ui/nope"
run "$BBIT" import not-a-full-id
expect_code 2; expect_err "OWNER.SCOPE/NAME"
run "$BBIT" import my-org.ui/ui/button@9.9.9
expect_code 1; expect_err "has no version 9.9.9"
ok "unknown components and versions are clear errors"

run "$BBIT" log my-org.ui/ui/button --remote
expect_code 0; expect_out "my-org.ui/ui/button@0.0.2"; expect_out "second"; expect_out "first version"
run "$BBIT" show my-org.ui/ui/button@0.0.1 --remote --json
expect_code 0; expect_out '"version": "0.0.1"'; expect_out '"dependencies"'
run "$BBIT" list my-org.ui --json
expect_code 0; expect_out '"name": "ui/button"'
ok "log/show/list read remote scopes (--json too)"

# an object whose bytes do not match its id is never accepted by import
cd "$T_DIR"
mkdir c && cd c && "$BBIT" init >/dev/null && "$BBIT" remote add "$A_URL" >/dev/null
store=$(ls -d "$T_DIR/server-A/scopes/my-org.ui/objects")
h=$(sha256sum "$T_DIR/a/components/ui/theme/index.js" | cut -c1-64)
victim="$store/${h:0:2}/${h:2}"
[ -f "$victim" ] || fail "no object $victim on the server"
cp "$victim" "$T_DIR/victim.bak"
printf 'garbage' >"$victim"
run "$BBIT" import my-org.ui/ui/theme
expect_code 1
expect_err "object"
[ ! -d components/ui/theme ] || [ -z "$(ls -A components/ui/theme)" ] || fail "a corrupt object produced files"
cp "$T_DIR/victim.bak" "$victim"
ok "a corrupt object on the server is refused by the hash check; nothing written"

cd "$T_DIR/b"
run "$BBIT" remote rm 'my-org.*'
expect_code 0; expect_out "removed 1 remote"
run "$BBIT" remote rm 'my-org.*'
expect_code 1; expect_err "no remote"
ok "remote rm"
finish
