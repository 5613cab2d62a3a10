#!/usr/bin/env bash
# The planner against an outside solver (issue 18): a generated city of 800 facilities × 12 items,
# every item planned by Stockpile and again by Google OR-Tools' min-cost flow over every donor lot ×
# receiver pair (Sources/StockpileBench/ortools_oracle.py). Weighted coverage must be equal exactly,
# quantity × km within 0.01%. The same as `stockpile bench plan --oracle ortools` at city scale.
set -euo pipefail
binary=${1:-.build/debug/stockpile}
python3 -c "import ortools, numpy" >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check ortools numpy >/dev/null 2>&1 \
    || { echo "oracle: could not install ortools"; exit 1; }
python3 Sources/StockpileBench/ortools_oracle.py --selftest 2>/dev/null | grep -q "selftest ok" || { echo "oracle: its own self-test failed"; exit 1; }
items=12
data=$(mktemp -d /tmp/stockpile-oracle.XXXXXX)
chmod 755 "$data"
trap 'rm -rf "$data"' EXIT
"$binary" generate --data-dir "$data/city" --facilities 800 --items "$items" --days 30 --seed 7 --as-of 2026-11-22 > "$data/generate.log" 2>&1 \
    || { tail -20 "$data/generate.log"; exit 1; }
"$binary" bench plan --data-dir "$data/city" --items "$items" --oracle ortools --reference-up-to 0 2>&1 | tee "$data/plan.log" | grep -v "info stockpile"
grep -q "OR-Tools: $items of $items items equal" "$data/plan.log" || { echo "oracle: the planner and OR-Tools disagree"; exit 1; }
echo "oracle: $items of $items items equal to OR-Tools"
