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

# While the tests run, something answers on 127.0.0.1:7600, pharosd's default address,
# as the pharosd of `bash scripts/run.sh` would: no test may depend on what listens
# there. A decoy HTTP server says 200 to every GET (so a check aimed at 7600 by mistake
# turns healthy and changes the journal under the test). If 7600 is taken already,
# whatever holds it plays that part.
decoy_pid=""
stop_decoy() { [[ -n "$decoy_pid" ]] && kill "$decoy_pid" 2>/dev/null || true; }
trap stop_decoy EXIT
python3 - <<'PY' &
import http.server, socketserver, sys
class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("content-length", "2"); self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
try:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 7600), Ok)
except OSError as err:
    print(f"==> 127.0.0.1:7600 is in use already ({err.strerror}); tests run beside it", file=sys.stderr)
    sys.exit(0)
print("==> a decoy HTTP server answers on 127.0.0.1:7600 during the tests", file=sys.stderr)
server.serve_forever()
PY
decoy_pid=$!

step "install test dependencies"
bash scripts/install-test-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check --color "$color"

step "crate layers point one way"
python3 scripts/check-layers.py

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
