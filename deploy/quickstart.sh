#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and serves Stockpile on its embedded PostgreSQL
# (data under ./.stockpile) with the demo district loaded. Stop it with Ctrl-C.
#   deploy/quickstart.sh [serve options, e.g. --port 8080 --host 0.0.0.0]
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
echo "building (release; the first build takes several minutes)…"
swift build -c release --product stockpile
echo "starting: http://127.0.0.1:${STOCKPILE_PORT:-8080}/  (API under /api/v1, health at /healthz)"
exec .build/release/stockpile serve "$@"
