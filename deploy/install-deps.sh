#!/usr/bin/env bash
# Installs what Stockpile needs from Debian's packages, where it is missing:
# the PostgreSQL server (initdb, pg_ctl, postgres, pgbench), libpq's headers, pkg-config, Chromium and a Chinese font,
# Patroni and etcd for the HA rig.
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql postgresql-contrib)
[ -f /usr/include/postgresql/libpq-fe.h ] || missing+=(libpq-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# the browser test (deploy/browser.sh) drives headless Chromium
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# the page's scan parser runs the shared vectors under node (deploy/scan-js.sh)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
# and its screenshots need a Chinese font
fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-noto-cjk)
# the HA rig (deploy/ha/): Patroni and etcd
command -v patroni >/dev/null 2>&1 || missing+=(patroni)
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)

if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null 2>&1 || { echo "swift is not on PATH: install the Swift toolchain (6.2 or later) first" >&2; exit 1; }
