# bbit.fs.lock across processes: a second bbit sees "locked by pid N", and the
# kernel frees the lock when the holder dies (even by SIGKILL).
. "$(dirname "$0")/lib.sh"

LOCK="$T_DIR/ws.lock"
cat >"$T_DIR/hold.lua" <<EOF
local fs = require("bbit.fs")
local lock = fs.lock("$LOCK")
local f = assert(io.open("$T_DIR/held", "w"))
f:close()
io.read("l") -- blocks until stdin closes (no child process holds anything)
lock:release()
print("released")
EOF
cat >"$T_DIR/try.lua" <<EOF
local fs = require("bbit.fs")
local wait = arg[1] == "wait"
local lock = fs.lock("$LOCK", { wait = wait, timeout = tonumber(arg[2]) })
print("got the lock")
lock:release()
EOF

# start_holder: runs hold.lua in the background with stdin on a fifo; HOLDER is its pid.
start_holder() {
  rm -f "$T_DIR/held" "$T_DIR/fifo"
  mkfifo "$T_DIR/fifo"
  "$BBIT" run "$T_DIR/hold.lua" <"$T_DIR/fifo" >"$T_DIR/holder.out" 2>&1 &
  HOLDER=$!
  exec 3>"$T_DIR/fifo"
  T_CLEANUP+=("kill -9 $HOLDER 2>/dev/null")
  for _ in $(seq 1 100); do
    [ -e "$T_DIR/held" ] && return 0
    kill -0 "$HOLDER" 2>/dev/null || fail "holder exited early: $(cat "$T_DIR/holder.out")"
    sleep 0.05
  done
  fail "holder never took the lock: $(cat "$T_DIR/holder.out")"
}

start_holder
[ "$(cat "$LOCK")" = "$HOLDER" ] || fail "lock file should hold pid $HOLDER, has '$(cat "$LOCK")'"
ok "the holder's pid is written into the lock file"

run "$BBIT" run "$T_DIR/try.lua"
expect_code 1
expect_err "$LOCK is locked by pid $HOLDER (another bbit running? if not, the lock is released when that process exits)"
expect_no "got the lock"
ok "a second process fails at once with 'locked by pid $HOLDER'"

start=$(date +%s%N)
run "$BBIT" run "$T_DIR/try.lua" wait 0.5
expect_code 1
expect_err "$LOCK is locked by pid $HOLDER"
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
[ "$elapsed_ms" -ge 450 ] || fail "wait with timeout 0.5 returned after ${elapsed_ms}ms"
ok "waiting with a timeout gives up with the same message (${elapsed_ms}ms)"

kill -9 "$HOLDER"
wait "$HOLDER" 2>/dev/null || true
exec 3>&-
run "$BBIT" run "$T_DIR/try.lua"
expect_code 0
expect_out "got the lock"
ok "after SIGKILL of the holder the lock is free again"

# a waiter gets the lock as soon as the holder releases it
start_holder
"$BBIT" run "$T_DIR/try.lua" wait 20 >"$T_DIR/waiter.out" 2>&1 3>&- & # must not keep the fifo open
WAITER=$!
T_CLEANUP+=("kill -9 $WAITER 2>/dev/null")
sleep 0.3
kill -0 "$WAITER" 2>/dev/null || fail "the waiter should still be waiting: $(cat "$T_DIR/waiter.out")"
exec 3>&- # the holder reads EOF, releases and exits
wait "$HOLDER" || fail "holder failed: $(cat "$T_DIR/holder.out")"
grep -qF released "$T_DIR/holder.out" || fail "holder did not release: $(cat "$T_DIR/holder.out")"
wait "$WAITER" || fail "waiter failed: $(cat "$T_DIR/waiter.out")"
grep -qF "got the lock" "$T_DIR/waiter.out" || fail "waiter output: $(cat "$T_DIR/waiter.out")"
ok "a waiting process takes the lock when the holder releases it"

finish
