#!/usr/bin/env bash
# HTTPS (issue 16, part 3): `serve --tls-cert --tls-key` with a throwaway certificate for
# 127.0.0.1. Checks that the API answers over TLS and plain HTTP does not, that the sign-in cookies
# are Secure and HSTS is sent, that headless Chromium trusting the certificate (by its public key)
# loads the sign-in page, and that a bad key file stops serve with the file's name.
#   deploy/tls.sh [binary]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/port.sh"
cd "$(dirname "$0")/.."
bin=${1:-.build/debug/stockpile}
shots=${SCREENSHOTS:-artifacts/screenshots}; mkdir -p "$shots"
data=$(mktemp -d /tmp/stockpile-tls.XXXXXX); chmod 755 "$data"
port=$(free_port); base="https://127.0.0.1:$port"; log="$data/serve.log"; jar="$data/cookies.txt"
chrome=$(command -v chromium || command -v chromium-browser)
cleanup() { kill "${pid:-0}" 2>/dev/null || true; wait "${pid:-0}" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
fail() { echo "tls: $*"; tail -20 "$log"; exit 1; }

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
    -keyout "$data/key.pem" -out "$data/cert.pem" 2>/dev/null
https() { curl -sS --cacert "$data/cert.pem" "$@"; }

# A key that is not there: serve refuses before it starts anything, and says which file.
if "$bin" serve --data-dir "$data/db" --port "$port" --tls-cert "$data/cert.pem" --tls-key "$data/missing.pem" >"$data/bad.log" 2>&1; then
    fail "serve started with a missing key"
fi
grep -q "missing.pem" "$data/bad.log" || { cat "$data/bad.log"; fail "the error does not name the key file"; }

STOCKPILE_NIGHTLY_AT=off "$bin" serve --data-dir "$data/db" --port "$port" --tls-cert "$data/cert.pem" --tls-key "$data/key.pem" >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do https -f "$base/readyz" >/dev/null 2>&1 && break; kill -0 "$pid" 2>/dev/null || fail "serve exited"; sleep 0.5; done
https -f "$base/readyz" >/dev/null || fail "not ready over HTTPS"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 000 ] || fail "plain HTTP was answered on the TLS port"

# Sign in over HTTPS: every cookie Secure (and still HttpOnly, SameSite=Strict), HSTS on the answers.
https -c "$jar" -b "$jar" -D "$data/login.headers" -o /dev/null "$base/login"
grep -qi '^set-cookie: sp_csrf=.*; Secure' "$data/login.headers" || { cat "$data/login.headers"; fail "the CSRF cookie is not Secure"; }
grep -qi '^strict-transport-security: max-age=31536000' "$data/login.headers" || fail "no HSTS"
admin=$("$bin" token create --data-dir "$data/db" --name tls-admin --role admin 2>/dev/null | tail -1)
csrf=$(awk '$6 == "sp_csrf" { print $7 }' "$jar" | tail -1)
https -c "$jar" -b "$jar" -D "$data/signin.headers" -o /dev/null --data-urlencode "csrf=$csrf" --data-urlencode "token=$admin" "$base/login"
grep -qi '^set-cookie: sp_session=.*HttpOnly; SameSite=Strict; Secure' "$data/signin.headers" || { cat "$data/signin.headers"; fail "the session cookie is not Secure"; }
[ "$(https -b "$jar" -o /dev/null -w '%{http_code}' "$base/")" = 200 ] || fail "the dashboard did not open with the Secure session cookie"
[ "$(https -o /dev/null -w '%{http_code}' -H "authorization: Bearer $admin" "$base/api/v1/items")" = 200 ] || fail "the API did not answer over HTTPS"

# Chromium trusts this one certificate by its public key (as it would a county's own CA) and loads the sign-in page.
spki=$(openssl x509 -in "$data/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
flags=(--headless --no-sandbox --disable-gpu --user-data-dir="$data/chrome" --ignore-certificate-errors-spki-list="$spki")
dom=$("$chrome" "${flags[@]}" --dump-dom "$base/login" 2>/dev/null || true)
echo "$dom" | grep -q 'name="token"' || fail "Chromium did not load the sign-in page over HTTPS"
"$chrome" "${flags[@]}" --window-size=390,844 --screenshot="$shots/tls-login-390.png" "$base/login" >/dev/null 2>&1 || true
# Without trusting it, Chromium refuses the page (so the check above is about the certificate).
untrusted=$("$chrome" --headless --no-sandbox --disable-gpu --user-data-dir="$data/chrome2" --dump-dom "$base/login" 2>/dev/null || true)
echo "$untrusted" | grep -q 'name="token"' && fail "Chromium loaded the page without trusting the certificate"
echo "tls: ok (HTTPS only on the TLS port, Secure cookies and HSTS, signed in, Chromium trusting the certificate loaded the page, a missing key refused by name)"
