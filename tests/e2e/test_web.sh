#!/usr/bin/env bash
# The server's web pages in headless Chromium (SPEC §7): exports the
# getting-started workspace (ui/button 0.0.1 and 0.0.2, depending on
# ui/theme) and demo/xss (a hostile log message, author and file name, in
# the public scope my-org.my-scope), then runs tests/browser/pages.mjs:
# anonymous and signed-in views, scope and component pages, the dependency
# link, a file view, an artifact download, the XSS page (no dialog, literal
# text), sign-out. Screenshots go to $BBIT_TEST_TMP/screenshots/web-*.png.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/server_lib.sh"
source "$BBIT_SRC/tests/browser/require.sh"

XSS='<script>alert(1)</script><img src=x onerror=alert(2)>'
SHOTS="$BBIT_TEST_TMP/screenshots"
mkdir -p "$SHOTS"
rm -f "$SHOTS"/web-*.png
root="$T_DIR/server-A"
"$BBIT" server init --root "$root" >/dev/null
"$BBIT" server scope create my-org.ui --root "$root" >/dev/null
"$BBIT" server scope create my-org.my-scope --public --root "$root" >/dev/null
"$BBIT" server scope create other.scope --root "$root" >/dev/null
printf 'password-of-alice\n' | "$BBIT" server user add alice --password-stdin --grant 'my-org.*=write' --root "$root" >/dev/null
TOKEN=$("$BBIT" server token create alice --scope 'my-org.*' --role write --name ci --root "$root" 2>/dev/null | tail -n 1)
server_start A

ws="$T_DIR/ws"
make_workspace "$ws"
cd "$ws"
run "$BBIT" tag -m "first version"
expect_code 0
echo "// v2" >>components/ui/button/index.js
run "$BBIT" tag ui/button -m "second version"
expect_code 0
mkdir -p components/demo/xss
printf 'import { theme } from "../../ui/theme";\nexport const x = 1;\n' >components/demo/xss/index.js
printf 'weird\n' >'components/demo/xss/<img src=x onerror=alert(3)>.js'
run "$BBIT" add components/demo/xss
expect_code 0
run env BBIT_AUTHOR_NAME='<i>mallory</i>' "$BBIT" tag demo/xss -m "$XSS"
expect_code 0
run "$BBIT" remote add "$A_URL" --scope 'my-org.*'
expect_code 0
run env BBIT_TOKEN="$TOKEN" "$BBIT" export
expect_code 0
ok "exported ui/button (2 versions), ui/theme, utils/format and demo/xss"

# the same hostile page without a browser: escaped in the HTML
page=$(curl -sf "$A_URL/my-org.my-scope/demo/xss") || fail "cannot fetch the demo/xss page"
grep -qF '&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;' <<<"$page" || fail "the payload is not escaped: $page"
! grep -qF "$XSS" <<<"$page" || fail "the raw payload is in the page"
ok "the XSS payload is escaped in the HTML"

cd "$BROWSER_DIR"
run env SIGNIN_USER=alice SIGNIN_PASSWORD=password-of-alice SCREENSHOTS="$SHOTS" XSS="$XSS" node pages.mjs "$A_URL"
echo "$OUT"
expect_code 0
expect_out "checks passed"
for name in home-anonymous login home scope component file xss signed-out; do
  [ -s "$SHOTS/web-$name.png" ] || fail "no screenshot web-$name.png"
done
ok "the pages work in Chromium: $(grep -c '^ok - ' <<<"$OUT") browser checks; screenshots in $SHOTS"

kill -TERM "${SERVER_PIDS[A]}"
wait "${SERVER_PIDS[A]}" 2>/dev/null || true
grep -q "bbit serve: stopped" "$T_DIR/server-A.log" || fail "the server did not stop cleanly: $(tail -n 20 "$T_DIR/server-A.log")"
! grep -E "Sanitizer|runtime error:" "$T_DIR/server-A.log" || fail "sanitizer report in the server log"
ok "the server stops cleanly (no sanitizer report in its log)"

finish
