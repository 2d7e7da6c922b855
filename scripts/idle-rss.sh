#!/usr/bin/env bash
# Idle resident memory of `switchboard --target all` after start-up and 10 s of idling, on
# its own database and bus namespace. Usage: scripts/idle-rss.sh [binary]
set -euo pipefail
binary=${1:-./target/release/switchboard}
token=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
database="sbbench_$token"
log=$(mktemp)
DATABASE_URL="postgres://postgres@127.0.0.1:5432/$database" \
SWITCHBOARD__BUS__NAMESPACE="bench-$token." \
SWITCHBOARD_HTTP_ADDR=127.0.0.1:0 SWITCHBOARD_GRPC_ADDR=127.0.0.1:0 SWITCHBOARD_ADMIN_ADDR=127.0.0.1:0 \
SWITCHBOARD_LOG_FORMAT=json SWITCHBOARD__SHUTDOWN__DRAIN_DELAY=0s \
    "$binary" --target all >"$log" 2>&1 &
pid=$!
cleanup() {
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
    rm -f "$log"
}
trap cleanup EXIT
for _ in $(seq 100); do grep -q '"message":"ready"' "$log" && break; sleep 0.2; done
grep -q '"message":"ready"' "$log" || { echo "switchboard did not become ready:"; cat "$log"; exit 1; }
sleep 10
rss_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
awk -v kib="$rss_kib" -v threads="$threads" 'BEGIN { printf "idle RSS of switchboard --target all: %d KiB (%.1f MiB), %d threads\n", kib, kib / 1024, threads }'
