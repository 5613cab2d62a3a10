# The fault harness's verdict, shared by deploy/faults.sh and deploy/ha/failover.sh (sourced, not run).
# Expects: $data/result.json (deploy/faults.py's), psql_db (psql on the database, -Atq), run_check
# (`stockpile check` on it), and the arrays times (when each fault was applied) and names.
# Prints the faults, recovery per fault and the counts; exits non-zero if anything was lost or doubled.
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
run_check >"$data/check.txt" 2>&1 && conserved=yes || conserved=no

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
