#!/usr/bin/env python3
"""Fails when a crate depends on a crate above it, or on a library its layer keeps out.

The layers, lowest first. A crate may depend (normal and build dependencies) only on
workspace crates of a lower layer; dev-dependencies are free, since tests may start
anything. `docs/architecture.md` draws the same picture.
"""
import json
import subprocess
import sys

LAYERS = [
    # Plain types and the wire contract: nothing of Pharos below them.
    {"pharos-core", "pharos-proto", "pharos-migrations", "pharos-supervisor"},
    # The outside world's services, without the database; and the database, without
    # the outside world.
    {"pharos-probes", "pharos-store"},
    # The watch hub (committed journal entries, fanned out), and the collectors (what
    # pharosd learns and does on its own, written through the store's journal).
    {"pharos-hub", "pharos-collectors"},
    # The gRPC layer: the pharos.v1 services, auth, limits, telemetry, web, TLS.
    {"pharos-grpc"},
    # pharosd: configuration, wiring, supervision and shutdown.
    {"pharos-control-plane"},
    # The CLI, and the end-to-end test support that runs the binaries.
    {"pharos-cli", "pharos-e2e"},
    # Benchmarks, which reuse the test support.
    {"pharos-bench"},
]

# Libraries a crate must not name, so its layer stays what it says.
KEPT_OUT = {
    "pharos-core": {"tonic", "prost", "sea-orm", "sqlx", "bollard", "axum", "hyper", "tokio"},
    "pharos-probes": {"sea-orm", "sea-orm-migration", "bollard", "axum", "tonic-web"},
    "pharos-hub": {"tonic", "prost", "pharos-proto", "sea-orm", "bollard", "axum", "hyper"},
    # Collectors know neither the wire contract nor a server framework, and reach
    # pharosd's database only through the store.
    "pharos-collectors": {
        "tonic", "prost", "pharos-proto", "axum", "tower", "sea-orm", "sea-orm-migration",
    },
    # The store speaks SQL only: no gRPC, HTTP or container engine.
    "pharos-store": {"tonic", "prost", "pharos-proto", "bollard", "axum", "hyper"},
    # The gRPC layer and pharosd reach the database only through the store.
    "pharos-grpc": {"sea-orm", "sea-orm-migration"},
    "pharos-control-plane": {"sea-orm", "sea-orm-migration"},
    # The CLI talks to pharosd over the API only.
    "pharos-cli": {"pharos-control-plane", "pharos-core", "pharos-probes", "sea-orm"},
}


def main() -> int:
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    rank = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    members = {p["name"]: p for p in metadata["packages"]}
    problems = []
    for name in sorted(members):
        if name not in rank:
            problems.append(f"{name}: not in any layer of scripts/check-layers.py; place it")
            continue
        for dep in members[name]["dependencies"]:
            if dep["kind"] == "dev":
                continue
            target = dep["name"]
            if target in KEPT_OUT.get(name, ()):
                problems.append(f"{name} depends on {target}, which its layer keeps out")
            if target in members and rank.get(target, len(LAYERS)) >= rank[name]:
                problems.append(
                    f"{name} (layer {rank[name]}) depends on {target} "
                    f"(layer {rank.get(target, '?')}): a crate may depend only on lower layers"
                )
    for problem in problems:
        print(f"layers: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"layers: {len(members)} crates, every dependency points down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
