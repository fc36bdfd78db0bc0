#!/bin/sh
# Removes from a production node_modules what nothing loads at run time: TypeScript sources and declarations,
# source maps, markdown, and the test/benchmark/example/coverage folders of top-level packages. Measured on
# this lock file: 88 MB -> 27 MB (docs/docker.md). LICENSE files stay. Folders go only at the root of a
# top-level package (node_modules/<pkg>/test, node_modules/@scope/<pkg>/test): deeper ones of the same name
# can be code (e.g. yaml/dist/doc).
set -eu
dir="${1:?usage: prune-node-modules.sh <node_modules directory>}"
[ -d "$dir" ] || { echo "prune-node-modules: $dir is not a directory" >&2; exit 1; }

find "$dir" -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' -o -name '*.md' \
  -o -name '*.tsbuildinfo' \) -delete

for pkg in "$dir"/*/ "$dir"/@*/*/; do
  [ -d "$pkg" ] || continue
  for sub in test tests __tests__ coverage benchmark benchmarks bench example examples .github; do
    rm -rf "$pkg$sub"
  done
done
