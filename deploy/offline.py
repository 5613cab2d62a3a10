#!/usr/bin/env python3
"""The entry page offline, in headless Chromium over the DevTools protocol (issue 16).

Drives Chromium through --remote-debugging-pipe (no websocket library needed). Offline is
emulated on the page's target *and* the service worker's: emulation on the page alone lets the
worker's own fetches through (research/offline-entry.md 2.6). The browser reaches the service
through a small proxy here, which can drop the answer of one /entry/sync after the server has
answered it: the lost response the outbox must survive.

usage: offline.py BASE_URL CLERK_SECRET FACILITY ITEM ADMIN_SECRET SHOTS_DIR ITEM_GTIN

Offline, it also scans: a DataMatrix as a keyboard-wedge scanner types it, its GS as Ctrl+]
(a real key event), read by the page's own parser: item, lot and expiry filled in; an unknown
GTIN says so and fills in nothing.
"""
import base64, http.client, http.server, json, os, socketserver, subprocess, sys, tempfile, threading, time, urllib.request

base, clerk, facility, item, admin, shots, gtin = sys.argv[1:8]
upstream = base.split("//", 1)[1]


def fail(message):
    print("offline: " + message)
    # What the page said about itself: script errors and console lines.
    for m in buffered:
        if m.get("method") in ("Runtime.exceptionThrown", "Runtime.consoleAPICalled", "Log.entryAdded"):
            print("  page: " + json.dumps(m.get("params"), ensure_ascii=False)[:400])
    sys.exit(1)


# --- the proxy: pass, or drop the next /entry/sync answer after the server has made it ---------
drop_next_sync = threading.Event()
syncs_dropped = []


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "proxy-connection")}
        conn = http.client.HTTPConnection(upstream, timeout=60)
        conn.request(self.command, self.path, body=body, headers=headers)
        answer = conn.getresponse()
        data = answer.read()
        if self.path.startswith("/entry/sync") and drop_next_sync.is_set():
            drop_next_sync.clear()
            syncs_dropped.append(answer.status)
            # The server has recorded and answered; the browser never hears it.
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.send_response(answer.status)
        for k, v in answer.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = forward


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


proxy = Server(("127.0.0.1", 0), Proxy)
threading.Thread(target=proxy.serve_forever, daemon=True).start()
site = "http://127.0.0.1:%d" % proxy.server_address[1]


# --- Chromium over a pipe: JSON messages ending in NUL on fds 3 (to it) and 4 (from it) --------
to_chrome_r, to_chrome_w = os.pipe()
from_chrome_r, from_chrome_w = os.pipe()
profile = tempfile.mkdtemp(prefix="sp-offline-")


def child_fds():
    os.dup2(to_chrome_r, 3)
    os.dup2(from_chrome_w, 4)


chrome = subprocess.Popen(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-pipe",
                           "--user-data-dir=" + profile, "--window-size=1366,768", "about:blank"],
                          pass_fds=(3, 4), preexec_fn=child_fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.close(to_chrome_r)
os.close(from_chrome_w)
reader = os.fdopen(from_chrome_r, "rb")
next_id = [0]
buffered = []


def read_message():
    data = b""
    while True:
        c = reader.read(1)
        if not c:
            fail("Chromium closed the pipe")
        if c == b"\0":
            return json.loads(data)
        data += c


def cdp(method, params=None, session=None, timeout=30):
    next_id[0] += 1
    message = {"id": next_id[0], "method": method, "params": params or {}}
    if session:
        message["sessionId"] = session
    os.write(to_chrome_w, json.dumps(message).encode() + b"\0")
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = read_message()
        if m.get("id") == next_id[0]:
            if "error" in m:
                fail("%s: %s" % (method, m["error"]))
            return m.get("result", {})
        buffered.append(m)
    fail("no answer to " + method)


def evaluate(session, expression):
    result = cdp("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True}, session)
    if "exceptionDetails" in result:
        fail("page script failed: %s\n%s" % (expression[:80], json.dumps(result["exceptionDetails"])[:400]))
    return result.get("result", {}).get("value")


def wait_for(session, expression, what, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if evaluate(session, expression):
                return
        except SystemExit:
            pass
        time.sleep(0.2)
    fail("timed out waiting for " + what + "; outbox: " + str(evaluate(session, "(document.getElementById('outbox') || document.body).outerHTML.slice(0, 1500)")))


def navigate(session, url):
    cdp("Page.navigate", {"url": url}, session)
    wait_for(session, "document.readyState === 'complete' && location.href.indexOf('%s') >= 0" % url.split("?")[0].replace(site, ""), "load of " + url)


def api(path):
    request = urllib.request.Request(base + path, headers={"authorization": "Bearer " + admin})
    with urllib.request.urlopen(request) as r:
        return json.loads(r.read())


def movements_of(lot):
    return [m for m in api("/api/v1/movements?facility=%s&item=%s&limit=1000" % (facility, item))["movements"] if m["lot"] == lot]


try:
    target = cdp("Target.createTarget", {"url": "about:blank"})["targetId"]
    page = cdp("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    cdp("Page.enable", session=page)
    cdp("Runtime.enable", session=page)

    # Sign in as the clerk, through the login form.
    navigate(page, site + "/login")
    evaluate(page, "document.querySelector('input[name=token]').value = %s; document.querySelector('form').submit(); true" % json.dumps(clerk))
    wait_for(page, "location.pathname === '/entry' && document.readyState === 'complete'", "the entry page after sign-in")
    # The service worker installs and takes the page; the outbox opens.
    wait_for(page, "navigator.serviceWorker && navigator.serviceWorker.controller !== null", "the service worker to control the page", 20)
    wait_for(page, "!document.getElementById('outbox').hidden", "the outbox to open")

    workers = [t for t in cdp("Target.getTargets")["targetInfos"] if t["type"] == "service_worker"]
    if not workers:
        fail("no service worker target")
    worker = cdp("Target.attachToTarget", {"targetId": workers[0]["targetId"], "flatten": True})["sessionId"]

    def network(offline):
        for session in (page, worker):
            cdp("Network.enable", session=session)
            cdp("Network.emulateNetworkConditions", {"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}, session)

    # Offline, then reload: the page comes from the worker's copy.
    network(True)
    cdp("Page.reload", {"ignoreCache": False}, page)
    time.sleep(1)
    wait_for(page, "document.readyState === 'complete' && !!document.getElementById('entry-form')", "the entry page offline (from the worker's cache)")
    wait_for(page, "!document.getElementById('outbox').hidden && document.getElementById('outbox').className.indexOf('is-offline') >= 0",
             "the page to say it is offline")

    # A scan, offline: typed by the "scanner", GS as Ctrl+], then Enter.
    def key(session, key, code, vk, modifiers=0):
        for kind in ("rawKeyDown", "keyUp"):
            cdp("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": code, "windowsVirtualKeyCode": vk, "modifiers": modifiers}, session)

    def scan(parts):
        evaluate(page, "var i = document.getElementById('item'); i.value = ''; ['lot','expiry','quantity'].forEach(function (n) { document.getElementById(n).value = ''; }); i.focus(); true")
        for n, part in enumerate(parts):
            if n:
                key(page, "]", "BracketRight", 221, modifiers=2)
            cdp("Input.insertText", {"text": part}, page)
        key(page, "Enter", "Enter", 13)
        time.sleep(0.3)
        return evaluate(page, "({item: document.getElementById('item').value, lot: document.getElementById('lot').value, "
                              "expiry: document.getElementById('expiry').value, message: document.getElementById('scan-message').textContent})")

    got = scan(["]d201" + gtin + "17280630" + "10LOT-SCAN", "21SER1"])
    if (got["item"], got["lot"], got["expiry"]) != (item, "LOT-SCAN", "2028-06-30"):
        fail("the scan filled in %s" % got)
    unknown = scan(["(01)04150469848975(10)X1"])
    if unknown["item"] or unknown["lot"] or "04150469848975" not in unknown["message"]:
        fail("an unknown GTIN: %s" % unknown)
    scanned = "scanned offline with GS as Ctrl+]: %s · %s · %s; an unknown GTIN filled in nothing" % (got["item"], got["lot"], got["expiry"])

    entries = [("receipt", "OFF-A", "2028-06-30", 10), ("receipt", "OFF-B", "2028-06-30", 20), ("issue", "OFF-A", "", 3),
               ("issue", "OFF-A", "", 1000), ("issue", "OFF-B", "", 5)]
    for n, (kind, lot, expiry, quantity) in enumerate(entries, 1):
        evaluate(page, """(function () {
            var f = document.getElementById('entry-form');
            f.querySelector('input[name=kind][value=%s]').checked = true;
            var set = function (n, v) { f.elements.namedItem(n).value = v; };
            set('facility', %s); set('item', %s); set('lot', %s); set('expiry', %s); set('quantity', %s);
            f.requestSubmit(); if (%s) f.requestSubmit(); return true; })()""" % (kind, json.dumps(facility), json.dumps(item), json.dumps(lot), json.dumps(expiry), quantity,
                                                                     "true" if n == 1 else "false"))
        wait_for(page, "document.getElementById('outbox').getAttribute('data-waiting') === '%d'" % n, "entry %d to wait in the outbox" % n)
    if movements_of("OFF-A") or movements_of("OFF-B"):
        fail("something reached the ledger while offline")
    # The first entry was submitted twice in a row (a double click): one entry.
    if evaluate(page, "document.getElementById('outbox').getAttribute('data-waiting')") != "5":
        fail("a double submit made two entries")

    # At phone size, the offline page with its queue.
    cdp("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}, page)
    evaluate(page, "document.getElementById('outbox').scrollIntoView(); true")
    time.sleep(0.5)
    for name in ("entry-offline-390x844.png",):
        shot = cdp("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False}, page)["data"]
        with open(os.path.join(shots, name), "wb") as f:
            f.write(base64.b64decode(shot))
    cdp("Emulation.clearDeviceMetricsOverride", session=page)

    # Back online: the page sends its outbox by itself (the online event).
    network(False)
    wait_for(page, "document.getElementById('outbox').getAttribute('data-waiting') === '0'", "the outbox to be sent", 40)
    states = evaluate(page, "Array.prototype.map.call(document.querySelectorAll('#outbox-list li'), function (li) { return li.getAttribute('data-state'); })")
    if sorted(states) != ["recorded"] * 4 + ["refused"]:
        fail("states after sending: %s" % states)
    refused_text = evaluate(page, "document.querySelector('#outbox-list li.ob-refused').textContent")
    a, b = movements_of("OFF-A"), movements_of("OFF-B")
    if len(a) != 2 or len(b) != 2:
        fail("ledger holds %d OFF-A and %d OFF-B movements, not 2 and 2" % (len(a), len(b)))
    stock = {l["lot"]: l["quantity"] for l in api("/api/v1/facilities/%s/stock" % facility)["lots"] if l["item"] == item}
    if stock.get("OFF-A") != 7 or stock.get("OFF-B") != 15:
        fail("on hand OFF-A %s, OFF-B %s; expected 7 and 15" % (stock.get("OFF-A"), stock.get("OFF-B")))
    attention = [s for s in api("/api/v1/attention?facility=" + facility)["submissions"] if s["entry"].get("lot") == "OFF-A"]
    if len(attention) != 1 or attention[0]["code"] != "insufficient_stock":
        fail("the facility's needs-attention list: %s" % attention)

    # A lost answer: the server records, the browser hears nothing; the resend is a replay.
    drop_next_sync.set()
    evaluate(page, """(function () {
        var f = document.getElementById('entry-form');
        f.querySelector('input[name=kind][value=receipt]').checked = true;
        var set = function (n, v) { f.elements.namedItem(n).value = v; };
        set('facility', %s); set('item', %s); set('lot', 'OFF-C'); set('expiry', '2028-06-30'); set('quantity', '4'); f.requestSubmit(); return true; })()""" % (json.dumps(facility), json.dumps(item)))
    deadline = time.time() + 20
    while not syncs_dropped and time.time() < deadline:
        time.sleep(0.2)
    if not syncs_dropped:
        fail("the outbox never sent the entry")
    if len(movements_of("OFF-C")) != 1:
        fail("the server did not record the entry whose answer was lost")
    # The page heard nothing, so the entry still waits (or its timer has already resent it); send now.
    evaluate(page, "document.getElementById('outbox-send').click(); true")
    wait_for(page, "document.querySelector('#outbox-list li[data-state=replay]') !== null", "the resend to be answered as a replay", 30)
    if len(movements_of("OFF-C")) != 1:
        fail("the resend was counted twice")

    cdp("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}, page)
    evaluate(page, "document.getElementById('outbox').scrollIntoView(); true")
    time.sleep(0.5)
    shot = cdp("Page.captureScreenshot", {"format": "png"}, page)["data"]
    with open(os.path.join(shots, "entry-synced-390x844.png"), "wb") as f:
        f.write(base64.b64decode(shot))
    # An entry made offline, then the sign-in lapses: after signing in again it is held for the
    # clerk to confirm (it was made in an earlier sign-in), and sent once confirmed.
    network(True)
    evaluate(page, """(function () {
        var f = document.getElementById('entry-form');
        f.querySelector('input[name=kind][value=receipt]').checked = true;
        var set = function (n, v) { f.elements.namedItem(n).value = v; };
        set('facility', %s); set('item', %s); set('lot', 'OFF-D'); set('expiry', '2028-06-30'); set('quantity', '2'); f.requestSubmit(); return true; })()""" % (json.dumps(facility), json.dumps(item)))
    wait_for(page, "document.getElementById('outbox').getAttribute('data-waiting') === '1'", "the OFF-D entry to wait")
    cdp("Network.clearBrowserCookies", session=page)
    network(False)
    evaluate(page, "document.getElementById('outbox-send').click(); true")
    time.sleep(1)
    if movements_of("OFF-D"):
        fail("an entry was sent without a session")
    navigate(page, site + "/login")
    evaluate(page, "document.querySelector('input[name=token]').value = %s; document.querySelector('form').submit(); true" % json.dumps(clerk))
    wait_for(page, "location.pathname === '/entry' && document.readyState === 'complete'", "the entry page after signing in again")
    wait_for(page, "document.querySelector('#outbox-list li[data-state=held]') !== null", "the earlier sign-in's entry to be held", 30)
    if movements_of("OFF-D"):
        fail("an entry of an earlier sign-in was sent without the clerk confirming it")
    evaluate(page, "document.querySelector('#outbox-list li[data-state=held] button').click(); true")
    wait_for(page, "document.querySelector('#outbox-list li[data-state=held]') === null && document.getElementById('outbox').getAttribute('data-waiting') === '0'",
             "the confirmed entry to be sent", 30)
    if len(movements_of("OFF-D")) != 1:
        fail("the confirmed entry is not in the ledger exactly once")

    # Signing out forgets the kept page: offline, /entry no longer opens for the next person.
    evaluate(page, "document.querySelector(\"form[action='/logout'] button\").click(); true")
    wait_for(page, "location.pathname === '/login'", "the sign-in page after signing out")
    network(True)
    try:
        cdp("Page.navigate", {"url": site + "/entry"}, page)
    except SystemExit:
        pass
    time.sleep(2)
    if evaluate(page, "!!document.getElementById('entry-form')"):
        fail("after signing out the entry page still opened offline")
    network(False)

    print("offline: ok (page reloaded offline from the service worker; " + scanned + "; 5 entries queued offline; online: 4 recorded once, "
          "1 refused and listed for the facility — %s; a lost answer (server said %d) resent as a replay, counted once; "
          "an entry of a lapsed sign-in held until confirmed, then sent once; a double submit kept once; after signing out the page no longer opens offline; "
          "screenshots in %s)" % (refused_text.strip()[:120], syncs_dropped[0], shots))
finally:
    chrome.kill()
    proxy.shutdown()
