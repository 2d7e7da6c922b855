#!/usr/bin/env bash
# Idle resident memory of `switchboard --target all` after start-up and 10 s of idling, on
# its own database and bus namespace, both removed at the end (also on Ctrl-C; what a killed
# run leaves is swept by the next bench). Usage: scripts/idle-rss.sh [binary] [idle seconds]
# Needs bench-namespace (package switchboard-load-tests) beside the binary: `make bench` builds
# it in release, `make bench-smoke` in debug.
set -euo pipefail
binary=${1:-./target/release/switchboard}
idle_seconds=${2:-10}
helper="$(dirname "$binary")/bench-namespace"
if [ ! -x "$helper" ]; then
    echo "idle-rss: $helper not found: build it with the binary's profile (cargo build -p switchboard-load-tests)" >&2
    exit 1
fi
# Sweeps what killed bench runs left, then names this run's namespace and database after this
# shell's pid (stale once it is gone).
names=$("$helper" open --owner-pid $$)
read -r namespace database <<<"$names"
# Ingress and delivery refuse to start without an internal token of at least 32 characters.
internal_token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
log=$(mktemp)
pid=
sleeper=
cleanup() {
    local status=$?
    [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null || true
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    "$helper" close --namespace "$namespace" --database "$database" || status=1
    rm -f "$log"
    exit "$status"
}
trap cleanup EXIT
# The binary gets SIGTERM should this script be killed outright (SIGKILL runs no trap), so it
# does not outlive the run and redeclare the swept namespace.
launcher=()
if command -v setpriv >/dev/null 2>&1; then launcher=(setpriv --pdeathsig TERM --); fi
trap 'exit 130' INT
trap 'exit 143' TERM
env -i PATH="$PATH" \
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/$database" \
    AMQP_URL="amqp://guest:guest@127.0.0.1:5672/%2f" \
    SWITCHBOARD__BUS__NAMESPACE="$namespace" \
    SWITCHBOARD_INTERNAL_TOKEN="$internal_token" \
    SWITCHBOARD_HTTP_ADDR=127.0.0.1:0 SWITCHBOARD_GRPC_ADDR=127.0.0.1:0 SWITCHBOARD_ADMIN_ADDR=127.0.0.1:0 \
    SWITCHBOARD_SMTP_ADDR=127.0.0.1:0 \
    SWITCHBOARD_LOG_FORMAT=json SWITCHBOARD__SHUTDOWN__DRAIN_DELAY=0s \
    ${launcher[@]+"${launcher[@]}"} "$binary" --target all >"$log" 2>&1 &
pid=$!
for _ in $(seq 300); do
    grep -q '"message":"ready"' "$log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
done
grep -q '"message":"ready"' "$log" || { echo "switchboard did not become ready:"; cat "$log"; exit 1; }
# In the background, so that a signal's trap runs at once rather than after the sleep.
sleep "$idle_seconds" &
sleeper=$!
wait "$sleeper"
sleeper=
kill -0 "$pid" 2>/dev/null || { echo "switchboard exited while idle:"; cat "$log"; exit 1; }
rss_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
awk -v kib="$rss_kib" -v threads="$threads" -v seconds="$idle_seconds" 'BEGIN { printf "idle RSS of switchboard --target all after %d s: %d KiB (%.1f MiB), %d threads\n", seconds, kib, kib / 1024, threads }'
