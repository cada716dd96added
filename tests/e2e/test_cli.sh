#!/usr/bin/env bash
# The CLI host: help, version, exit codes (SPEC §3), -C, the script lookup
# order (SPEC §4), BBIT_DEV_DIR, workspace commands, `bbit run`.
source "$(dirname "$0")/lib.sh"

run "$BBIT" --help
expect_code 0; expect_out "usage: bbit"; expect_out "run"; expect_out "scripts"
ok "--help lists commands"

run "$BBIT" --version
expect_code 0; expect_out "bbit 0."
ok "--version"

run "$BBIT"
expect_code 2; expect_out "usage: bbit"
ok "no command: usage, exit 2"

run "$BBIT" frobnicate
expect_code 2; expect_err "'frobnicate' is not a bbit command"
ok "unknown command: exit 2"

run "$BBIT" scripts which --bogus
expect_code 2; expect_err "unknown option --bogus"
ok "unknown option: exit 2"

run "$BBIT" run --help
expect_code 0; expect_out "usage: bbit run FILE.lua"
ok "command --help"

# bbit run: args, exit code from the script, failures and script errors exit 1.
cat >"$T_DIR/args.lua" <<'LUA'
local json = require("bbit.errors")
print("arg0=" .. arg[0], "n=" .. #arg, "first=" .. arg[1], "vararg=" .. select(2, ...))
return 7
LUA
run "$BBIT" run "$T_DIR/args.lua" one "two words"
expect_code 7; expect_out "n=2"; expect_out "first=one"; expect_out "vararg=two words"
ok "run passes args and returns the script's exit code"

echo 'bbit.errors.fail("the widget is broken", "fix the widget")' >"$T_DIR/fail.lua"
run "$BBIT" run "$T_DIR/fail.lua"
expect_code 1; expect_err "error: the widget is broken"; expect_err "hint: fix the widget"
ok "a reported failure exits 1 with message and hint"

printf 'local x = nil\nreturn x.field\n' >"$T_DIR/bug.lua"
run "$BBIT" run "$T_DIR/bug.lua"
expect_code 1; expect_err "bug.lua:2:"; expect_no "stack traceback"
run "$BBIT" --debug run "$T_DIR/bug.lua"
expect_code 1; expect_err "stack traceback"
ok "an error in a user script names file:line; traceback only with --debug"

run "$BBIT" run "$T_DIR/missing.lua"
expect_code 1; expect_err "cannot read script $T_DIR/missing.lua"
ok "missing script"

# A require of a module beside the script.
mkdir -p "$T_DIR/lib"
echo 'return { answer = 42 }' >"$T_DIR/lib/helper.lua"
echo 'print("answer=" .. require("helper").answer)' >"$T_DIR/lib/main.lua"
run "$BBIT" run "$T_DIR/lib/main.lua"
expect_code 0; expect_out "answer=42"
ok "run can require files beside the script"

# Built-in Lua runs precompiled (tools/embed.c) but keeps its names and lines
cat >"$T_DIR/lines.lua" <<'LUA'
local i = debug.getinfo(require("bbit.json").encode, "S")
print(i.source, i.linedefined > 0)
local tag = require("bbit.scripts").load("tag")
local ok, err = pcall(tag.step, tag, 42)
print(ok, err)
LUA
run "$BBIT" run "$T_DIR/lines.lua"
expect_code 0; expect_out "=[builtin]/stdlib/bbit/json.lua	true"
expect_out "false	[builtin]/stdlib/bbit/workflow.lua:"
ok "built-in modules and scripts are precompiled with their chunk names and line numbers"

# Internal errors: a built-in command with a bug exits 70, says "please report".
dev="$T_DIR/dev"
mkdir -p "$dev/scripts/commands"
cat >"$dev/scripts/commands/crash.lua" <<'LUA'
return { summary = "crashes", run = function() local t = nil; return t.x end }
LUA
run env BBIT_DEV_DIR="$dev" "$BBIT" crash
expect_code 70; expect_err "internal error, please report"; expect_no "stack traceback"
run env BBIT_DEV_DIR="$dev" "$BBIT" --debug crash
expect_code 70; expect_err "stack traceback"; expect_err "crash.lua:1:"
ok "internal error: exit 70, traceback only under --debug"

# BBIT_DEV_DIR: a checkout's stdlib wins over the built-in copy.
mkdir -p "$dev/stdlib/bbit"
echo 'return { fail = function() end, is_failure = function() return false end, marker = "dev copy" }' >"$dev/stdlib/bbit/devprobe.lua"
echo 'print(require("bbit.devprobe").marker)' >"$T_DIR/probe.lua"
run env BBIT_DEV_DIR="$dev" "$BBIT" run "$T_DIR/probe.lua"
expect_code 0; expect_out "dev copy"
run "$BBIT" run "$T_DIR/probe.lua"
expect_code 1; expect_err "bbit.devprobe"
ok "BBIT_DEV_DIR makes a checkout's Lua win without rebuilding"

# Script lookup order: workspace > BBIT_SCRIPTS_PATH > BBIT_HOME > built-in.
ws="$T_DIR/ws"
mkdir -p "$ws/sub/deeper" "$ws/.bbit/scripts/commands" "$T_DIR/path1/commands" "$BBIT_HOME/scripts/commands"
echo '{}' >"$ws/workspace.jsonc"
for d in "$ws/.bbit/scripts" "$T_DIR/path1" "$BBIT_HOME/scripts"; do
  echo "return { summary = 'hello from $d', run = function() print('hello from $d') end }" >"$d/commands/hello.lua"
done
run "$BBIT" -C "$ws/sub/deeper" scripts which commands/hello
expect_code 0; expect_out "$ws/.bbit/scripts/commands/hello.lua"
run "$BBIT" -C "$ws/sub/deeper" hello
expect_code 0; expect_out "hello from $ws/.bbit/scripts"
ok "a workspace script wins, found from a subfolder with -C"

rm "$ws/.bbit/scripts/commands/hello.lua"
run env BBIT_SCRIPTS_PATH="$T_DIR/nowhere:$T_DIR/path1" "$BBIT" -C "$ws" scripts which commands/hello
expect_code 0; expect_out "$T_DIR/path1/commands/hello.lua"
ok "then BBIT_SCRIPTS_PATH"

run "$BBIT" -C "$ws" scripts which commands/hello
expect_code 0; expect_out "$BBIT_HOME/scripts/commands/hello.lua"
run "$BBIT" -C "$ws" hello
expect_out "hello from $BBIT_HOME/scripts"
ok "then BBIT_HOME/scripts"

run "$BBIT" -C "$ws" scripts which run
expect_code 1; expect_err "no script named 'run'"
run "$BBIT" -C "$ws" scripts which commands/run
expect_code 0; expect_out "[builtin]/scripts/commands/run.lua"
run "$BBIT" scripts list
expect_code 0; expect_out "commands/run"
run "$BBIT" scripts show commands/run
expect_code 0; expect_out "summary ="
ok "then built-in; scripts list/show"

# Errors in workspace scripts say so, with file and line, exit 1 (not 70).
printf 'return { summary = "x", run = function()\n  local n = nil\n  return n + 1\nend }\n' >"$ws/.bbit/scripts/commands/broken.lua"
run "$BBIT" -C "$ws" broken
expect_code 1; expect_err "in workspace script: .bbit/scripts/commands/broken.lua:3:"
printf 'return {{{ syntax\n' >"$ws/.bbit/scripts/commands/syntax.lua"
run "$BBIT" -C "$ws" syntax
expect_code 1; expect_err "in workspace script: .bbit/scripts/commands/syntax.lua:2:"
ok "errors in workspace scripts name file:line and exit 1"

run "$BBIT" -C "$T_DIR/does-not-exist" --help
expect_code 1; expect_err "cannot change to directory"
ok "-C with a missing directory"

finish
