#!/usr/bin/env bash
# Metrics benchmark: CPU seconds per 100,000 scraped samples for pharosd and for Debian's
# prometheus scraping the same prometheus-node-exporter targets in the same run (and the
# ratio), then PushMetrics samples/s and samples per pharosd CPU-second.
# Targets: scrape CPU per sample no more than Prometheus's; 500,000 pushed samples/s on
# 2 cores.
#
# Usage: scripts/bench-metrics.sh [--targets 4] [--interval 1s] [--seconds 30]
#   [--push-seconds 10] [--push-streams 4] [--batch 2000] [--series 2000]
#   [--out bench-results/metrics.json]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p pharos-control-plane -p pharos-bench --bin pharosd --bin metrics-bench
exec target/release/metrics-bench "$@"
