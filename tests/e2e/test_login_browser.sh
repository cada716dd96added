#!/usr/bin/env bash
# `bbit login` through a real browser (SPEC §6): headless Chromium (driven by
# tests/browser/signin.mjs, started as $BROWSER) signs in on the server's
# /login page; the server redirects it to the CLI's listener with a new
# token. Then: the token is stored 0600 and works (whoami, export); a wrong
# password issues nothing (the CLI times out); a callback with a wrong state
# is refused while the CLI keeps waiting; `bbit logout` revokes the token.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/server_lib.sh"
source "$BBIT_SRC/tests/browser/require.sh"

SHOTS="$BBIT_TEST_TMP/screenshots"
mkdir -p "$SHOTS"
root="$T_DIR/server-A"
"$BBIT" server init --root "$root" >/dev/null
"$BBIT" server scope create my-org.my-scope --root "$root" >/dev/null
"$BBIT" server scope create my-org.ui --root "$root" >/dev/null
printf 'password-of-alice\n' | "$BBIT" server user add alice --password-stdin --grant 'my-org.*=write' --root "$root" >/dev/null
server_start A

# $BROWSER: hands the URL to the node script, records its pid and exit status.
cat >"$T_DIR/browser.sh" <<SH
#!/usr/bin/env bash
rm -f "$T_DIR/signin.rc"
node "$BROWSER_DIR/signin.mjs" "\$1" >"$T_DIR/signin.log" 2>&1 &
echo \$! >"$T_DIR/browser.pid"
wait \$!
echo \$? >"$T_DIR/signin.rc"
SH
chmod +x "$T_DIR/browser.sh"
export BROWSER="$T_DIR/browser.sh"
T_CLEANUP+=("[ -s '$T_DIR/browser.pid' ] && kill \$(cat '$T_DIR/browser.pid') 2>/dev/null")

# Waits for the browser script to finish; fails unless it exited 0.
wait_browser() {
  for _ in $(seq 600); do
    [ -s "$T_DIR/signin.rc" ] && break
    sleep 0.1
  done
  [ -s "$T_DIR/signin.rc" ] || fail "the browser script did not finish: $(cat "$T_DIR/signin.log" 2>/dev/null)"
  [ "$(cat "$T_DIR/signin.rc")" = 0 ] || fail "the browser script failed: $(cat "$T_DIR/signin.log")"
}
stored_token() { grep -o 'bbit_[0-9a-f]\{40\}' "$BBIT_HOME/config.json" | head -n 1; }
token_count() { "$BBIT" server token list --root "$root" | grep -c . || true; }
whoami_status() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "$A_URL/api/v1/whoami"; }

# ---------------------------------------------------------------------------
run env SIGNIN_PASSWORD=password-of-alice SIGNIN_SCREENSHOT="$SHOTS/login-browser-success.png" \
  SIGNIN_FORM_SCREENSHOT="$SHOTS/login-browser-form.png" "$BBIT" login --hub "$A_URL" --timeout 120
expect_code 0
expect_out "Opening the browser to sign in"
expect_out "Signed in successfully as alice ($A_URL)"
wait_browser
grep -q 'saw "Signed in successfully" at http://127.0.0.1:[0-9]*/callback?state=[0-9a-f]*&token=REDACTED' "$T_DIR/signin.log" ||
  fail "the browser did not end on the listener's page: $(cat "$T_DIR/signin.log")"
[ -s "$SHOTS/login-browser-success.png" ] || fail "no screenshot of the signed-in page"
ok "the browser signs in and ends on the CLI's 'Signed in successfully' page"

[ "$(stat -c %a "$BBIT_HOME/config.json")" = 600 ] || fail "config.json is not 0600"
TOKEN=$(stored_token)
[ -n "$TOKEN" ] || fail "no token in config.json: $(cat "$BBIT_HOME/config.json")"
expect_no "$TOKEN"
ok "the token is stored in config.json (0600) and never printed"

run "$BBIT" whoami --hub "$A_URL"
expect_code 0
expect_out "alice ($A_URL, token login from "
expect_out "write on my-org.*"
ok "bbit whoami: a login token named after the machine, with alice's grants"

ws="$T_DIR/ws"
make_workspace "$ws"
(
  cd "$ws"
  run "$BBIT" tag -m "signed in through the browser"
  expect_code 0
  run "$BBIT" remote add "$A_URL" --scope 'my-org.*'
  expect_code 0
  run "$BBIT" export
  expect_code 0
  expect_out "updated .bitmap"
)
curl -sf -H "Authorization: Bearer $TOKEN" "$A_URL/api/v1/scopes/my-org.ui/components" | grep -q '"name":"ui/button","head":"0.0.1"' ||
  fail "ui/button was not exported"
ok "the stored token exports (tag + export of the getting-started workspace)"

# ---------------------------------------------------------------------------
before=$(token_count)
run env SIGNIN_PASSWORD=not-her-password SIGNIN_EXPECT="Wrong username or password" \
  SIGNIN_SCREENSHOT="$SHOTS/login-browser-wrong-password.png" "$BBIT" login --hub "$A_URL" --timeout 5
expect_code 1
expect_err "timed out after 5 s waiting for the sign-in in the browser"
expect_err "bbit login"
wait_browser
grep -q 'saw "Wrong username or password"' "$T_DIR/signin.log" || fail "no wrong-password page: $(cat "$T_DIR/signin.log")"
[ "$(token_count)" = "$before" ] || fail "a wrong password issued a token"
[ "$(stored_token)" = "$TOKEN" ] || fail "a failed login changed the stored token"
ok "a wrong password: the page says so, nothing is issued, bbit login times out"

# ---------------------------------------------------------------------------
"$BBIT" login --hub "$A_URL" --no-browser --timeout 60 >"$T_DIR/login.out" 2>"$T_DIR/login.err" &
login_pid=$!
T_CLEANUP+=("kill $login_pid 2>/dev/null")
url=""
for _ in $(seq 200); do
  url=$(grep -o "$A_URL/login?[^ ]*" "$T_DIR/login.out" || true)
  [ -n "$url" ] && break
  sleep 0.05
done
[ -n "$url" ] || fail "bbit login --no-browser printed no URL: $(cat "$T_DIR/login.out" "$T_DIR/login.err")"
port=$(sed -n 's/.*[?&]port=\([0-9]*\).*/\1/p' <<<"$url")
state=$(sed -n 's/.*[?&]state=\([0-9a-f]*\).*/\1/p' <<<"$url")
[ -n "$port" ] && [ -n "$state" ] || fail "no port/state in $url"
NEW=$("$BBIT" server token create alice --scope 'my-org.*' --role read --name manual --root "$root" 2>/dev/null | tail -n 1)
code=$(curl -s -o "$T_DIR/cb.html" -w '%{http_code}' "http://127.0.0.1:$port/callback?state=0123wrong&token=$NEW")
[ "$code" = 400 ] || fail "a wrong state got HTTP $code"
grep -q "Sign-in refused" "$T_DIR/cb.html" || fail "no refusal page: $(cat "$T_DIR/cb.html")"
sleep 0.3
kill -0 "$login_pid" 2>/dev/null || fail "bbit login stopped after a wrong state: $(cat "$T_DIR/login.out" "$T_DIR/login.err")"
[ "$(stored_token)" = "$TOKEN" ] || fail "a wrong-state callback changed the stored token"
grep -q "wrong state" "$T_DIR/login.err" || fail "no warning about the wrong state: $(cat "$T_DIR/login.err")"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/callback?state=$state&token=$NEW")
[ "$code" = 200 ] || fail "the right state got HTTP $code"
wait "$login_pid" || fail "bbit login failed after the right callback: $(cat "$T_DIR/login.err")"
grep -qF "Signed in successfully as alice ($A_URL)" "$T_DIR/login.out" || fail "no success line: $(cat "$T_DIR/login.out")"
[ "$(stored_token)" = "$NEW" ] || fail "the right callback's token was not stored"
ok "a callback with a wrong state is refused (400) and bbit login keeps waiting"

# ---------------------------------------------------------------------------
run "$BBIT" login --hub "$A_URL" --token "$TOKEN"
expect_code 0
[ "$(whoami_status "$TOKEN")" = 200 ] || fail "the token should work before logout"
run "$BBIT" logout --hub "$A_URL"
expect_code 0
expect_out "signed out of $A_URL"
expect_no "could not revoke"
[ "$(whoami_status "$TOKEN")" = 401 ] || fail "the token still works after bbit logout"
grep -q "$TOKEN" "$BBIT_HOME/config.json" && fail "the token is still stored after logout"
run "$BBIT" whoami --hub "$A_URL"
expect_code 1
expect_err "not signed in to $A_URL"
ok "bbit logout revokes the token on the server (whoami: 401) and forgets it"

kill -TERM "${SERVER_PIDS[A]}"
wait "${SERVER_PIDS[A]}" 2>/dev/null || true
grep -q "bbit serve: stopped" "$T_DIR/server-A.log" || fail "the server did not stop cleanly: $(tail -n 20 "$T_DIR/server-A.log")"
! grep -E "Sanitizer|runtime error:" "$T_DIR/server-A.log" || fail "sanitizer report in the server log"
ok "the server stops cleanly (no sanitizer report in its log)"

finish
