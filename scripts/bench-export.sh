#!/usr/bin/env bash
# Export of 1,000,000 check results: `pharos export checks --format csv` against a real
# pharosd on SQLite, reporting the peak RSS (VmHWM) of the CLI and of pharosd, against
# the peer `sqlite3 -csv` writing the same rows from the same database, in the same run.
# Arguments go to the binary (`--rows 1000000`). PROFILE=debug skips the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v sqlite3 >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sqlite3 >/dev/null
profile=${PROFILE:-release}
if [ "$profile" = release ]; then
    cargo build --release -q -p pharos-control-plane -p pharos-cli -p pharos-bench --bin pharosd --bin pharos --bin export
else
    cargo build -q -p pharos-control-plane -p pharos-cli -p pharos-bench --bin pharosd --bin pharos --bin export
fi
exec "target/$profile/export" --pharosd "target/$profile/pharosd" --pharos "target/$profile/pharos" "$@"
