#!/usr/bin/env bash
# The fault harness (issue 15): writers with replays against a live `stockpile serve` on its
# embedded PostgreSQL while it is made to fail — PostgreSQL restarted with -m immediate, its
# backends terminated, frozen for 5 s (SIGSTOP), its postmaster killed with -9, stopped (serve restarts it), and the service
# itself killed with -9 and started again — then checks, and prints: every acknowledged movement in
# the ledger exactly once and nothing else, every lot's balance equal to what the acknowledged
# answers imply, `stockpile check` conserved, 5xx answers other than 503 (must be 0), and the time
# from each fault to the next acknowledged movement.
#   deploy/faults.sh [binary] [seconds] [writers]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/port.sh"
cd "$(dirname "$0")/.."
bin=${1:-.build/debug/stockpile}; seconds=${2:-60}; writers=${3:-8}
data=$(mktemp -d /tmp/stockpile-faults.XXXXXX); chmod 755 "$data"
port=$(free_port); base="http://127.0.0.1:$port"; log="$data/serve.log"
pg_ctl=$(ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -1)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_db() { psql -h "$data/db/run" -U stockpile -d stockpile -v ON_ERROR_STOP=1 -Atq "$@"; }
start_serve() { STOCKPILE_RATE_LIMIT=100000 STOCKPILE_NIGHTLY_AT=off "$bin" serve --data-dir "$data/db" --port "$port" >>"$log" 2>&1 & pid=$!; }
wait_ready() { for _ in $(seq 1 240); do curl -fsS "$base/readyz" >/dev/null 2>&1 && return 0; sleep 0.25; done; return 1; }
cleanup() {
    kill "${load:-0}" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    as_pg "$pg_ctl" -D "$data/db/pgdata" -m immediate stop >/dev/null 2>&1 || true
    [ -n "${KEEP:-}" ] || rm -rf "$data"
}
trap cleanup EXIT
fail() { echo "faults: $*"; tail -20 "$log"; exit 1; }

start_serve
wait_ready || fail "serve did not start"
token=$("$bin" token create --data-dir "$data/db" --name faults --role admin 2>/dev/null | tail -1)
python3 deploy/faults.py "$base" "$token" "$seconds" "$writers" "$data/result.json" &
load=$!

faults=("postgres -m immediate restart" "backends terminated" "postgres frozen 5 s (SIGSTOP)" "postgres killed -9"
        "service killed -9, started again" "postgres stopped (fast)")
times=(); names=()
i=0; started=$SECONDS; gap=$(( seconds / 7 > 4 ? seconds / 7 : 4 ))
while kill -0 "$load" 2>/dev/null && (( SECONDS - started < seconds - 2 * gap )); do
    sleep "$gap"
    name=${faults[$((i % ${#faults[@]}))]}; i=$((i + 1))
    names+=("$name")
    case "$name" in
        "postgres -m immediate restart") as_pg "$pg_ctl" -D "$data/db/pgdata" -m immediate -w restart -l "$data/db/postgresql.log" >/dev/null 2>&1 || true ;;
        "backends terminated") psql_db -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" >/dev/null 2>&1 || true ;;
        "postgres killed -9") kill -9 "$(head -1 "$data/db/pgdata/postmaster.pid" 2>/dev/null)" 2>/dev/null || true ;;
        # Down without dying: the postmaster and every backend stopped, so connections hang rather
        # than break, and the supervisor (which restarts a dead cluster) has nothing to restart.
        "postgres frozen 5 s (SIGSTOP)")
            pm=$(head -1 "$data/db/pgdata/postmaster.pid" 2>/dev/null || true)
            if [ -n "$pm" ]; then frozen="$pm $(pgrep -P "$pm" | tr '\n' ' ')"; kill -STOP $frozen 2>/dev/null || true; sleep 5; kill -CONT $frozen 2>/dev/null || true; fi ;;
        "service killed -9, started again") kill -9 "$pid"; wait "$pid" 2>/dev/null || true; start_serve ;;
        "postgres stopped (fast)") as_pg "$pg_ctl" -D "$data/db/pgdata" -m fast stop >/dev/null 2>&1 || true ;;
    esac
    times+=("$(date +%s.%N)")   # when the fault has been applied (a restart with -w: once it is back)
done
wait "$load" || fail "the writers failed"
wait_ready || fail "serve did not come back after the last fault"

run_check() { "$bin" check --data-dir "$data/db"; }
source deploy/faults-verify.sh
