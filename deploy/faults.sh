#!/usr/bin/env bash
# The fault harness (issue 15): writers with replays against a live `stockpile serve` on its
# embedded PostgreSQL while it is made to fail — PostgreSQL restarted with -m immediate, its
# backends terminated, its postmaster killed with -9, stopped (serve restarts it), and the service
# itself killed with -9 and started again — then checks, and prints: every acknowledged movement in
# the ledger exactly once and nothing else, every lot's balance equal to what the acknowledged
# answers imply, `stockpile check` conserved, 5xx answers other than 503 (must be 0), and the time
# from each fault to the next acknowledged movement.
#   deploy/faults.sh [binary] [seconds] [writers]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/debug/stockpile}; seconds=${2:-60}; writers=${3:-8}
data=$(mktemp -d /tmp/stockpile-faults.XXXXXX); chmod 755 "$data"
port=$((20000 + RANDOM % 20000)); base="http://127.0.0.1:$port"; log="$data/serve.log"
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

faults=("postgres -m immediate restart" "backends terminated" "postgres killed -9" "service killed -9, started again"
        "postgres stopped (fast)")
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
        "service killed -9, started again") kill -9 "$pid"; wait "$pid" 2>/dev/null || true; start_serve ;;
        "postgres stopped (fast)") as_pg "$pg_ctl" -D "$data/db/pgdata" -m fast stop >/dev/null 2>&1 || true ;;
    esac
    times+=("$(date +%s.%N)")   # when the fault has been applied (a restart with -w: once it is back)
done
wait "$load" || fail "the writers failed"
wait_ready || fail "serve did not come back after the last fault"

# What the ledger holds for the harness's lots, against what was acknowledged.
python3 - "$data/result.json" "$data" <<'PY'
import json, sys
result = json.load(open(sys.argv[1])); data = sys.argv[2]
with open(data + "/acknowledged.tsv", "w") as f:
    for id, (lot, quantity) in result["acknowledged"].items(): f.write(f"{id}\t{lot}\t{quantity}\n")
PY
psql_db <<SQL > "$data/ledger.txt"
SELECT set_config('stockpile.scope', 'all', false) \gset
CREATE TEMP TABLE ack (id uuid PRIMARY KEY, lot text, quantity bigint);
\copy ack FROM '$data/acknowledged.tsv'
SELECT 'acknowledged', count(*) FROM ack;
SELECT 'acknowledged_in_ledger', count(*) FROM ack JOIN movements m ON m.id = ack.id AND m.quantity = ack.quantity;
SELECT 'in_ledger_not_acknowledged', count(*) FROM movements m JOIN lots l ON l.id = m.lot_id
    WHERE l.lot_number LIKE 'FAULT-%' AND NOT EXISTS (SELECT 1 FROM ack WHERE ack.id = m.id);
SELECT 'lots_off', count(*) FROM (SELECT lot, sum(quantity) AS expected FROM ack GROUP BY lot) e
    JOIN lots l ON l.lot_number = e.lot JOIN balances b ON b.lot_id = l.id WHERE b.quantity <> e.expected;
SQL
"$bin" check --data-dir "$data/db" >"$data/check.txt" 2>&1 && conserved=yes || conserved=no

python3 - "$data/result.json" "$data/ledger.txt" "$conserved" "${times[*]:-}" "$(IFS='|'; echo "${names[*]:-}")" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
ledger = dict(line.split("|") for line in open(sys.argv[2]).read().split() if "|" in line)
conserved = sys.argv[3] == "yes"
times = [float(t) for t in sys.argv[4].split()] if sys.argv[4] else []
names = sys.argv[5].split("|") if sys.argv[5] else []
oks = sorted(result["ok_times"])   # [sent, answered]: recovery counts only requests sent after the fault
print(f"faults: {len(times)} faults, {sum(result['statuses'].values())} answers {dict(sorted(result['statuses'].items()))}")
for t, name in zip(times, names):
    after = min((done for sent, done in oks if sent >= t), default=None)
    print(f"  {name:34s} first movement sent after it acknowledged {after - t:5.2f} s later" if after
          else f"  {name:34s} no movement sent after it was acknowledged")
acknowledged = int(ledger["acknowledged"]); found = int(ledger["acknowledged_in_ledger"])
extra = int(ledger["in_ledger_not_acknowledged"]); lots_off = int(ledger["lots_off"])
bad5xx = len(result["answers_5xx"]); replays = len(result["replays_applied"]); unanswered = len(result["unanswered"])
print(f"faults: acknowledged {acknowledged}, in the ledger exactly once {found}, lost {acknowledged - found}, "
      f"unacknowledged in the ledger {extra}, lots whose balance is off {lots_off}, replays applied again {replays}, "
      f"5xx other than 503 {bad5xx}, never answered {unanswered}, conservation {'ok' if conserved else 'BROKEN'}")
for status, body in result["answers_5xx"][:5]: print(f"  {status}: {body}")
# A movement never answered may or may not be in the ledger: it is not counted either way, but fails the run.
sys.exit(0 if found == acknowledged and extra <= unanswered and lots_off == 0 and replays == 0 and bad5xx == 0 and unanswered == 0
         and conserved and times else 1)
PY
