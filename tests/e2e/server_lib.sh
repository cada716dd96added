# Helpers for e2e tests that need a real `bbit serve` (sourced after lib.sh).
#   server_setup NAME          a server root with scopes my-org.my-scope, my-org.ui,
#                              other.scope, user alice and tokens WRITE_TOKEN /
#                              READ_TOKEN / OTHER_TOKEN (also kept as NAME_WRITE)
#   server_start NAME          start it on 127.0.0.1:<free port>; sets <NAME>_URL
#   server_kill NAME           kill -9
export SOURCE_DATE_EPOCH=1700000000 BBIT_AUTHOR_NAME=ci BBIT_AUTHOR_EMAIL=ci@example.com

declare -A SERVER_PIDS SERVER_PORTS
server_setup() {
  local name=$1 root="$T_DIR/server-$1"
  "$BBIT" server init --root "$root" >/dev/null
  "$BBIT" server scope create my-org.my-scope --root "$root" >/dev/null
  "$BBIT" server scope create my-org.ui --root "$root" >/dev/null
  "$BBIT" server scope create other.scope --root "$root" >/dev/null
  printf 'password-of-alice\n' | "$BBIT" server user add alice --password-stdin --root "$root" >/dev/null
  WRITE_TOKEN=$("$BBIT" server token create alice --scope 'my-org.*' --role write --name ci --root "$root" 2>/dev/null | tail -n 1)
  READ_TOKEN=$("$BBIT" server token create alice --scope 'my-org.*' --role read --name ro --root "$root" 2>/dev/null | tail -n 1)
  OTHER_TOKEN=$("$BBIT" server token create alice --scope 'other.*' --role write --name other --root "$root" 2>/dev/null | tail -n 1)
  printf -v "${name}_WRITE" '%s' "$WRITE_TOKEN"
}

server_start() {
  local name=$1 root="$T_DIR/server-$1" port=${SERVER_PORTS[$1]:-0} log="$T_DIR/server-$1.log"
  : >"$log"
  "$BBIT" serve --root "$root" --listen "127.0.0.1:$port" 2>>"$log" &
  SERVER_PIDS[$name]=$!
  T_CLEANUP+=("kill -9 ${SERVER_PIDS[$name]} 2>/dev/null")
  local url=""
  for _ in $(seq 200); do
    url=$(sed -n 's/.*listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$log" | tail -n 1)
    [ -n "$url" ] && break
    sleep 0.05
  done
  [ -n "$url" ] || fail "server $name did not start: $(cat "$log")"
  SERVER_PORTS[$name]=${url##*:}
  printf -v "${name}_URL" '%s' "$url"
}

server_kill() {
  kill -9 "${SERVER_PIDS[$1]}" 2>/dev/null || true
  wait "${SERVER_PIDS[$1]}" 2>/dev/null || true
}

# A workspace copied from examples/getting-started, with its components added.
make_workspace() {
  local dir=$1
  cp -r "$BBIT_SRC/examples/getting-started" "$dir"
  (cd "$dir" && "$BBIT" init >/dev/null && "$BBIT" add components/ui/theme components/ui/button components/utils/format >/dev/null)
}

# The server's view of a scope, as "name head head_id" lines (NAME: the server).
scope_state() {
  local name=$1 scope=$2 url token
  url=${name}_URL token=${name}_WRITE
  curl -sf -H "Authorization: Bearer ${!token}" "${!url}/api/v1/scopes/$scope/components" |
    "$BBIT" run "$T_DIR/components.lua" || fail "cannot read $scope from server $name"
}

# Signs this user in to server NAME with its write token.
server_login() {
  local url=${1}_URL token=${1}_WRITE
  "$BBIT" login --hub "${!url}" --token "${!token}" >/dev/null || fail "login to $1 failed"
}

cat >"$T_DIR/components.lua" <<'LUA'
local list = require("bbit.json").decode(io.read("a")).components
for _, c in ipairs(list) do print(c.name, c.head, c.head_id) end
LUA
