#!/usr/bin/env bash
# Unary gRPC throughput of pharosd (CatalogService/GetOverview) against a plain tonic
# hello-world peer (helloworld.Greeter/SayHello, target/release/hello-peer), both
# driven by h2load with identical settings. Target: pharosd >= 70% of the peer.
#
# Usage: scripts/bench-h2load.sh
#   BENCH_REQUESTS=200000 BENCH_CLIENTS=16 BENCH_STREAMS=32 BENCH_THREADS=1
#   BENCH_WARMUP=20000    requests sent to each server before measuring
#   BENCH_ROUNDS=5        measured runs per server, interleaved; the median counts
#   BENCH_PIN=1           0 disables CPU pinning (see below)
#   BENCH_ENFORCE=0       1 exits 3 when pharosd is below the target
#   PHAROS_BENCH_SELFTEST=1  a second hello-peer stands in for pharosd: checks this
#                            harness without pharosd (the ratio should be ~100%)
#
# Pinning: h2load gets CPU 0 and the servers the other CPUs (only CPU 1 on a 2-core
# machine), so the load generator never steals cycles from the server it measures.
# tokio sizes its default runtime from the CPU affinity, so both servers get the same
# worker count. Only one server is under load at a time; the other idles.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${BENCH_REQUESTS:-200000} C=${BENCH_CLIENTS:-16} M=${BENCH_STREAMS:-32} T=${BENCH_THREADS:-1}
WARMUP=${BENCH_WARMUP:-20000} ROUNDS=${BENCH_ROUNDS:-5} PIN=${BENCH_PIN:-1}
TARGET_PCT=70
SELFTEST=${PHAROS_BENCH_SELFTEST:-0}

die() { echo "bench-h2load: $*" >&2; exit 1; }

if ! command -v h2load >/dev/null; then
    apt-get update -qq && apt-get install -y -qq nghttp2-client >/dev/null
fi

if [ "$SELFTEST" = 1 ]; then
    cargo build --release -p pharos-bench --bins
else
    [ -f deploy/demo-catalog.yaml ] || die "deploy/demo-catalog.yaml is missing"
    cargo build --release -p pharos-control-plane -p pharos-bench --bins
fi

TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# A port nobody answers on (a refused connection means free).
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

SERVER_CPUS='' LOAD_CPUS=''
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    LOAD_CPUS="taskset -c 0" SERVER_CPUS="taskset -c 1"
    [ "$(nproc)" -eq 2 ] || SERVER_CPUS="taskset -c 1-$(($(nproc) - 1))"
fi

# One gRPC frame: uncompressed flag 0x00, 4-byte big-endian length, the protobuf bytes.
# $1 = output file, $2 = the protobuf message as printf escapes.
grpc_frame() {
    # shellcheck disable=SC2059 # $2 is meant to be a format: it holds the escapes
    printf "$2" >"$1.pb"
    local n
    n=$(stat -c %s "$1.pb")
    # shellcheck disable=SC2059 # the inner printf builds the escapes the outer one writes
    printf "$(printf '\\x00\\x%02x\\x%02x\\x%02x\\x%02x' \
        $((n >> 24 & 255)) $((n >> 16 & 255)) $((n >> 8 & 255)) $((n & 255)))" >"$1"
    cat "$1.pb" >>"$1"
}
grpc_frame "$TMP/overview.bin" ''                 # GetOverviewRequest {}: 5 zero bytes
grpc_frame "$TMP/hello.bin" '\x0a\x06pharos'      # HelloRequest{name: "pharos"}: field 1, len 6

# start NAME CMD...: runs a server in the background on the server CPUs.
start() {
    local name=$1; shift
    $SERVER_CPUS "$@" >"$TMP/$name.log" 2>&1 &
    PIDS+=($!)
}
# wait_ready NAME PID CHECK...: up to 30 s for CHECK to succeed while PID lives.
wait_ready() {
    local name=$1 pid=$2; shift 2
    for _ in $(seq 300); do
        "$@" >/dev/null 2>&1 && return
        kill -0 "$pid" 2>/dev/null || { cat "$TMP/$name.log" >&2; die "$name exited early"; }
        sleep 0.1
    done
    cat "$TMP/$name.log" >&2
    die "$name not ready after 30 s"
}

P1=$(free_port) P2=$(free_port)
[ "$P1" != "$P2" ] || P2=$(free_port)
if [ "$SELFTEST" = 1 ]; then
    A_NAME="hello-peer(as pharosd)" A_PATH=/helloworld.Greeter/SayHello A_BODY=$TMP/hello.bin
    start a target/release/hello-peer --listen "127.0.0.1:$P1"
    wait_ready a "${PIDS[-1]}" grep -q 'listening on' "$TMP/a.log"
else
    A_NAME=pharosd A_PATH=/pharos.v1.CatalogService/GetOverview A_BODY=$TMP/overview.bin
    mkdir "$TMP/data"
    start a target/release/pharosd --listen "127.0.0.1:$P1" --data-dir "$TMP/data" \
        --catalog deploy/demo-catalog.yaml
    wait_ready a "${PIDS[-1]}" curl -fsS "http://127.0.0.1:$P1/healthz"
fi
B_NAME=hello-peer B_PATH=/helloworld.Greeter/SayHello B_BODY=$TMP/hello.bin
start b target/release/hello-peer --listen "127.0.0.1:$P2"
wait_ready b "${PIDS[-1]}" grep -q 'listening on' "$TMP/b.log"
A_URL="http://127.0.0.1:$P1$A_PATH" B_URL="http://127.0.0.1:$P2$B_PATH"

# h2load counts any HTTP 200 as success, even a gRPC error, so one real call per
# target must end with grpc-status 0 (sent in the trailers, which curl -D writes).
spot_check() {
    local name=$1 url=$2 body=$3 hdr="$TMP/spot.hdr"
    curl -sS --http2-prior-knowledge -H 'content-type: application/grpc' -H 'te: trailers' \
        --data-binary "@$body" -D "$hdr" -o "$TMP/spot.out" "$url" ||
        die "$name: curl failed for $url"
    if ! tr -d '\r' <"$hdr" | grep -qx 'grpc-status: 0'; then
        cat "$hdr" >&2
        die "$name: $url did not return grpc-status 0"
    fi
    echo "spot check $name: grpc-status 0, $(stat -c %s "$TMP/spot.out") response bytes"
}
spot_check "$A_NAME" "$A_URL" "$A_BODY"
spot_check "$B_NAME" "$B_URL" "$B_BODY"

# run_h2load REQUESTS URL BODY: prints req/s, failing on any non-2xx or error.
run_h2load() {
    local out="$TMP/h2load.out"
    $LOAD_CPUS h2load -n "$1" -c "$C" -m "$M" -t "$T" \
        -H 'content-type: application/grpc' -H 'te: trailers' -d "$3" "$2" >"$out" 2>&1 ||
        { cat "$out" >&2; die "h2load failed against $2"; }
    # "requests: 200000 total, 200000 started, 200000 done, 200000 succeeded, 0 failed, ..."
    grep -q "requests: $1 total, $1 started, $1 done, $1 succeeded" "$out" ||
        { cat "$out" >&2; die "not every request succeeded against $2"; }
    # "finished in 2.31s, 86580.09 req/s, 5.12MB/s"
    sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$out"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Other load on the machine skews the figures: show it.
echo "h2load -n $N -c $C -m $M -t $T, $ROUNDS rounds, warm-up $WARMUP; pinning: ${LOAD_CPUS:-none} (h2load) / ${SERVER_CPUS:-none} (servers); load average $(cut -d" " -f1 /proc/loadavg)"
run_h2load "$WARMUP" "$A_URL" "$A_BODY" >/dev/null
run_h2load "$WARMUP" "$B_URL" "$B_BODY" >/dev/null
# Interleave the targets so drift on a shared machine hits both alike.
A_RUNS=() B_RUNS=()
for r in $(seq "$ROUNDS"); do
    a=$(run_h2load "$N" "$A_URL" "$A_BODY") || exit 1
    b=$(run_h2load "$N" "$B_URL" "$B_BODY") || exit 1
    A_RUNS+=("$a") B_RUNS+=("$b")
    echo "round $r: $A_NAME $a req/s, $B_NAME $b req/s"
done
A_RPS=$(printf '%s\n' "${A_RUNS[@]}" | median)
B_RPS=$(printf '%s\n' "${B_RUNS[@]}" | median)
PCT=$(awk -v a="$A_RPS" -v b="$B_RPS" 'BEGIN { printf "%.1f", 100 * a / b }')
VERDICT=$(awk -v p="$PCT" -v t="$TARGET_PCT" 'BEGIN { print (p >= t ? "ok" : "BELOW TARGET") }')

echo
printf '%-24s %12s\n' target "req/s" "$A_NAME" "$A_RPS" "$B_NAME" "$B_RPS"
printf '%-24s %11s%%  (target: at least %d%%, %s)\n' "ratio" "$PCT" "$TARGET_PCT" "$VERDICT"

if [ "${BENCH_ENFORCE:-0}" = 1 ] && [ "$VERDICT" != ok ]; then exit 3; fi
