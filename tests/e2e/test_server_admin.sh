# bbit server init/scope/user/token and bbit serve: the admin commands on a
# server root, then a real server on 127.0.0.1 checked with curl.
source "$(dirname "$0")/lib.sh"

R="$T_DIR/root"
SERVER_PID=""
stop_server() { if [ -n "$SERVER_PID" ]; then kill -9 "$SERVER_PID" 2>/dev/null || true; fi; }
T_CLEANUP+=("stop_server")

# --- init --------------------------------------------------------------------
run "$BBIT" server init --root "$R"
expect_code 0
expect_out "Initialized a bbit server root in $R"
[ -f "$R/server.db" ] || fail "no server.db after init"
[ -d "$R/scopes" ] || fail "no scopes/ after init"
ok "init creates the root"

run "$BBIT" server init --root "$R"
expect_code 0
expect_err "already initialized"
ok "init twice says already initialized"

mkdir -p "$T_DIR/notempty" && echo x >"$T_DIR/notempty/file"
run "$BBIT" server init --root "$T_DIR/notempty"
expect_code 1
expect_err "is not empty and not a bbit server root"
[ ! -e "$T_DIR/notempty/server.db" ] || fail "init wrote into a non-empty directory"
ok "init refuses a non-empty directory"

run "$BBIT" server scope create my-org.ui --root "$T_DIR/nowhere"
expect_code 1
expect_err "is not a bbit server root"
ok "commands refuse a directory that is not a server root"

run "$BBIT" server init
expect_code 2
expect_err "needs --root DIR"
ok "a missing --root is a usage error"

# --- scopes ------------------------------------------------------------------
run "$BBIT" server scope create my-org.ui --root "$R"
expect_code 0
expect_out "Created scope my-org.ui"
[ -d "$R/scopes/my-org.ui/objects" ] || fail "no object store for my-org.ui"
run "$BBIT" server scope create pub --public --root "$R"
expect_code 0
expect_out "Created public scope pub"
ok "scope create (private and public)"

for bad in "My-Org.ui" "a.b.c" "_x" "a..b" "a/b" "a." ""; do
  run "$BBIT" server scope create "$bad" --root "$R"
  expect_code 1
  expect_err "invalid scope name"
done
run "$BBIT" server scope create "$(printf 'a%.0s' $(seq 101))" --root "$R"
expect_code 1
expect_err "invalid scope name"
[ ! -e "$R/scopes/a..b" ] && [ ! -e "$R/scopes/a" ] || fail "an invalid scope left a directory"
ok "scope create refuses invalid names"

run "$BBIT" server scope create my-org.ui --root "$R"
expect_code 1
expect_err "scope my-org.ui already exists"
ok "scope create refuses a duplicate"

run "$BBIT" server scope list --root "$R"
expect_code 0
expect_out "my-org.ui"
expect_out "pub"
grep -q "^pub .*public" <<<"$OUT" || fail "scope list does not mark pub public: $OUT"
run "$BBIT" server scope list --json --root "$R"
expect_code 0
grep -q '"name": "my-org.ui"' <<<"$OUT" || fail "scope list --json: $OUT"
ok "scope list"

# --- users -------------------------------------------------------------------
run bash -c "echo 'short' | '$BBIT' server user add bob --password-stdin --root '$R'"
expect_code 1
expect_err "at least 8 characters"
ok "user add refuses a short password"

run bash -c "echo 'correct horse' | '$BBIT' server user add alice --password-stdin --grant 'my-org.*=write' --root '$R'"
expect_code 0
expect_out "Added user alice"
ok "user add with --password-stdin"

run bash -c "echo 'correct horse' | '$BBIT' server user add alice --password-stdin --root '$R'"
expect_code 1
expect_err "user alice already exists"
ok "user add refuses an existing user"

run bash -c "echo 'correct horse' | '$BBIT' server user add carol --password-stdin --grant 'my-org.*=owner' --root '$R'"
expect_code 1
expect_err "invalid role 'owner'"
run bash -c "'$BBIT' server user add dave --root '$R' </dev/null"
expect_code 1
expect_err "use --password-stdin"
ok "user add refuses a bad grant and a missing terminal"

# The password is stored as a slow KDF hash with its parameters, never in clear.
if command -v sqlite3 >/dev/null; then
  hash=$(sqlite3 "$R/server.db" "select password_hash from users where name='alice'")
  [[ "$hash" == scrypt\$32768\$8\$1\$* ]] || fail "unexpected password hash format: $hash"
  ok "password stored as scrypt"
fi
! grep -qa "correct horse" "$R/server.db" || fail "the password is in the database in clear"

# --- tokens ------------------------------------------------------------------
run "$BBIT" server token create alice --scope 'my-org.*' --role write --name ci --root "$R"
expect_code 0
TOKEN=$(tail -n 1 <<<"$OUT")
[[ "$TOKEN" =~ ^bbit_[0-9a-f]{40}$ ]] || fail "the last stdout line is not a token: $OUT"
[ "$(wc -l <<<"$OUT")" = 1 ] || fail "token create printed more than the token on stdout: $OUT"
expect_err "Created token 1 (ci) for alice: my-org.*=write"
! grep -qa "$TOKEN" "$R/server.db" || fail "the token itself is stored in the database"
ok "token create prints the token alone on the last stdout line"

run "$BBIT" server token create alice --scope 'my-org.*' --role read --root "$R"
expect_code 0
REVOKED=$(tail -n 1 <<<"$OUT")
expect_err "Created token 2 (token-2)"

run "$BBIT" server token create nobody --scope 'x' --role read --root "$R"
expect_code 1
expect_err "no user nobody"
run "$BBIT" server token create alice --scope 'x' --role superuser --root "$R"
expect_code 1
expect_err "invalid role 'superuser'"
run "$BBIT" server token create alice --scope 'x' --root "$R"
expect_code 2
ok "token create refuses an unknown user, a bad role, a missing --role"

run "$BBIT" server token revoke 2 --root "$R"
expect_code 0
expect_out "Revoked token 2"
run "$BBIT" server token revoke 2 --root "$R"
expect_code 0
expect_out "already revoked"
run "$BBIT" server token revoke 99 --root "$R"
expect_code 1
expect_err "no token 99"
run "$BBIT" server token revoke abc --root "$R"
expect_code 2
ok "token revoke"

run "$BBIT" server token list --root "$R"
expect_code 0
expect_out "ci"
expect_out "my-org.*=write"
expect_out "revoked"
expect_no "$TOKEN"
ok "token list (without secrets)"

# --- serve -------------------------------------------------------------------
run "$BBIT" serve --root "$R" --listen 0.0.0.0:0
expect_code 1
expect_err "not a loopback address"
expect_err "--public-listen"
ok "serve refuses a non-loopback address"

run "$BBIT" serve --root "$T_DIR/nowhere" --listen 127.0.0.1:0
expect_code 1
expect_err "is not a bbit server root"
ok "serve refuses a directory that is not a root"

LOG="$T_DIR/serve.log"
"$BBIT" serve --root "$R" --listen 127.0.0.1:0 </dev/null >"$T_DIR/serve.out" 2>"$LOG" &
SERVER_PID=$!
PORT=""
for _ in $(seq 100); do
  PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$LOG" | grep -o '[0-9]*$' || true)
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || fail "the server did not print its address: $(cat "$LOG")"
grep -qF "bbit serve: listening on http://127.0.0.1:$PORT (root $R)" "$LOG" || fail "listening line: $(cat "$LOG")"
URL="http://127.0.0.1:$PORT"
ok "serve listens on a kernel-chosen port"

# curl_json PATH [CURL ARGS...]: sets STATUS and BODY
curl_json() {
  local path=$1
  shift
  BODY=$(curl -s -o - -w '\n%{http_code}' "$@" "$URL$path")
  STATUS=$(tail -n 1 <<<"$BODY")
  BODY=$(sed '$d' <<<"$BODY")
}

curl_json /api/v1/health
[ "$STATUS" = 200 ] || fail "health: $STATUS $BODY"
grep -q '"ok":true' <<<"$BODY" || fail "health body: $BODY"
grep -q '"version":"' <<<"$BODY" || fail "health body: $BODY"
ok "health"

curl_json /api/v1/whoami -H "Authorization: Bearer $TOKEN"
[ "$STATUS" = 200 ] || fail "whoami: $STATUS $BODY"
grep -q '"user":"alice"' <<<"$BODY" || fail "whoami body: $BODY"
grep -q '"name":"ci"' <<<"$BODY" || fail "whoami body: $BODY"
grep -q '"scope":"my-org.\*","role":"write"' <<<"$BODY" || fail "whoami grants: $BODY"
ok "whoami with a token"

curl_json /api/v1/whoami -H "Authorization: Bearer $REVOKED"
[ "$STATUS" = 401 ] || fail "whoami with a revoked token: $STATUS $BODY"
grep -q '"code":"unauthorized"' <<<"$BODY" || fail "revoked body: $BODY"
grep -q 'revoked' <<<"$BODY" || fail "revoked body: $BODY"
curl_json /api/v1/whoami
[ "$STATUS" = 401 ] || fail "whoami without a token: $STATUS $BODY"
curl_json /api/v1/whoami -H "Authorization: Bearer bbit_0000000000000000000000000000000000000000"
[ "$STATUS" = 401 ] || fail "whoami with an unknown token: $STATUS $BODY"
curl_json /api/v1/scopes/pub -H "Authorization: Bearer $REVOKED"
[ "$STATUS" = 401 ] || fail "a revoked token on a public scope must not be anonymous: $STATUS"
ok "whoami: revoked, missing and unknown tokens get 401"

curl_json /api/v1/scopes/pub
[ "$STATUS" = 200 ] || fail "anonymous read of a public scope: $STATUS $BODY"
curl_json /api/v1/scopes/my-org.ui
[ "$STATUS" = 401 ] || fail "anonymous read of a private scope: $STATUS $BODY"
curl_json /api/v1/nothing
[ "$STATUS" = 404 ] && grep -q '"code":"not_found"' <<<"$BODY" || fail "unknown route: $STATUS $BODY"
curl_json /api/v1/health -X DELETE
[ "$STATUS" = 405 ] && grep -q '"code":"method_not_allowed"' <<<"$BODY" || fail "wrong method: $STATUS $BODY"
ok "public scope, private scope, unknown route, wrong method"

! grep -qF "$TOKEN" "$LOG" || fail "the server logged a token"
grep -q "GET /api/v1/whoami 200" "$LOG" || fail "no request log line: $(cat "$LOG")"
ok "request log without tokens"

kill -TERM "$SERVER_PID"
set +e
wait "$SERVER_PID"
CODE=$?
set -e
SERVER_PID=""
[ "$CODE" = 0 ] || fail "serve exited $CODE after SIGTERM: $(cat "$LOG")"
grep -q "stopped" "$LOG" || fail "no clean stop: $(cat "$LOG")"
! curl -s "$URL/api/v1/health" >/dev/null || fail "the server still answers after SIGTERM"
ok "SIGTERM stops the server cleanly (exit 0)"

finish
