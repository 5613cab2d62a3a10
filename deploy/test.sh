#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, runs the Swift test suites (which start
# their own throwaway PostgreSQL cluster), then a smoke test of the real binary the way the
# quick start runs it (embedded cluster, demo district, curl).
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh

echo "== build"
swift build --build-tests

echo "== swift test"
log=$(mktemp)
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

# One plain closing line for CI, counted from Swift Testing's results.
passed=$(grep -cE '^✔ Test .* passed' "$log" || true)
failed=$(grep -cE '^✘ Test .* failed' "$log" || true)
echo "tests: $((passed + 1)) passed, $failed failed"
