#!/usr/bin/env bash
# The entry page offline, in headless Chromium (deploy/offline.py): offline reload from the service
# worker, five entries queued, sent when back online (four recorded, one refused and listed), and a
# lost answer resent as a replay. Screenshots at phone size in artifacts/screenshots/.
set -euo pipefail
bin=${1:-.build/debug/stockpile}
cd "$(dirname "$0")/.."
. deploy/port.sh
data=$(mktemp -d)
chmod 755 "$data"
port=$(free_port)
base="http://127.0.0.1:$port"
log="$data/serve.log"
shots=artifacts/screenshots
mkdir -p "$shots"
STOCKPILE_NIGHTLY_AT=off "$bin" serve --data-dir "$data/db" --port "$port" >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
fail() { echo "offline: $*"; tail -20 "$log"; exit 1; }
for _ in $(seq 1 120); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || fail "serve exited"
    sleep 1
done
facility=QS-RM
admin=$("$bin" token create --data-dir "$data/db" --name offline-admin --role admin 2>/dev/null | tail -1)
clerk=$("$bin" token create --data-dir "$data/db" --name offline-clerk --role warehouse --facility "$facility" 2>/dev/null | tail -1)
case "$admin$clerk" in sp_*sp_*) ;; *) fail "token create printed no secret";; esac
# An item with a GTIN (the demo district's are made up), for the scan.
read -r item gtin < <(curl -fsS -H "authorization: Bearer $admin" "$base/api/v1/items" \
    | python3 -c 'import json,sys; i=[x for x in json.load(sys.stdin)["items"] if x.get("gtin")][0]; print(i["code"], i["gtin"])')
python3 deploy/offline.py "$base" "$clerk" "$facility" "$item" "$admin" "$shots" "$gtin" || fail "the offline run failed"
