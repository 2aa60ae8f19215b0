#!/usr/bin/env bash
# Watch-path benchmark: many concurrent Watch streams on one pharosd against a plain tonic
# broadcast server (the peer), both run here in the same run. Reports delivery latency
# (commit to client receipt) p50/p99/max, memory per idle stream and server CPU time,
# with the pharos/peer ratios. Targets (pharosd, 10,000 streams, 1,000 changes/s):
# p99 under 100 ms, under 20 KiB per idle stream.
#
# Usage: scripts/bench-watch.sh [pharos-bench watch options]
#   --streams 10000 --connections 100 --projects 1000 --rate 1000 --seconds 20
#   --firehose-streams 100 --servers pharos,peer --out bench-results/watch.json
# Results: a table on stdout, JSON in bench-results/watch.json.
set -euo pipefail
cd "$(dirname "$0")/.."

# One socket per connection on each side, plus SQLite and the runtime: more than the
# usual 1024 descriptors once --connections grows.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

cargo build --release -p pharos-bench
exec target/release/pharos-bench watch "$@"
