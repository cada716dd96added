# Helpers for the end-to-end tests (sourced by tests/e2e/test_*.sh).
# ctest sets BBIT (the binary), BBIT_SRC (the checkout) and BBIT_TEST_TMP.
set -euo pipefail

: "${BBIT:?run through ctest (BBIT unset)}"
T_PASS=0
T_NAME=$(basename "$0" .sh)
mkdir -p "${BBIT_TEST_TMP:-/tmp}"
T_DIR=$(mktemp -d "${BBIT_TEST_TMP:-/tmp}/$T_NAME.XXXXXX")
export BBIT_HOME="$T_DIR/home"
T_CLEANUP=()
t_cleanup() { for c in "${T_CLEANUP[@]}"; do eval "$c" || true; done; }
trap t_cleanup EXIT

fail() { echo "FAIL ($T_NAME): $*" >&2; exit 1; }

# run CMD...: runs it, keeping stdout in $OUT, stderr in $ERR, exit code in $CODE.
run() {
  set +e
  "$@" >"$T_DIR/out" 2>"$T_DIR/err"
  CODE=$?
  set -e
  OUT=$(cat "$T_DIR/out")
  ERR=$(cat "$T_DIR/err")
}

expect_code() { [ "$CODE" = "$1" ] || fail "expected exit $1, got $CODE; stdout: $OUT; stderr: $ERR"; }
expect_out() { grep -qF -- "$1" <<<"$OUT" || fail "stdout lacks '$1': $OUT (stderr: $ERR)"; }
expect_err() { grep -qF -- "$1" <<<"$ERR" || fail "stderr lacks '$1': $ERR"; }
expect_no() { ! grep -qF -- "$1" <<<"$OUT$ERR" || fail "output should not contain '$1': $OUT $ERR"; }
ok() { T_PASS=$((T_PASS + 1)); echo "ok - $*"; }
finish() { echo "$T_NAME: $T_PASS passed, 0 failed"; }

# jv FILE EXPR: evaluates the Lua expression EXPR with `d` = FILE decoded as
# JSONC (tables printed as compact JSON); reads .bitmap's comment header too.
cat >"$T_DIR/jv.lua" <<'LUA'
local json = require("bbit.json")
local file, expr = arg[1], arg[2]
local d = json.read(file)
local fn = assert(load("return " .. expr, "=expr", "t", setmetatable({ d = d, json = json }, { __index = _G })))
local v = fn()
print(type(v) == "table" and json.encode(v) or tostring(v))
LUA
jv() { "$BBIT" run "$T_DIR/jv.lua" "$@"; }

# refs_json SCOPE_DIR: a local scope's component refs as one JSON object,
# {"components": {...}} (refs/NN.json merged; the earlier refs.json as it is)
cat >"$T_DIR/refs_json.lua" <<'LUA'
local fs, json = require("bbit.fs"), require("bbit.json")
local dir, all = arg[1], {}
if fs.is_dir(dir .. "/refs") then
  for _, f in ipairs(fs.glob("[0-9][0-9].json", { cwd = dir .. "/refs" })) do
    for id, ref in pairs(json.read(dir .. "/refs/" .. f)) do
      all[id] = ref
    end
  end
elseif fs.exists(dir .. "/refs.json") then
  all = json.read(dir .. "/refs.json").components
else
  error("no refs in " .. dir)
end
io.write(json.encode({ components = json.object(all) }), "\n")
LUA
refs_json() { "$BBIT" run "$T_DIR/refs_json.lua" "$1"; }
# refs_file SCOPE_DIR: refs_json written to a file (for jv / expect_jv); prints its path
refs_file() {
  T_REFS_N=$((${T_REFS_N:-0} + 1))
  refs_json "$1" >"$T_DIR/refs.$T_REFS_N.json" || fail "cannot read the refs of $1"
  echo "$T_DIR/refs.$T_REFS_N.json"
}
# expect_jv FILE EXPR VALUE
expect_jv() {
  local got
  got=$(jv "$1" "$2") || fail "cannot evaluate $2 on $1"
  [ "$got" = "$3" ] || fail "$1: $2 is '$got', expected '$3'"
}
