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
