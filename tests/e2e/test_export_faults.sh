#!/usr/bin/env bash
# Interrupted exports (SPEC §5): kill -9 of a server during an upload, after
# a one-phase prepare (one server), between the commits of two servers, and
# of the client after prepare and after its decision. After a restart, re-running `bbit export` completes, and the result
# equals an uninterrupted export's; no component is ever visible half-exported.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/server_lib.sh"

# tagged_workspace DIR: the example workspace in DIR, tagged; cd DIR
tagged_workspace() {
  make_workspace "$1"
  cd "$1"
  "$BBIT" tag -m "first version" >/dev/null
}
# use_server NAME: the workspace exports to server NAME, signed in
use_server() {
  local url=${1}_URL
  "$BBIT" remote add "${!url}" >/dev/null
  server_login "$1"
}

# Reference: an uninterrupted export to one server.
server_setup REF
server_start REF
tagged_workspace "$T_DIR/ref"
use_server REF
"$BBIT" export >/dev/null || fail "reference export failed"
REF_UI=$(scope_state REF my-org.ui)
REF_MY=$(scope_state REF my-org.my-scope)
REF_BITMAP=$(cat .bitmap)
[ -n "$REF_UI" ] && [ -n "$REF_MY" ] || fail "the reference export is empty"

same_as_reference() { # SERVER_UI SERVER_MY workspace
  [ "$(scope_state "$1" my-org.ui)" = "$REF_UI" ] || fail "my-org.ui differs: $(scope_state "$1" my-org.ui) vs $REF_UI"
  [ "$(scope_state "$2" my-org.my-scope)" = "$REF_MY" ] || fail "my-org.my-scope differs"
  [ "$(cat "$3/.bitmap")" = "$REF_BITMAP" ] || fail ".bitmap differs from the uninterrupted export's"
  (cd "$3" && "$BBIT" status | grep -q "staged") && fail "components still staged after completion" || true
}

# nothing of a scope, or all of it: never half
all_or_nothing() { # SERVER scope expected
  local state
  state=$(scope_state "$1" "$2")
  [ -z "$state" ] || [ "$state" = "$3" ] || fail "$2 is half-exported: $state"
}

# --- the server is killed during an upload -------------------------------
server_setup S1
server_start S1
tagged_workspace "$T_DIR/w1"
use_server S1
server_kill S1
BBIT_FAULT=server:during-upload server_start S1 # dies inside its first upload
run "$BBIT" export
expect_code 1
expect_err "cannot reach the server"
server_start S1
all_or_nothing S1 my-org.ui "$REF_UI"
[ -z "$(scope_state S1 my-org.ui)" ] || fail "a failed upload made something visible"
run "$BBIT" export
expect_code 0
same_as_reference S1 S1 "$T_DIR/w1"
ok "server killed during an upload: the re-run export completes, identical to an uninterrupted one"

# --- one server: it dies after committing the one-phase prepare, unanswered --
# (nothing is journaled for one server: the export is committed or absent, and
# the next `bbit export` sends the same versions, which the server accepts)
server_setup S2
BBIT_FAULT=server:after-prepare server_start S2
tagged_workspace "$T_DIR/w2"
use_server S2
run "$BBIT" export
expect_code 1
expect_err "cannot reach the server"
[ ! -e .bit/journal/export.json ] || fail "a one-server export left a journal"
"$BBIT" status | grep -q "staged" || fail "components are no longer staged after an unanswered export"
server_start S2
[ "$(scope_state S2 my-org.ui)" = "$REF_UI" ] || fail "the server did not commit before dying"
run "$BBIT" export
expect_code 0; expect_out "exported 3 component(s)"; expect_out "(9 already on the server)"
same_as_reference S2 S2 "$T_DIR/w2"
ok "one server dies after committing, before answering: the next export completes it (nothing sent twice)"

# --- one server: it commits but its answer is lost -----------------------------
# (server:prepare-lost answers 500 after committing: the client's abort learns
# it committed, and the same run ends the export, exit 0)
server_setup S10
BBIT_FAULT=server:prepare-lost server_start S10
tagged_workspace "$T_DIR/w7"
use_server S10
run "$BBIT" export
expect_code 0; expect_out "exported 3 component(s)"
grep -q "POST /api/v1/transactions 500" "$T_DIR/server-S10.log" || fail "the fault did not fire"
[ ! -e .bit/journal/export.json ] || fail "the export journal was left"
same_as_reference S10 S10 "$T_DIR/w7"
ok "one server commits but its answer is lost: the same export run learns it and finishes (exit 0)"

# --- two servers: one is killed between the commits ------------------------
server_setup S3
server_setup S4
server_start S3
server_start S4
tagged_workspace "$T_DIR/w3"
"$BBIT" remote add "$S3_URL" --scope my-org.my-scope >/dev/null
"$BBIT" remote add "$S4_URL" --scope my-org.ui >/dev/null
server_login S3
server_login S4
# my-org.my-scope (S3) commits first (servers in URL order); kill S4 before its commit
first=$(printf '%s\n%s\n' "$S3_URL" "$S4_URL" | sort | head -1)
[ "$first" = "$S3_URL" ] && victim=S4 || victim=S3
mkdir -p .bbit/scripts
cat >.bbit/scripts/export.lua <<LUA
return { before_commit = function() os.execute("kill -9 ${SERVER_PIDS[$victim]}") end }
LUA
run "$BBIT" export
expect_code 1
rm .bbit/scripts/export.lua
server_start "$victim"
all_or_nothing S4 my-org.ui "$REF_UI"
all_or_nothing S3 my-org.my-scope "$REF_MY"
run "$BBIT" export
expect_code 0
same_as_reference S4 S3 "$T_DIR/w3"
ok "two servers, one killed between the commits: the next export commits the other"

# --- the client is killed after its decision, between two commits ------------
server_setup S5
server_setup S6
server_start S5
server_start S6
tagged_workspace "$T_DIR/w4"
"$BBIT" remote add "$S5_URL" --scope my-org.my-scope >/dev/null
"$BBIT" remote add "$S6_URL" --scope my-org.ui >/dev/null
server_login S5
server_login S6
run env BBIT_FAULT=export:after-commit "$BBIT" export
[ "$CODE" = 137 ] || fail "the crash point did not fire (exit $CODE)"
[ -f .bit/journal/export.json ] || fail "no export journal after the crash"
cat >"$T_DIR/jid.lua" <<'LUA'
print(require("bbit.json").read(".bit/journal/export.json").id)
LUA
id=$("$BBIT" run "$T_DIR/jid.lua")
run "$BBIT" export --resume "$id"
expect_code 0
expect_out "finished the interrupted export $id"
same_as_reference S6 S5 "$T_DIR/w4"
ok "client killed between commits: export --resume ID finishes it"

# --- one server: the client is killed after its one-phase prepare -----------
server_setup S7
server_start S7
tagged_workspace "$T_DIR/w5"
use_server S7
run env BBIT_FAULT=export:after-prepare "$BBIT" export
[ "$CODE" = 137 ] || fail "the crash point did not fire (exit $CODE)"
[ "$(scope_state S7 my-org.ui)" = "$REF_UI" ] || fail "the one-phase prepare did not commit"
run "$BBIT" export
expect_code 0; expect_out "exported 3 component(s)"
same_as_reference S7 S7 "$T_DIR/w5"
ok "one server, client killed after its prepare (committed at once): the next export completes it"

# --- two servers: the client is killed after prepare, before deciding -------
server_setup S8
server_setup S9
server_start S8
server_start S9
tagged_workspace "$T_DIR/w6"
"$BBIT" remote add "$S8_URL" --scope my-org.my-scope >/dev/null
"$BBIT" remote add "$S9_URL" --scope my-org.ui >/dev/null
server_login S8
server_login S9
run env BBIT_FAULT=export:after-prepare "$BBIT" export
[ "$CODE" = 137 ] || fail "the crash point did not fire (exit $CODE)"
[ -z "$(scope_state S8 my-org.my-scope)" ] && [ -z "$(scope_state S9 my-org.ui)" ] ||
  fail "a prepared but undecided export is visible"
run "$BBIT" export
expect_code 0
same_as_reference S9 S8 "$T_DIR/w6"
ok "two servers, client killed after prepare: the next export aborts the old transactions (locks freed) and exports"

# --- a second export leaves .bitmap alone; killed after deciding, it is finished --
# (the components are in .bitmap with their scope and version already: the
# export's local update is marked decided by journal/export-local.keep)
cd "$T_DIR/ref"
echo "// 2" >>components/utils/format/index.js
"$BBIT" tag -m second >/dev/null || fail "second tag failed"
tagged_bitmap=$(cat .bitmap); tagged_inode=$(stat -c %i .bitmap)
run env BBIT_FAULT=export-local:after-journal "$BBIT" export
[ "$CODE" = 137 ] || fail "the crash point did not fire (exit $CODE)"
[ -f .bit/journal/export-local.keep ] || fail "no decision marker: $(ls .bit/journal)"
[ ! -e .bit/journal/export-local.bitmap ] || fail "the unchanged .bitmap was journaled"
run "$BBIT" status
expect_code 0; expect_err "finishing an interrupted \`bbit export-local\`"
! grep -q "staged" <<<"$OUT" || fail "still staged after the journal was finished: $OUT"
[ -z "$(ls -A .bit/journal)" ] || fail "journal left: $(ls .bit/journal)"
[ "$(cat .bitmap)" = "$tagged_bitmap" ] && [ "$(stat -c %i .bitmap)" = "$tagged_inode" ] ||
  fail ".bitmap was rewritten"
echo "// 3" >>components/utils/format/index.js
"$BBIT" tag -m third >/dev/null || fail "third tag failed"
tagged_inode=$(stat -c %i .bitmap)
run "$BBIT" export
expect_code 0; expect_out "utils/format@0.0.3"
[ "$(stat -c %i .bitmap)" = "$tagged_inode" ] || fail "an export that changes no entry rewrote .bitmap"
[ -z "$(ls -A .bit/journal)" ] || fail "journal left: $(ls .bit/journal)"
run "$BBIT" status
expect_code 0; expect_out "all clean"
ok "an export that changes no .bitmap entry leaves the file alone, and its interrupted local update is finished"
finish
