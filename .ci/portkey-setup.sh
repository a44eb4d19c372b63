#!/usr/bin/env bash
# Install the Portkey gateway (pinned) for tests/test_export_portkey.py into <repo>/.portkey (git-ignored).
# The tests look in $ROUTECALC_PORTKEY_DIR (default <repo>/.portkey) and skip if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "portkey-setup: npm and node not found: skipping the Portkey gateway; its export tests will be skipped" >&2
  exit 0
fi
dir="${ROUTECALC_PORTKEY_DIR:-.portkey}"
mkdir -p "$dir"
cd "$dir"
# not `npm init -y`: npm refuses the directory name ".portkey" as a package name
[ -f package.json ] || printf '{"name": "routecalc-portkey", "private": true}\n' > package.json
npm install --no-audit --no-fund @portkey-ai/gateway@1.15.2
node -e 'console.log("portkey gateway", require("./node_modules/@portkey-ai/gateway/package.json").version)'
