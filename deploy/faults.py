"""The fault harness (issue 15): writers record movements against a live `stockpile serve` while
PostgreSQL and the service are made to fail, then the ledger is checked against what was acknowledged.

Each writer owns a lot at QS-RM: a receipt brings 100 000 in, then issues of random sizes take it
down. Every movement is posted until it gets a 2xx, with the same id and body (a lost answer is
retried, never re-invented); one request in five is a deliberate replay of an acknowledged one.
Run by deploy/faults.sh, which starts the service and applies the faults; this file only writes,
counts and, at the end, verifies.
"""
import json, random, sys, threading, time, urllib.error, urllib.request, uuid

base, token, seconds, writers = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
lock = threading.Lock()
statuses = {}
acknowledged = {}      # id -> (lot, signed quantity)
answers_5xx = []       # non-503 5xx answers, with their bodies
replays_applied = []   # deliberate replays answered as new movements (must stay empty)
unanswered = []        # movements never acknowledged (the service stayed down)
first_ok_after = []    # (sent, answered) of each 2xx, to measure recovery after each fault
stop = time.time() + seconds

def post(path, body):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"authorization": "Bearer " + token, "content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except Exception as error:                      # connection refused or reset: the service is down
        return 0, str(error).encode()

def deliver(body):
    """Posts until a 2xx, same id and body each time; returns the answer."""
    while True:
        sent = time.time()
        status, text = post("/api/v1/movements", body)
        with lock:
            statuses[status] = statuses.get(status, 0) + 1
            if status >= 500 and status != 503:
                answers_5xx.append((status, text[:300].decode(errors="replace")))
            if 200 <= status < 300:
                first_ok_after.append((sent, time.time()))
        if 200 <= status < 300:
            return json.loads(text)["movement"]
        if 400 <= status < 500:
            raise SystemExit(f"refused: {status} {text[:300]!r} for {body}")
        if time.time() > stop + 120:        # the service never came back: report it, do not hang
            with lock: unanswered.append(body["id"])
            return None
        time.sleep(0.1)

def writer(n, rng):
    lot = f"FAULT-{n}-{uuid.uuid4().hex[:6]}"
    mine = []
    receipt = {"id": str(uuid.uuid4()), "facility": "QS-RM", "item": "N95", "lot": lot, "expiry": "2030-01-31",
               "kind": "receipt", "quantity": 100000, "reason": "fault harness"}
    if deliver(receipt) is None: return
    with lock: acknowledged[receipt["id"]] = (lot, 100000)
    mine.append(receipt)
    while time.time() < stop:
        if mine and rng.random() < 0.2:
            body = rng.choice(mine)                 # a replay: must change nothing
            answer = deliver(body)
            if answer is None: return
            if not answer["replay"]:
                with lock: replays_applied.append(body["id"])
            continue
        body = {"id": str(uuid.uuid4()), "facility": "QS-RM", "item": "N95", "lot": lot, "kind": "issue",
                "quantity": rng.randint(1, 5), "reason": "fault harness"}
        if deliver(body) is None: return
        with lock: acknowledged[body["id"]] = (lot, -body["quantity"])
        mine.append(body)

threads = [threading.Thread(target=writer, args=(n, random.Random(n))) for n in range(writers)]
for t in threads: t.start()
for t in threads: t.join()
json.dump({"statuses": statuses, "acknowledged": acknowledged, "answers_5xx": answers_5xx, "ok_times": first_ok_after,
           "replays_applied": replays_applied, "unanswered": unanswered},
          open(sys.argv[5], "w"))
