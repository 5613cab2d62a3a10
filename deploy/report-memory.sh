#!/usr/bin/env bash
# Measures what serving a stored nightly report costs the service in memory (issue 14): starts
# `stockpile serve` on a data folder that already holds a report for DATE (e.g. a generated city:
# `stockpile generate --data-dir D --facilities 10000 --items 300 --as-of 2026-11-22` then
# `stockpile nightly --data-dir D --date 2026-11-22`), then reads the report every way a person can
# — the report page, the JSON, each section's CSV, the printable page — and prints the service's
# resident memory after each (VmRSS) and its peak so far (VmHWM, from /proc/PID/status), with the
# bytes each answer had and the seconds it took.
#   deploy/report-memory.sh BINARY DATA_DIR DATE
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/port.sh"
bin=${1:?binary}; data=${2:?data dir}; date=${3:?date YYYY-MM-DD}
port=$(free_port); base="http://127.0.0.1:$port"
log=$(mktemp /tmp/report-memory.XXXXXX.log); jar=$(mktemp /tmp/report-memory.XXXXXX.jar)
STOCKPILE_NIGHTLY_AT=off STOCKPILE_RATE_LIMIT=100000 "$bin" serve --data-dir "$data" --port "$port" --no-demo >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$jar"' EXIT
for _ in $(seq 1 600); do curl -fsS "$base/readyz" >/dev/null 2>&1 && break; sleep 1; done
token=$("$bin" token create --data-dir "$data" --name "memory-$RANDOM" --role admin 2>/dev/null | tail -1)
mem() { awk '/^VmRSS|^VmHWM/ { printf "%s %d MB  ", $1, $2 / 1024 }' "/proc/$pid/status"; }
echo "serving: $(mem)"
get() { # get NAME URL [curl options…]
    local name=$1 url=$2; shift 2
    local out
    out=$(curl -sS -o /dev/null -w '%{http_code} %{size_download} %{time_total}' "$@" "$url")
    printf '%-28s status %s, %s bytes, %s s;  %s\n' "$name" "${out%% *}" "$(cut -d' ' -f2 <<<"$out")" "$(cut -d' ' -f3 <<<"$out")" "$(mem)"
}
curl -fsS -c "$jar" -b "$jar" -o /dev/null "$base/login"
csrf=$(awk '$6 == "sp_csrf" { print $7 }' "$jar" | tail -1)
curl -sS -c "$jar" -b "$jar" -o /dev/null --data-urlencode "csrf=$csrf" --data-urlencode "token=$token" "$base/login"
get "page /reports" "$base/reports?date=$date" -b "$jar"
get "JSON, whole report" "$base/api/v1/reports/nightly/$date" -H "authorization: Bearer $token"
for section in orders call_offs activations procurement contract_gaps expiring stale; do
    get "CSV $section" "$base/api/v1/reports/nightly/$date?format=csv&section=$section" -H "authorization: Bearer $token"
done
get "printable page" "$base/reports/$date/print" -b "$jar"
get "page /reports again" "$base/reports?date=$date" -b "$jar"
