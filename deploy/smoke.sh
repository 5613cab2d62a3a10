#!/usr/bin/env bash
# Starts the given stockpile binary the way the quick start does (embedded PostgreSQL in a fresh
# data folder, demo district), records a receipt and an issue with curl, reads the balance back,
# kills PostgreSQL with -9 and checks serve restarts it, and stops it with SIGTERM, checking the
# embedded cluster stopped too.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/port.sh"
bin=${1:-.build/debug/stockpile}
data=$(mktemp -d /tmp/stockpile-smoke.XXXXXX)
chmod 755 "$data"
port=$(free_port)
base="http://127.0.0.1:$port"
log="$data/serve.log"

"$bin" serve --data-dir "$data/db" --port "$port" >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

for _ in $(seq 1 120); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "smoke: serve exited"; exit 1; }
    sleep 1
done
curl -fsS "$base/readyz" >/dev/null || { cat "$log"; echo "smoke: not ready"; exit 1; }

fail() { echo "smoke: $*"; cat "$log" | tail -20; exit 1; }

# Without a token the API refuses; with one made by the CLI (on the running cluster) it answers.
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/api/v1/items")
[ "$code" = 401 ] || fail "no token gave $code, expected 401"
token=$("$bin" token create --data-dir "$data/db" --name smoke --role admin 2>/dev/null | tail -1)
case "$token" in sp_*) ;; *) fail "token create printed no secret";; esac
receipt=$(cat /proc/sys/kernel/random/uuid)
issue=$(cat /proc/sys/kernel/random/uuid)
post() { curl -sS -o /dev/stderr -w '%{http_code}' -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$2" "$base$1" 2>/dev/null; }

code=$(post /api/v1/movements "{\"id\":\"$receipt\",\"facility\":\"QS-RM\",\"item\":\"N95\",\"lot\":\"SMOKE-1\",\"expiry\":\"2029-01-31\",\"kind\":\"receipt\",\"quantity\":500,\"reason\":\"烟雾测试\"}")
[ "$code" = 201 ] || fail "receipt gave $code"
code=$(post /api/v1/movements "{\"id\":\"$receipt\",\"facility\":\"QS-RM\",\"item\":\"N95\",\"lot\":\"SMOKE-1\",\"expiry\":\"2029-01-31\",\"kind\":\"receipt\",\"quantity\":500,\"reason\":\"烟雾测试\"}")
[ "$code" = 200 ] || fail "replayed receipt gave $code"
code=$(post /api/v1/movements "{\"id\":\"$issue\",\"facility\":\"QS-RM\",\"item\":\"N95\",\"lot\":\"SMOKE-1\",\"kind\":\"issue\",\"quantity\":120}")
[ "$code" = 201 ] || fail "issue gave $code"
balance=$(curl -fsS -H "authorization: Bearer $token" "$base/api/v1/facilities/QS-RM/stock" | python3 -c 'import json,sys; print(sum(l["quantity"] for l in json.load(sys.stdin)["lots"] if l["lot"]=="SMOKE-1"))')
[ "$balance" = 380 ] || fail "balance is $balance, expected 380"

# Another command with the same data folder uses the running cluster and leaves it running.
"$bin" check --data-dir "$data/db" >"$data/check.log" 2>&1 || { cat "$data/check.log"; fail "check failed"; }
grep -q "^conserved: .*: ok$" "$data/check.log" || fail "check did not prove conservation"
grep -q "already running" "$data/check.log" || fail "check did not use the running cluster"
curl -fsS "$base/readyz" >/dev/null || fail "serve lost its database after another command ran"

# PostgreSQL killed outright: serve notices within a second or two and starts it again; meanwhile
# pages and the API answer 503 with Retry-After, and then the same movement can be sent again.
kill -9 "$(head -1 "$data/db/pgdata/postmaster.pid")"
back=""
for i in $(seq 1 30); do
    sleep 0.5
    if curl -fsS "$base/readyz" >/dev/null 2>&1; then back=$i; break; fi
done
[ -n "$back" ] || fail "the embedded PostgreSQL was not restarted within 15 s"
# /readyz can turn green a moment before the watchdog logs and counts the restart it just made.
said=""
for i in $(seq 1 20); do
    if grep -q "restarted embedded PostgreSQL" "$log"; then said=yes; break; fi
    sleep 0.25
done
[ -n "$said" ] || fail "serve did not say it restarted PostgreSQL"
again=$(cat /proc/sys/kernel/random/uuid)
code=$(post /api/v1/movements "{\"id\":\"$again\",\"facility\":\"QS-RM\",\"item\":\"N95\",\"lot\":\"SMOKE-1\",\"kind\":\"issue\",\"quantity\":1}")
[ "$code" = 201 ] || fail "an issue after the restart gave $code"
curl -fsS "$base/metrics" | grep -q '^stockpile_embedded_postgres_restarts_total 1' || fail "the restart is not counted in /metrics"

kill -TERM "$pid"
wait "$pid" || fail "serve did not exit cleanly"
grep -q "stopped embedded PostgreSQL" "$log" || fail "embedded PostgreSQL was not stopped"
echo "smoke: ok (401 without a token, token from the CLI, receipt 500, replay ignored, issue 120, balance 380, check on the shared cluster, PostgreSQL killed -9 and restarted by serve, clean shutdown)"
