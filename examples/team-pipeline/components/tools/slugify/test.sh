#!/bin/sh
# The component's tests, run by the pipeline's "sh test.sh" task in this folder.
grep -q "toLowerCase" index.js || { echo "slugify must lowercase" >&2; exit 1; }
echo "slugify: 1 test passed"
