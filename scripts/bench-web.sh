#!/usr/bin/env bash
# Dashboard budgets: total JS gzipped (< 150 KiB), first live data on screen after
# navigation on loopback (< 500 ms), and frame times of the system page with 1,000
# deployments while 100 checks flip per second, in Debian's Chromium against a real
# pharosd. Each browser figure runs its peer in the same run and prints the ratio: a
# static HTML copy of the same rendered page (load), and that copy with a plain script
# flipping the same number of tiles per second (frames). See web-client/e2e/bench.mjs.
#
# Usage: scripts/bench-web.sh [--deployments 1000] [--rate 100] [--seconds 10] [--loads 7]
#   PHAROS_BENCH_PROFILE=debug uses target/debug instead of building release binaries.
# Results: a table on stdout, JSON in bench-results/web.json.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
profile=${PHAROS_BENCH_PROFILE:-release}
if [[ "$profile" == release ]]; then
  cargo build --release -p pharos-control-plane --bin pharosd -p pharos-cli --bin pharos
else
  cargo build -p pharos-control-plane --bin pharosd -p pharos-cli --bin pharos
fi
(cd web-client && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
PHAROS_BIN_DIR="$PWD/target/$profile" exec node web-client/e2e/bench.mjs "$@"
