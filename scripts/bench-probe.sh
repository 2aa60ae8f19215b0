#!/usr/bin/env bash
# Probing benchmark: pharosd's health engine against a farm of HTTP targets on
# 127.0.0.0/8 at 1,000 and 10,000 checks, and Debian's prometheus-blackbox-exporter
# against the same farm at the same rate, in the same run. Arguments go to the binary
# (`--checks 1000,10000 --interval 5s --warmup 10s --measure 30s`).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v prometheus-blackbox-exporter >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-blackbox-exporter >/dev/null
ulimit -n 65536 2>/dev/null || true
cargo build --release -q -p pharos-bench --bin probe --bin probe_farm
exec target/release/probe "$@"
