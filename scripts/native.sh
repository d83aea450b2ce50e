#!/usr/bin/env bash
# Installs spec/native (stores built on better-sqlite3, which must be compiled for each Node major:
# its prebuilt downloads are out of reach here) into .cache/native-node<major>, compiled against the
# headers of the Node first on PATH. The ecosystem spec runs those rows where that folder exists.
# About 75 s on 2 cores, once per Node major (kept in .cache).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
major="$(node -p 'process.versions.node.split(".")[0]')"
dir="$root/.cache/native-node$major"
if [ -f "$dir/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ] && cmp -s "$root/spec/native/package.json" "$dir/package.json"; then
  echo "native: $dir is ready" >&2
  exit 0
fi
rm -rf "$dir"
mkdir -p "$dir"
cp "$root/spec/native/package.json" "$dir/package.json"
nodedir="$(dirname "$(dirname "$(command -v node)")")"
( cd "$dir" && npm install --no-audit --no-fund --no-package-lock --nodedir="$nodedir" >&2 )
echo "native: built $dir for $(node --version)" >&2
