#!/usr/bin/env bash
# Containers benchmark: 200 labelled busybox containers on a private Podman (Docker
# Engine API); time from `podman run` to pharosd's Watch change, p50/p99, against a bare
# bollard event subscriber in the same run; then pharosd's idle CPU with the 200
# monitored, against a `podman events` subscriber. Arguments go to the binary
# (`--containers 200 --idle 30s`).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in podman runc busybox; do
    command -v "$tool" >/dev/null || {
        echo "bench-containers: $tool is missing; run scripts/install-test-deps.sh" >&2
        exit 1
    }
done
cargo build --release -q -p pharos-control-plane --bin pharosd
cargo build --release -q -p pharos-bench --bin containers
exec target/release/containers "$@"
