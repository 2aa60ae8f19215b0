#!/usr/bin/env bash
# Builds the dashboard and pharosd, then runs pharosd on its embedded defaults:
# 127.0.0.1:7600, SQLite in the data directory, the demo catalog, the dashboard at /.
# Extra arguments go to pharosd (see `pharosd --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> building the dashboard (web-client)" >&2
(cd web-client && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
echo "==> building and starting pharosd" >&2
exec cargo run --release -p pharos-control-plane --bin pharosd -- "$@"
