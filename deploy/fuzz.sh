#!/usr/bin/env bash
# Fuzzes the live API against its own OpenAPI document with schemathesis (from PyPI): once with an
# admin token and once with a warehouse token, a bounded number of generated requests each. Fails
# on any 5xx, or any response that does not match the document. The coverage phase sends each
# documented minimum and maximum and the values just outside them, and --mode all adds data that
# breaks the schema (negative), so every range in openapi.yaml is probed at its edges. DELETE (token revocation) is left
# out: the fuzzer would revoke its own token; the access matrix test covers it.
#   deploy/fuzz.sh [path to the stockpile binary] [examples per operation]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/port.sh"
bin=${1:-.build/debug/stockpile}
examples=${2:-40}
command -v schemathesis >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check schemathesis >/dev/null 2>&1 \
    || { echo "fuzz: could not install schemathesis"; exit 1; }

data=$(mktemp -d /tmp/stockpile-fuzz.XXXXXX)
chmod 755 "$data"
port=$(free_port)
base="http://127.0.0.1:$port"
STOCKPILE_RATE_LIMIT=100000 "$bin" serve --data-dir "$data/db" --port "$port" >"$data/serve.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 1 120); do curl -fsS "$base/readyz" >/dev/null 2>&1 && break; sleep 1; done
curl -fsS "$base/readyz" >/dev/null || { tail -20 "$data/serve.log"; echo "fuzz: service not ready"; exit 1; }

admin=$("$bin" token create --data-dir "$data/db" --name fuzz-admin --role admin 2>/dev/null | tail -1)
clerk=$("$bin" token create --data-dir "$data/db" --name fuzz-clerk --role warehouse --facility QS-RM 2>/dev/null | tail -1)

total=0
for who in admin clerk; do
    token=${!who}
    echo "== schemathesis as $who ($examples examples per operation)"
    out="$data/$who.txt"
    set +e
    schemathesis run "$base/openapi.yaml" --url "$base" -H "Authorization: Bearer $token" \
        --checks not_a_server_error,response_schema_conformance,content_type_conformance \
        --phases examples,coverage,fuzzing --mode all \
        --max-examples "$examples" --generation-deterministic --generation-with-security-parameters false --exclude-method DELETE 2>&1 | tee "$out" | tail -25
    status=${PIPESTATUS[0]}
    set -e
    [ "$status" -eq 0 ] || { echo "fuzz: schemathesis found problems as $who"; tail -40 "$data/serve.log"; exit 1; }
    sent=$(grep -oE '[0-9]+ (generated|test cases)' "$out" | head -1 | grep -oE '^[0-9]+' || echo 0)
    total=$((total + sent))
done
kill -TERM "$pid"; wait "$pid" || true
echo "fuzz: ok, no 5xx and no schema violations ($total generated cases)"
