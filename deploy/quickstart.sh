#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and serves Stockpile on its embedded PostgreSQL
# (data under ./.stockpile) with the demo district loaded. Stop it with Ctrl-C.
#   deploy/quickstart.sh [serve options, e.g. --port 8080 --host 0.0.0.0]
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
echo "building (release; the first build takes several minutes)…"
swift build -c release --product stockpile
# An administrator's token for trying the API, made once (the secret is shown only now).
if ! .build/release/stockpile token list 2>/dev/null | grep -q '^quickstart-admin'; then
    echo "creating an admin token for the API (keep it; it is not shown again):"
    .build/release/stockpile token create --name quickstart-admin --role admin 2>/dev/null | tail -1
fi
echo "starting: http://127.0.0.1:${STOCKPILE_PORT:-8080}/  (API under /api/v1 with 'Authorization: Bearer <token>', health at /healthz)"
exec .build/release/stockpile serve "$@"
