# Sourced by the e2e tests that drive a browser (after tests/e2e/lib.sh):
# fails, naming the package, when Chromium, Node.js or playwright-core is
# missing. tools/setup-debian installs chromium and nodejs/npm; tools/test
# runs `npm ci` in tests/browser.
BROWSER_DIR="$BBIT_SRC/tests/browser"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || fail "Chromium is missing ($CHROMIUM): install the Debian package 'chromium' (tools/setup-debian does)"
command -v node >/dev/null 2>&1 || fail "Node.js is missing: install the Debian package 'nodejs' (tools/setup-debian does)"
[ -f "$BROWSER_DIR/node_modules/playwright-core/package.json" ] ||
  fail "the npm package playwright-core is missing: run 'npm ci' in $BROWSER_DIR (needs the Debian package 'npm'; tools/test does it)"
export CHROMIUM
