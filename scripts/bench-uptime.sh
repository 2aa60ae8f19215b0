#!/usr/bin/env bash
# 30-day uptime of 1,000 checks from day rollups, against the same figure from raw
# results with one GROUP BY, on the same SQLite file in the same run. Arguments go to
# the binary (`--checks 1000 --days 30 --results-per-hour 2 --rounds 15`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p pharos-bench --bin uptime
exec target/release/uptime "$@"
