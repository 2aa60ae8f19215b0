#!/usr/bin/env bash
# The one command that checks everything: `bash scripts/test.sh` (CI runs it via .ci/run).
# Stops at the first failing step and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo "==> $*" >&2; }

color=auto
if [[ "${CI:-}" == true ]]; then
  color=never # CI logs are plain text
  export CARGO_TERM_COLOR=never
fi

step "install test dependencies"
bash scripts/install-test-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check --color "$color"

step "buf lint"
tools/node_modules/.bin/buf lint

# The dashboard: generated client, type check, bundle, and its unit tests. The
# end-to-end tests below find the bundle in web-client/dist.
step "web-client: npm ci, build, vitest"
(cd web-client && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent && npm test --silent)

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

# End-to-end tests run the real binaries from target/debug.
step "cargo build --bins"
cargo build --workspace --bins

# The dashboard end to end: the bundle built above, served by target/debug/pharosd on a
# free loopback port, in Debian's Chromium (playwright-core) against real HTTP targets.
# Screenshots go to target/e2e-screenshots/.
step "web-client: end-to-end tests (Chromium)"
(cd web-client && npm run e2e --silent)

if cargo nextest --version >/dev/null 2>&1; then
  profile=default
  [[ "${CI:-}" == true ]] && profile=ci
  step "cargo nextest run (profile $profile)"
  cargo nextest run --workspace --no-fail-fast --profile "$profile"
else
  step "cargo test (cargo-nextest not installed)"
  cargo test --workspace --no-fail-fast
fi
