#!/usr/bin/env bash
# Artifacts with a recipe (the built-in package task's .tgz records the blobs
# it is made of): after a one-file change the server rebuilds the package
# from blobs it already has instead of receiving it again, byte for byte; a
# recipe the server cannot reproduce makes the client upload the artifact; a
# malformed recipe fails the tag with a message.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/server_lib.sh"

server_setup A
server_start A
ws="$T_DIR/ws"
make_workspace "$ws"
cd "$ws"
seq 1 2000 >components/ui/button/data.txt # most of the package's bytes
"$BBIT" remote add "$A_URL" --scope 'my-org.*' >/dev/null
server_login A

# artifact_blob ID@V: the package.tgz id in the local version object
artifact_blob() {
  "$BBIT" show "$1" --json >"$T_DIR/show.json" || fail "bbit show $1 failed"
  jv "$T_DIR/show.json" 'd.artifacts[1].blob'
}
# served_sha SCOPE NAME V: sha256 of the package.tgz the server serves
served_sha() {
  curl -sf -H "Authorization: Bearer $WRITE_TOKEN" "$A_URL/$1/$2/-/artifact/package.tgz?v=$3" |
    sha256sum | cut -d' ' -f1
}

run "$BBIT" tag -m "first"
expect_code 0
"$BBIT" show ui/button@0.0.1 --json >"$T_DIR/v1.json"
expect_jv "$T_DIR/v1.json" 'd.artifacts[1].recipe.format' tar.gz
expect_jv "$T_DIR/v1.json" '#d.artifacts[1].recipe.entries' 2
expect_jv "$T_DIR/v1.json" 'd.artifacts[1].recipe.entries[1].name' package/data.txt
expect_jv "$T_DIR/v1.json" 'd.artifacts[1].recipe.entries[2].blob == d.files[2].blob' true
ok "the package artifact records its recipe: entries in archive order, with the files' blobs"

run "$BBIT" export
expect_code 0
expect_no "rebuilt"
[ "$(served_sha my-org.ui ui/button 0.0.1)" = "$(artifact_blob ui/button@0.0.1)" ] ||
  fail "the served 0.0.1 package differs from the local one"
ok "a first export uploads the artifacts: the server has none of their blobs yet"

echo "// v2" >>components/ui/button/index.js
run "$BBIT" tag -m "second" ui/button
expect_code 0
run "$BBIT" export
expect_code 0
expect_out "1 rebuilt by it from their recipes"
expect_out "uploaded 2 object(s)" # the version object and the changed file
blob=$(artifact_blob ui/button@0.0.2)
[ "$(served_sha my-org.ui ui/button 0.0.2)" = "$blob" ] || fail "the rebuilt package differs from the local one"
grep -q "not rebuilt" "$T_DIR/server-A.log" && fail "the server could not rebuild: $(cat "$T_DIR/server-A.log")"
ok "one changed file: the package is rebuilt by the server, byte-identical, and not uploaded"

# names only libarchive writes (over 100 bytes, not ASCII): bbit's own tar
# writer declines them, on the client and on the server alike, and both fall
# back to libarchive: the rebuilt package is still byte-identical
long_dir=components/ui/button/a-folder-with-a-long-name/and-another-one-below-it/so-that-the-path-is-long
mkdir -p "$long_dir"
echo "long" >"$long_dir/in-the-package-it-needs-more-than-100-bytes.txt"
echo "accent" >"components/ui/button/caf$(printf '\xc3\xa9').txt"
run "$BBIT" tag -m "long names" ui/button
expect_code 0
run "$BBIT" export
expect_code 0
echo "// v3" >>components/ui/button/index.js
run "$BBIT" tag -m "long names, again" ui/button
expect_code 0
"$BBIT" show ui/button@0.0.4 --json >"$T_DIR/v4.json"
expect_jv "$T_DIR/v4.json" '#d.artifacts[1].recipe.entries' 4
run "$BBIT" export
expect_code 0
expect_out "1 rebuilt by it from their recipes"
blob=$(artifact_blob ui/button@0.0.4)
[ "$(served_sha my-org.ui ui/button 0.0.4)" = "$blob" ] || fail "the rebuilt package differs from the local one"
grep -q "not rebuilt" "$T_DIR/server-A.log" && fail "the server could not rebuild: $(cat "$T_DIR/server-A.log")"
curl -sf -H "Authorization: Bearer $WRITE_TOKEN" "$A_URL/my-org.ui/ui/button/-/artifact/package.tgz?v=0.0.4" |
  tar -tzf - >"$T_DIR/names.txt" || fail "the served package does not list"
grep -qx "package/${long_dir#components/ui/button/}/in-the-package-it-needs-more-than-100-bytes.txt" "$T_DIR/names.txt" ||
  fail "the long name is not in the package: $(cat "$T_DIR/names.txt")"
ok "names over 100 bytes or not ASCII: libarchive writes the package on both sides, the rebuild is byte-identical"

# a recipe that does not describe the artifact: the server's rebuild hashes
# differently, prepare reports it missing, the client uploads it
mkdir -p .bbit/scripts/tasks
cat >.bbit/scripts/tasks/package.lua <<'LUA'
local package = base()
return {
  run = function(component, ctx)
    local add = ctx.add_artifact
    ctx.add_artifact = function(name, file, opts)
      for _, e in ipairs(opts.recipe.entries) do
        e.mode = "755" -- wrong: the files are 644
      end
      return add(name, file, opts)
    end
    return package.run(component, ctx)
  end,
}
LUA
echo "// v3" >>components/ui/button/index.js
run "$BBIT" tag -m "third" ui/button
expect_code 0
run "$BBIT" export
expect_code 0
expect_out "uploaded 3 object(s)"
expect_no "rebuilt by it"
grep -q "artifact package.tgz not rebuilt from its recipe (object store: hash mismatch" "$T_DIR/server-A.log" ||
  fail "the server log lacks the failed rebuild: $(cat "$T_DIR/server-A.log")"
[ "$(served_sha my-org.ui ui/button 0.0.3)" = "$(artifact_blob ui/button@0.0.3)" ] ||
  fail "the uploaded package differs from the local one"
ok "a recipe the server cannot reproduce: prepare asks for the artifact, the client uploads it"

cat >.bbit/scripts/tasks/package.lua <<'LUA'
return {
  run = function(component, ctx)
    local out = ctx.scratch_path("x.tgz")
    require("bbit.archive").create(out, { { name = "a", data = "a" } })
    ctx.add_artifact("x.tgz", out, { recipe = { format = "zip", entries = {} } })
  end,
}
LUA
echo "// v4" >>components/ui/button/index.js
run "$BBIT" tag -m "fourth" ui/button
expect_code 1
expect_err 'add_artifact("x.tgz"): bad recipe: format must be tar.gz, tar.zst or tar'
ok "a malformed recipe fails the tag and says what a recipe is"

finish
