#!/usr/bin/env bash
# Installs spec/keyv6 (Keyv 6 and its adapters, kept apart: they want keyv 6 as a peer, the project
# is built on keyv 5). No install scripts: @keyv/sqlite 6 then uses Node's built-in node:sqlite
# instead of compiling better-sqlite3. The Keyv 6 rows of the suite run when this is installed and
# Node is >= 22.19 (Keyv 6's own floor).
set -euo pipefail
cd "$(dirname "$0")/../spec/keyv6"
npm ci --ignore-scripts --no-audit --no-fund >&2
