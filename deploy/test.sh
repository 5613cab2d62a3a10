#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, runs the Swift test suites (which start
# their own throwaway PostgreSQL cluster), then a smoke test of the real binary the way the
# quick start runs it (embedded cluster, demo district, curl), the web pages in headless Chromium,
# then schemathesis against it, then the fault harness (deploy/faults.sh), then failover on the
# loopback HA rig (deploy/ha/failover.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh

echo "== build"
swift build --build-tests

echo "== swift test"
log=$(mktemp)
# The tests' throwaway cluster lives here; stop it even if the test process dies.
work=$(mktemp -d /tmp/stockpile-tests.XXXXXX)
chmod 755 "$work"
export STOCKPILE_TEST_DATA="$work/cluster"
stop_cluster() {
    if [ -f "$STOCKPILE_TEST_DATA/pgdata/postmaster.pid" ]; then
        pg_ctl=$(ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -1)
        if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$pg_ctl" -D "$STOCKPILE_TEST_DATA/pgdata" -m immediate stop >/dev/null 2>&1 || true
        else "$pg_ctl" -D "$STOCKPILE_TEST_DATA/pgdata" -m immediate stop >/dev/null 2>&1 || true; fi
    fi
    rm -rf "$work"
}
trap stop_cluster EXIT
set +e
swift test --skip-build --disable-xctest 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
    echo "swift test failed ($status)"
    exit "$status"
fi

echo "== smoke test of the binary"
deploy/smoke.sh .build/debug/stockpile

echo "== the web pages in headless Chromium (screenshots in artifacts/screenshots/)"
deploy/browser.sh .build/debug/stockpile

echo "== the entry page offline: service worker, outbox, lost answer (headless Chromium over DevTools)"
deploy/offline.sh .build/debug/stockpile

echo "== the page's scan parser over the shared vectors (node)"
deploy/scan-js.sh

echo "== HTTPS: serve with a test certificate, Secure cookies, Chromium trusting it"
deploy/tls.sh .build/debug/stockpile

echo "== the planner against Google OR-Tools' min-cost flow on a generated city (deploy/oracle.sh)"
deploy/oracle.sh .build/debug/stockpile

echo "== schemathesis against the live API"
deploy/fuzz.sh .build/debug/stockpile 40

echo "== the fault harness: 60 s of writers while PostgreSQL and the service are made to fail"
timeout 600 deploy/faults.sh .build/debug/stockpile 60 8

echo "== failover: 100 s of writers on three Patroni nodes while the primary is killed -9, twice"
timeout 900 deploy/ha/failover.sh .build/debug/stockpile 100 8

# One plain closing line for CI, counted from Swift Testing's results.
passed=$(grep -cE '^✔ Test .* passed' "$log" || true)
failed=$(grep -cE '^✘ Test .* failed' "$log" || true)
# (+9: the smoke test, the browser test, the offline entry test, the page's scan vectors, the HTTPS test, the OR-Tools oracle, the fuzz run, the fault harness and the failover run)
echo "tests: $((passed + 9)) passed, $failed failed"
