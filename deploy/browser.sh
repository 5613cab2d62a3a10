#!/usr/bin/env bash
# The pages in a real browser: starts the given stockpile binary with the demo district (as
# smoke.sh does), signs in through the login form with curl, then has headless Chromium load the
# dashboard, a facility page, the orders page and the entry form at 1366×768 and 390×844 (screenshots in
# artifacts/screenshots/), checks their content in the DOM Chromium built, submits one receipt
# form twice with the same id, and checks the balance moved exactly once.
# Chromium cannot be handed a cookie on the command line, so it goes through a tiny local proxy
# (python3, loopback only) that adds the session cookie curl got from the login form.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/port.sh"
bin=${1:-.build/debug/stockpile}
shots=${SCREENSHOTS:-artifacts/screenshots}
mkdir -p "$shots"
data=$(mktemp -d /tmp/stockpile-browser.XXXXXX)
chmod 755 "$data"
port=$(free_port)
proxy_port=$((port + 1))
base="http://127.0.0.1:$port"
log="$data/serve.log"
jar="$data/cookies.txt"
chrome=$(command -v chromium || command -v chromium-browser)

# The nightly time at midnight: the report due at start is then always today's (at the default
# 02:00, a run between midnight and 02:00 Shanghai time finds yesterday's due, rightly).
STOCKPILE_NIGHTLY_AT=00:00 "$bin" serve --data-dir "$data/db" --port "$port" >"$log" 2>&1 &
pid=$!
proxy_pid=""
cleanup() {
    [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"
}
trap cleanup EXIT
fail() { echo "browser: $*"; tail -20 "$log"; exit 1; }

for _ in $(seq 1 120); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || fail "serve exited"
    sleep 1
done
curl -fsS "$base/readyz" >/dev/null || fail "not ready"

facility=QS-RM
admin=$("$bin" token create --data-dir "$data/db" --name browser-admin --role admin 2>/dev/null | tail -1)
clerk=$("$bin" token create --data-dir "$data/db" --name browser-clerk --role warehouse --facility "$facility" 2>/dev/null | tail -1)
case "$admin$clerk" in sp_*sp_*) ;; *) fail "token create printed no secret";; esac

# Sign in as a person would: the login page sets the CSRF cookie, the form posts it back.
cookie() { awk -v n="$1" '$6 == n { print $7 }' "$jar" | tail -1; }
signin() {
    rm -f "$jar"
    curl -fsS -c "$jar" -b "$jar" -o /dev/null "$base/login"
    local code
    code=$(curl -sS -c "$jar" -b "$jar" -o /dev/null -w '%{http_code}' --data-urlencode "csrf=$(cookie sp_csrf)" --data-urlencode "token=$1" "$base/login")
    [ "$code" = 303 ] || fail "login gave $code"
    [ -n "$(cookie sp_session)" ] || fail "login set no session cookie"
}
signin "$admin"

python3 - "$proxy_port" "$jar" <<'PY' &
import http.server, sys, urllib.request, urllib.error
port, jar = int(sys.argv[1]), sys.argv[2]
def cookie():
    pairs = [l.rstrip("\n").split("\t") for l in open(jar) if l.count("\t") >= 6]
    return "; ".join(f"{p[5]}={p[6]}" for p in pairs)
class Proxy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        # Only the server under test, on loopback.
        if not self.path.startswith("http://127.0.0.1:"):
            self.send_error(403); return
        request = urllib.request.Request(self.path, headers={"Cookie": cookie(), "Accept-Language": "zh-CN"})
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k): return None
        try:
            response = urllib.request.build_opener(NoRedirect).open(request, timeout=20)
        except urllib.error.HTTPError as error:
            response = error
        body = response.read()
        self.send_response(response.status if hasattr(response, "status") else response.code)
        for k, v in response.headers.items():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"): self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), Proxy).serve_forever()
PY
proxy_pid=$!
sleep 1

browse() { # browse MODE SIZE URL [OUT]
    local mode=$1 size=$2 url=$3 out=${4:-}
    local args=(--headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars --user-data-dir="$data/chrome"
                --proxy-server="http://127.0.0.1:$proxy_port" --proxy-bypass-list="<-loopback>" --window-size="$size"
                --virtual-time-budget=3000)
    if [ "$mode" = shot ]; then timeout 60 "$chrome" "${args[@]}" --screenshot="$out" "$url" >/dev/null 2>&1 || true
    else timeout 60 "$chrome" "${args[@]}" --dump-dom "$url" 2>/dev/null || true; fi
}
check() { # check PAGE-NAME DOM TEXT…
    local name=$1 dom=$2; shift 2
    for text in "$@"; do grep -qF -- "$text" <<<"$dom" || fail "$name: no '$text' in the DOM Chromium built"; done
}

dom=$(browse dom 1366,768 "$base/")
check dashboard "$dom" '<html lang="zh-CN">' '指挥中心' 'class="heat"' "href=\"/facilities/$facility\"" 'id="shortfalls"' '区域合计'
ms=$(curl -fsS -b "$jar" -o /dev/null -D - "$base/" | tr -d '\r' | awk -F'dur=' 'tolower($1) ~ /^server-timing/ { print $2 }')
awk -v ms="${ms:-99999}" 'BEGIN { exit !(ms < 1000) }' || fail "dashboard took ${ms} ms of server time (limit 1000)"
dom=$(browse dom 1366,768 "$base/facilities/$facility")
check facility "$dom" '储备构成' 'class="l-physical"' '批次与有效期' '在途调拨单' '最近登记'
dom=$(browse dom 1366,768 "$base/?lang=en")
check "dashboard (English)" "$dom" '<html lang="en">' 'Command centre'

# A what-if (issue 17): demand ×2 moves the bands, with the comparison; item names across the top.
dom=$(browse dom 1366,768 "$base/?lang=zh&surge=2")
check "dashboard what-if" "$dom" 'id="whatif"' '需求 ×2' 'class="cat"' '防护用品'
browse shot 1366,768 "$base/?lang=zh&surge=2" "$shots/dashboard-whatif-1366x768.png"

# The donation register (issue 17): one donation recorded through the API, waiting for inspection.
code=$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $admin" -H 'content-type: application/json' "$base/api/v1/donations" \
    -d "{\"id\":\"$(python3 -c 'import uuid; print(uuid.uuid4())')\",\"donor\":\"某某慈善基金会\",\"certificate\":\"JZ-2026-118\",\"facility\":\"$facility\",\"lines\":[{\"item\":\"AGTEST\",\"lot\":\"DON-1\",\"expiry\":\"2028-06-30\",\"quantity\":200}]}")
[ "$code" = 201 ] || fail "recording a donation gave $code"
dom=$(browse dom 1366,768 "$base/donations?lang=zh")
check donations "$dom" 'id="donations"' '某某慈善基金会' '待检' 'DON-1'
for size in 1366,768 390,844; do browse shot "$size" "$base/donations?lang=zh" "$shots/donations-${size/,/x}.png"; done

# A printable 调拨单 (issue 17): the first of tonight's orders.
order=$(curl -fsS -H "authorization: Bearer $admin" "$base/api/v1/reallocations?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["orders"][0]["id"])') \
    || fail "no reallocation order to print"
dom=$(browse dom 1366,768 "$base/orders/$order/print?lang=zh")
check "printable order" "$dom" 'id="waybill"' '应急物资调拨单' '承运人（签字）'
for size in 1366,768 390,844; do browse shot "$size" "$base/orders/$order/print?lang=zh" "$shots/order-print-${size/,/x}.png"; done

# A shipment's printable 调拨单 (issue 17): one truck, a line per item and lot.
shipment=$(curl -fsS -H "authorization: Bearer $admin" "$base/api/v1/shipments?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["shipments"][0]["id"])') \
    || fail "no shipment to print"
dom=$(browse dom 1366,768 "$base/shipments/$shipment/print?lang=zh")
check "printable shipment" "$dom" 'id="waybill"' "No. S$shipment" '承运人/车牌' '承运人（签字）'
for size in 1366,768 390,844; do browse shot "$size" "$base/shipments/$shipment/print?lang=zh" "$shots/shipment-print-${size/,/x}.png"; done

dom=$(browse dom 1366,768 "$base/orders?lang=zh")
check orders "$dom" '<html lang="zh-CN">' 'id="orders"' '调拨单' 'id="shipment-list"' "data-shipment=\"$shipment\""

for size in 1366,768 390,844; do
    browse shot "$size" "$base/orders" "$shots/orders-${size/,/x}.png"
    browse shot "$size" "$base/?lang=zh" "$shots/dashboard-${size/,/x}.png"
    browse shot "$size" "$base/facilities/$facility" "$shots/facility-${size/,/x}.png"
done

# The nightly report page (serve runs today's missed report at start, or at midnight if the date
# turned since; wait for it), read from the header and each table's first rows.
today=$(TZ=Asia/Shanghai date +%F)
for _ in $(seq 1 60); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $admin" "$base/api/v1/reports/nightly/$today")" = 200 ] && break
    sleep 1
done
dom=$(browse dom 1366,768 "$base/reports?lang=zh")
check report "$dom" '夜间补货报告' 'id="s-orders"' "/reports/$today/print" "/reports/$today/csv/procurement"
browse shot 1366,768 "$base/reports" "$shots/report-1366x768.png"

# Cover over time (issue 17): the demo's last 30 days rebuilt from its history, tonight's recorded by
# the nightly run; a chart per item, one item with its table, and the dashboard's small charts.
dom=$(browse dom 1366,768 "$base/trends?lang=zh")
check trends "$dom" '保障趋势' '<svg class="trend' 'class="physical"' 'id="trends-csv"'
dom=$(browse dom 1366,768 "$base/trends?lang=zh&item=N95")
check "trends of one item" "$dom" 'data-item="N95"' '按台账重建' '夜间记录'
for size in 1366,768 390,844; do
    browse shot "$size" "$base/trends?lang=zh" "$shots/trends-${size/,/x}.png"
    browse shot "$size" "$base/trends?lang=zh&item=N95" "$shots/trends-n95-${size/,/x}.png"
done
dom=$(browse dom 1366,768 "$base/?lang=zh")
check "dashboard trends" "$dom" 'id="dashboard-trends"' '<svg class="trend'

# Signing out ends the session on the server: the cookie's value, copied before, opens nothing.
old=$(cookie sp_session)
curl -sS -b "$jar" -c "$jar" -o /dev/null --data-urlencode "csrf=$(cookie sp_csrf)" "$base/logout"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Cookie: sp_session=$old" "$base/")
[ "$code" = 303 ] || fail "a session cookie copied before sign-out still opened the dashboard ($code)"

# The clerk's entry form, in the browser and then submitted twice.
signin "$clerk"
dom=$(browse dom 390,844 "$base/entry")
check entry "$dom" '<label for="item">' '<label for="quantity">' 'name="id"' 'name="csrf"'
for size in 1366,768 390,844; do browse shot "$size" "$base/entry" "$shots/entry-${size/,/x}.png"; done
id=$(grep -o 'name="id" value="[^"]*"' <<<"$dom" | head -1 | sed 's/.*value="//; s/"$//')
[ -n "$id" ] || fail "the entry form has no id"

balance() {
    curl -fsS -H "authorization: Bearer $admin" "$base/api/v1/facilities/$facility/stock" |
        python3 -c 'import json,sys; print(sum(l["quantity"] for l in json.load(sys.stdin)["lots"] if l["lot"]=="BROWSER-1"))'
}
before=$(balance)
submit() {
    curl -sS -b "$jar" -o "$data/entry-$1.html" -w '%{http_code}' --data-urlencode "csrf=$(cookie sp_csrf)" --data-urlencode "id=$id" \
        --data-urlencode kind=receipt --data-urlencode "facility=$facility" --data-urlencode item=N95 --data-urlencode lot=BROWSER-1 \
        --data-urlencode expiry=2029-03-31 --data-urlencode quantity=60 --data-urlencode reason_code= --data-urlencode reason=浏览器测试 "$base/entry"
}
code=$(submit 1); [ "$code" = 201 ] || fail "the receipt form gave $code"
code=$(submit 2); [ "$code" = 200 ] || fail "the same form again gave $code"
grep -q '未重复计数' "$data/entry-2.html" || fail "the second submission did not say it was a replay"
after=$(balance)
[ "$after" = $((before + 60)) ] || fail "balance went from $before to $after, expected +60 exactly once"

for f in "$shots"/{dashboard,facility,entry,orders}-{1366x768,390x844}.png "$shots/report-1366x768.png"; do [ -s "$f" ] || fail "no screenshot $f"; done
echo "browser: ok (dashboard ${ms} ms server time, facility page, report page, sign-out ends the session, entry form; receipt submitted twice, balance $before → $after; screenshots in $shots)"
