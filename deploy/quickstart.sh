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
    # Its log lines are noise when it works, and the reason when it does not (for one, the
    # postgres user unable to reach ./.stockpile when the checkout sits in a directory only root can enter).
    if ! created=$(.build/release/stockpile token create --name quickstart-admin --role admin 2>&1); then
        echo "$created" >&2
        echo "quickstart: could not create the token; the reason is above" >&2
        exit 1
    fi
    echo "$created" | tail -1
fi
port=${STOCKPILE_PORT:-8080}
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do [[ ${args[i]} == --port ]] && port=${args[i + 1]}; done
echo "starting: http://127.0.0.1:$port/  (API under /api/v1 with 'Authorization: Bearer <token>', health at /healthz)"
exec .build/release/stockpile serve "$@"
