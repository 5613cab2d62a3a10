#!/usr/bin/env python3
"""Independent oracle for the planner's per-item transportation problem.

Solves one item with OR-Tools' SimpleMinCostFlow over EVERY donor-lot x receiver
pair, so the benchmark can compare the planner's objectives with an outside solver:
first the weighted covered need is maximised (designated hospitals weigh 2), then
quantity x distance is minimised, lexicographically.

    python3 ortools_oracle.py INSTANCE.json   -> one line of JSON on stdout
    python3 ortools_oracle.py --selftest      -> "selftest ok" (exit 0) or exit 1

Only the JSON line goes to stdout; everything else goes to stderr.
"""

import json
import math
import sys
import time

import numpy as np
from ortools.graph.python import min_cost_flow

EARTH_RADIUS_KM = 6371.0088  # the mean radius SPEC.md fixes
RAD = math.pi / 180
INT64_MAX = 2**63 - 1

# Lot x receiver pairs handled per vectorised block: large enough that numpy, not the
# Python loop, dominates; small enough that a block's temporaries stay ~200 MB.
PAIR_CHUNK = 1 << 21

# OR-Tools refuses (BAD_COST_RANGE) any arc cost above INT64_MAX / (2 * (nodes + 1)),
# because it multiplies costs by nodes + 1, and it also fails mid-solve if a node price
# drifts below INT64_MIN + the largest scaled cost. Nothing bounds those prices tightly,
# so we stay this factor below OR-Tools' own limit (costing at most one decade of distance
# precision), and still retry with a coarser unit should the solver report BAD_COST_RANGE.
PRICE_HEADROOM = 4
MAX_ATTEMPTS = 4


class InputError(ValueError):
    pass


def _int(value, what):
    """Quantities are integers; accept 12.0 but refuse 12.5 or negatives rather than guess."""
    if value is None or isinstance(value, bool):
        raise InputError(f"{what}: expected a non-negative integer, got {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise InputError(f"{what}: expected an integer, got {value!r}")
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise InputError(f"{what}: expected a non-negative integer, got {value!r}")
    return value


def _float(value, what):
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise InputError(f"{what}: expected a finite number, got {value!r}")
    return float(value)


def round_half_away(x):
    """Swift's .rounded() (to nearest, ties away from zero) for x >= 0, exactly.

    floor(x + 0.5) is not exact (0.49999999999999994 + 0.5 rounds up to 1.0); x - floor(x)
    is always exact, so compare the fraction instead.
    """
    f = np.floor(x)
    return f + (x - f >= 0.5)


def haversine_km(lat1, lon1, cos_lat1, lat2, lon2, cos_lat2):
    """Great-circle km in the same operation order as the Swift GreatCircle.km (a = donor)."""
    dlat = (lat2 - lat1) * RAD
    dlon = (lon2 - lon1) * RAD
    s_lat = np.sin(dlat / 2)
    s_lon = np.sin(dlon / 2)
    h = s_lat * s_lat + cos_lat1 * cos_lat2 * s_lon * s_lon
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h)))


class Instance:
    """The JSON instance as flat numpy arrays; lots are numbered donor by donor."""

    def __init__(self, data):
        self.item = data.get("item")
        donors = data.get("donors") or []
        receivers = data.get("receivers") or []

        self.d_lat = np.array([_float(d.get("lat"), f"donor {i} lat") for i, d in enumerate(donors)], dtype=np.float64)
        self.d_lon = np.array([_float(d.get("lon"), f"donor {i} lon") for i, d in enumerate(donors)], dtype=np.float64)
        self.d_surplus = np.array([_int(d.get("surplus"), f"donor {i} surplus") for i, d in enumerate(donors)], dtype=np.int64)

        lot_donor, lot_qty, lot_exp = [], [], []
        for i, d in enumerate(donors):
            lots = d.get("lots")
            if lots is None:
                # No lot detail: the whole surplus as one lot that never expires.
                lots = [{"quantity": int(self.d_surplus[i]), "expiry_days": None}]
            for k, lot in enumerate(lots):
                lot_donor.append(i)
                lot_qty.append(_int(lot.get("quantity"), f"donor {i} lot {k} quantity"))
                e = lot.get("expiry_days")
                lot_exp.append(math.nan if e is None else _float(e, f"donor {i} lot {k} expiry_days"))
        self.lot_donor = np.array(lot_donor, dtype=np.int64)
        self.lot_qty = np.array(lot_qty, dtype=np.int64)
        self.lot_exp = np.array(lot_exp, dtype=np.float64)  # NaN: never expires

        self.r_lat = np.array([_float(r.get("lat"), f"receiver {j} lat") for j, r in enumerate(receivers)], dtype=np.float64)
        self.r_lon = np.array([_float(r.get("lon"), f"receiver {j} lon") for j, r in enumerate(receivers)], dtype=np.float64)
        self.r_need = np.array([_int(r.get("need"), f"receiver {j} need") for j, r in enumerate(receivers)], dtype=np.int64)
        self.r_weight = np.array([_int(r.get("weight"), f"receiver {j} weight") for j, r in enumerate(receivers)], dtype=np.int64)
        self.r_dd = np.array([_float(r.get("daily_demand", 0) or 0, f"receiver {j} daily_demand")
                              for j, r in enumerate(receivers)], dtype=np.float64)

        # A facility can be both: stock beyond its target in a lot it cannot use in time, and short.
        # Stock never moves to where it already is, so a donor and receiver of the same site
        # ("code") get no arc, as in the planner; without codes every pair is allowed.
        site_ids = {}
        def site(entry):
            code = entry.get("code")
            return -1 if code is None else site_ids.setdefault(str(code), len(site_ids))
        self.d_site = np.array([site(d) for d in donors], dtype=np.int64)
        self.r_site = np.array([site(r) for r in receivers], dtype=np.int64)

        self.D, self.L, self.R = len(self.d_lat), len(self.lot_qty), len(self.r_lat)
        self.d_cos = np.cos(self.d_lat * RAD)
        self.r_cos = np.cos(self.r_lat * RAD)

        # Node numbering.
        self.source = 0
        self.donor_base = 1
        self.lot_base = 1 + self.D
        self.recv_base = 1 + self.D + self.L
        self.sink = 1 + self.D + self.L + self.R
        self.num_nodes = self.sink + 1

        self.total_surplus = int(self.d_surplus.sum())
        self.total_need = int(self.r_need.sum())

    def lot_blocks(self):
        """Consecutive lot ranges of about PAIR_CHUNK lot x receiver pairs each."""
        step = max(1, PAIR_CHUNK // max(1, self.R))
        for l0 in range(0, self.L, step):
            yield l0, min(self.L, l0 + step)

    def block_capacities(self, l0, l1):
        """(rows, cols, caps) of the lot -> receiver arcs of lots l0..l1-1, in arc order.

        Mirrors PlanReceiver.usable: floor(round6(days x daily demand)), capped at the lot.
        Deterministic, so the post-solve pass can recompute it instead of storing ~100M indices.
        """
        qty = self.lot_qty[l0:l1].astype(np.float64)[:, None]
        exp = self.lot_exp[l0:l1]
        never = np.isnan(exp)[:, None]
        days = np.where(never, 0.0, exp[:, None])
        dd = self.r_dd[None, :]
        usable = np.floor(round_half_away(days * dd * 1e6) / 1e6)
        usable = np.where((days > 0) & (dd > 0), usable, 0.0)
        # Compare as floats before converting, so a huge days x demand cannot overflow int64.
        cap = np.where(never, qty, np.minimum(usable, qty)).astype(np.int64)
        lot_site = self.d_site[self.lot_donor[l0:l1]][:, None]
        cap[(lot_site == self.r_site[None, :]) & (lot_site >= 0)] = 0
        rows, cols = np.nonzero(cap > 0)
        return rows, cols, cap[rows, cols]

    def max_pair_metres(self):
        """An upper bound on every arc's length: the farthest donor x receiver pair, +1 m.

        Uses unit vectors (min dot product = max chord) so it is one matrix product per block,
        not trigonometry per pair; the +1 m absorbs its rounding. Any bound >= the longest
        arc keeps M valid.
        """
        if self.D == 0 or self.R == 0:
            return 0
        def unit(lat, lon):
            la, lo = lat * RAD, lon * RAD
            return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=1)
        u, v = unit(self.d_lat, self.d_lon), unit(self.r_lat, self.r_lon)
        step = max(1, PAIR_CHUNK // self.R)
        min_dot = 1.0
        for i0 in range(0, self.D, step):
            min_dot = min(min_dot, float((u[i0:i0 + step] @ v.T).min()))
        chord = math.sqrt(max(0.0, 2.0 - 2.0 * min_dot))
        km = 2 * EARTH_RADIUS_KM * math.asin(min(1.0, chord / 2))
        return math.ceil(km * 1000) + 1


def choose_unit(max_metres, min_supply_need, max_weight, num_nodes, min_unit=1, headroom=PRICE_HEADROOM):
    """The finest distance unit (1 m, 10 m, ...) whose costs fit OR-Tools' int64 arithmetic.

    M = max_arc_units x min(total surplus, total need) + 1 exceeds any possible total distance
    cost (no plan moves more than min(S, N) units, none further than the longest arc), so one
    more unit of weighted coverage always outweighs any distance saving. The largest cost
    magnitude is max_weight x M; SimpleMinCostFlow adds 2 nodes of its own, then scales costs
    by (nodes + 1) and requires |cost| <= INT64_MAX / (2 x scale).
    Returns (unit, max_units, M) or None if even one unit per arc does not fit.
    """
    scale = (num_nodes + 2) + 1
    limit = INT64_MAX // (2 * scale * headroom)
    unit = min_unit
    while True:
        max_units = -(-max_metres // unit)  # ceil: a bound must not shrink by rounding
        M = max_units * min_supply_need + 1
        if max(1, max_weight) * M <= limit:
            return unit, max_units, M
        if max_units <= 1:
            return None
        unit *= 10


def build(inst, unit, M):
    """The network, exactly as SPEC'd: source, donors, lots, receivers, sink, bypass."""
    smcf = min_cost_flow.SimpleMinCostFlow()
    i32 = np.int32
    D, L, R = inst.D, inst.L, inst.R

    def add(tails, heads, caps, costs):
        if len(tails):
            smcf.add_arcs_with_capacity_and_unit_cost(
                np.ascontiguousarray(tails, dtype=i32), np.ascontiguousarray(heads, dtype=i32),
                np.ascontiguousarray(caps, dtype=np.int64), np.ascontiguousarray(costs, dtype=np.int64))

    add(np.zeros(D, i32), inst.donor_base + np.arange(D), inst.d_surplus, np.zeros(D, np.int64))
    add(inst.donor_base + inst.lot_donor, inst.lot_base + np.arange(L), inst.lot_qty, np.zeros(L, np.int64))
    recv_sink_first = smcf.num_arcs()
    add(inst.recv_base + np.arange(R), np.full(R, inst.sink, i32), inst.r_need, -inst.r_weight * M)
    # The bypass lets stock stay where it is: not every surplus unit has to move.
    add(np.array([inst.source]), np.array([inst.sink]), np.array([inst.total_surplus]), np.zeros(1, np.int64))

    lot_arc_first = smcf.num_arcs()
    max_units_used = 0
    for l0, l1 in inst.lot_blocks():
        rows, cols, caps = inst.block_capacities(l0, l1)
        if len(rows) == 0:
            continue
        # Lots of a donor share its distances: trigonometry once per donor, not per lot.
        donors, inv = np.unique(inst.lot_donor[l0:l1], return_inverse=True)
        km = haversine_km(inst.d_lat[donors][:, None], inst.d_lon[donors][:, None], inst.d_cos[donors][:, None],
                          inst.r_lat[None, :], inst.r_lon[None, :], inst.r_cos[None, :])
        units = round_half_away(km * 1000.0 / unit).astype(np.int64)
        del km
        costs = units[inv.reshape(-1)[rows], cols]
        del units
        max_units_used = max(max_units_used, int(costs.max()))
        add(inst.lot_base + l0 + rows, inst.recv_base + cols, caps, costs)
        del rows, cols, caps, costs

    smcf.set_nodes_supplies(np.array([inst.source, inst.sink], dtype=i32),
                            np.array([inst.total_surplus, -inst.total_surplus], dtype=np.int64))
    return smcf, recv_sink_first, lot_arc_first, max_units_used


def extract(inst, smcf, recv_sink_first, lot_arc_first):
    """Objectives from the flows alone (never from optimal_cost, which saturates at int64)."""
    R = inst.R
    recv_flow = np.asarray(smcf.flows(np.arange(recv_sink_first, recv_sink_first + R, dtype=np.int32)),
                           dtype=np.int64) if R else np.zeros(0, np.int64)
    covered = int(recv_flow.sum())
    weighted = int((recv_flow * inst.r_weight).sum())

    quantity_km = 0.0
    metres_units = 0
    arc = lot_arc_first
    for l0, l1 in inst.lot_blocks():
        rows, cols, _ = inst.block_capacities(l0, l1)
        n = len(rows)
        if n == 0:
            continue
        flow = np.asarray(smcf.flows(np.arange(arc, arc + n, dtype=np.int32)), dtype=np.int64)
        arc += n
        moved = np.nonzero(flow)[0]
        if len(moved) == 0:
            continue
        d = inst.lot_donor[l0 + rows[moved]]
        j = cols[moved]
        km = haversine_km(inst.d_lat[d], inst.d_lon[d], inst.d_cos[d], inst.r_lat[j], inst.r_lon[j], inst.r_cos[j])
        quantity_km += float((flow[moved] * km).sum())
    if arc != smcf.num_arcs():
        raise RuntimeError(f"arc bookkeeping mismatch: walked {arc}, solver has {smcf.num_arcs()}")
    return covered, weighted, quantity_km, arc - lot_arc_first


def solve_instance(data, t_start=None, min_unit=1, headroom=PRICE_HEADROOM):
    """Build, solve and measure one instance; returns the output dict."""
    t0 = time.perf_counter() if t_start is None else t_start
    inst = Instance(data)
    max_metres = inst.max_pair_metres()
    max_weight = int(inst.r_weight.max()) if inst.R else 1
    min_sn = min(inst.total_surplus, inst.total_need)
    t_read = time.perf_counter() - t0

    result = {"item": inst.item, "status": None, "donors": inst.D, "receivers": inst.R, "lots": inst.L,
              "arcs": None, "distance_unit_m": None, "covered": None, "weighted_covered": None,
              "quantity_km": None, "build_seconds": None, "solve_seconds": None}

    choice = choose_unit(max_metres, min_sn, max_weight, inst.num_nodes, min_unit, headroom)
    attempts = 0
    while True:
        if choice is None:
            # Honest failure: not even 1 cost unit per arc fits OR-Tools' int64 range.
            result["status"] = "BAD_COST_RANGE"
            result["build_seconds"] = round(t_read, 6)
            return result
        unit, max_units, M = choice
        attempts += 1
        tb = time.perf_counter()
        smcf, recv_sink_first, lot_arc_first, max_used = build(inst, unit, M)
        build_seconds = t_read + (time.perf_counter() - tb)
        assert max_used <= max_units, "an arc is longer than the bound M was computed from"
        print(f"[oracle] {inst.item}: unit {unit} m, M {M}, nodes {inst.num_nodes}, arcs {smcf.num_arcs()}, "
              f"build {build_seconds:.3f}s, attempt {attempts}", file=sys.stderr)

        ts = time.perf_counter()
        status = smcf.solve()
        solve_seconds = time.perf_counter() - ts
        name = status.name if hasattr(status, "name") else str(status)
        print(f"[oracle] {inst.item}: {name} in {solve_seconds:.3f}s", file=sys.stderr)

        result.update(status=name, distance_unit_m=unit, arcs=smcf.num_arcs() - lot_arc_first,
                      build_seconds=round(build_seconds, 6), solve_seconds=round(solve_seconds, 6))
        if attempts > 1:
            result["attempts"] = attempts
        if status == smcf.BAD_COST_RANGE and attempts < MAX_ATTEMPTS:
            # Prices overflowed mid-solve despite the headroom: coarsen and rebuild from scratch.
            del smcf
            choice = choose_unit(max_metres, min_sn, max_weight, inst.num_nodes, unit * 10, headroom)
            continue
        break

    if status != smcf.OPTIMAL:
        return result  # no objectives: a non-optimal flow must not pass for an answer

    covered, weighted, quantity_km, lot_arcs = extract(inst, smcf, recv_sink_first, lot_arc_first)
    # Cross-check against the solver's own total when it did not saturate: cost =
    # -M x weighted + distance units, with 0 <= distance units < M.
    cost = smcf.optimal_cost()
    if abs(cost) < INT64_MAX:
        dist_units = cost + M * weighted
        if not (0 <= dist_units < M):
            raise RuntimeError(f"inconsistent objective: cost {cost}, M {M}, weighted {weighted}")
    result.update(covered=covered, weighted_covered=weighted, quantity_km=quantity_km)
    return result


def main_file(path):
    t0 = time.perf_counter()
    item = None
    try:
        with open(path) as f:
            data = json.load(f)
        item = data.get("item") if isinstance(data, dict) else None
        result = solve_instance(data, t_start=t0)
    except Exception as e:  # one JSON line even on failure, so the caller can report it
        print(f"[oracle] error: {e!r}", file=sys.stderr)
        print(json.dumps({"item": item, "status": "ERROR", "error": str(e)}))
        return 1
    print(json.dumps(result))
    return 0


# ---------------------------------------------------------------------------------------------
# Self-test: tiny instances with hand-computed optima, plus one random mid-size instance.

def _km(a, b):
    """Scalar haversine for expected values."""
    la1, lo1 = a
    la2, lo2 = b
    return float(haversine_km(la1, lo1, math.cos(la1 * RAD), la2, lo2, math.cos(la2 * RAD)))


def _check(name, data, covered, weighted, qkm, **kw):
    r = solve_instance(data, **kw)
    ok = (r["status"] == "OPTIMAL" and r["covered"] == covered and r["weighted_covered"] == weighted
          and abs(r["quantity_km"] - qkm) <= 1e-6 * max(1.0, abs(qkm)))
    if not ok:
        raise AssertionError(f"{name}: expected covered={covered} weighted={weighted} quantity_km={qkm:.6f}, got {r}")
    print(f"[selftest] {name}: ok (covered {covered}, weighted {weighted}, {qkm:.3f} quantity-km)", file=sys.stderr)
    return r


def _donor(lat, lon, surplus, lots=None):
    return {"lat": lat, "lon": lon, "surplus": surplus, "lots": lots}


def _recv(lat, lon, need, weight=1, dd=1.0):
    return {"lat": lat, "lon": lon, "need": need, "weight": weight, "daily_demand": dd}


def selftest():
    o = (0.0, 0.0)
    near, far = (0.0, 1.0), (0.0, 2.0)

    # Short stock goes to the designated hospital even though it is twice as far.
    _check("designated first", {"item": "T1", "donors": [_donor(*o, 10)],
                                "receivers": [_recv(*near, 10, 1), _recv(*far, 10, 2)]},
           10, 20, 10 * _km(o, far))

    # A facility both giving and short never ships to itself: its stock goes to the other receiver.
    _check("not to itself", {"item": "T1b", "donors": [dict(_donor(*o, 10), code="A")],
                             "receivers": [dict(_recv(*o, 10), code="A"), dict(_recv(*near, 10), code="B")]},
           10, 10, 10 * _km(o, near))

    # Coverage tied: the nearer donor ships.
    _check("nearest donor", {"item": "T2", "donors": [_donor(0.0, 3.0, 5), _donor(0.0, 1.0, 5)],
                             "receivers": [_recv(*o, 5)]},
           5, 5, 5 * _km((0.0, 1.0), o))

    # A lot expiring in 5 days: the slow (1/day) near receiver can use only 5 of it,
    # the rest must go to the fast far one. Without the expiry cap all 10 would go near.
    _check("expiring lot", {"item": "T3", "donors": [_donor(*o, 10, [{"quantity": 10, "expiry_days": 5}])],
                            "receivers": [_recv(*near, 10, 1, 1.0), _recv(*far, 10, 1, 10.0)]},
           10, 10, 5 * _km(o, near) + 5 * _km(o, far))

    # Coverage is never traded for distance: Y's lot expires, so only B (which uses it fast)
    # can take it; X must therefore serve A although B is X's neighbour and A is far.
    X, Y, A, B = (0.0, 0.0), (0.0, 5.0), (0.0, -4.0), (0.0, 0.5)
    _check("coverage before distance",
           {"item": "T4", "donors": [_donor(*X, 10), _donor(*Y, 10, [{"quantity": 10, "expiry_days": 2}])],
            "receivers": [_recv(*A, 10, 1, 0.0), _recv(*B, 10, 1, 20.0)]},
           20, 20, 10 * _km(X, A) + 10 * _km(Y, B))

    # lots = null is one never-expiring lot of the surplus; surplus caps lots that sum higher;
    # an expired lot (0 days) and a zero-demand receiver get no arc from expiring stock.
    _check("null lots and caps",
           {"item": "T5", "donors": [_donor(*o, 7), _donor(*near, 4, [{"quantity": 9, "expiry_days": None},
                                                                       {"quantity": 9, "expiry_days": 0}])],
            "receivers": [_recv(*far, 100, 1, 0.0)]},
           11, 11, 7 * _km(o, far) + 4 * _km(near, far))

    # Rounding at 6 decimals before the floor: 100 days x 0.29 a day is 28.999999999999996
    # in binary, and must count as 29, not 28.
    _check("usable rounding", {"item": "T6", "donors": [_donor(*o, 50, [{"quantity": 50, "expiry_days": 100}])],
                               "receivers": [_recv(*near, 50, 1, 0.29)]},
           29, 29, 29 * _km(o, near))

    # Nobody is short: nothing moves.
    _check("nothing short", {"item": "T7", "donors": [_donor(*o, 50)],
                             "receivers": [_recv(*near, 0, 2), _recv(*far, 0, 1)]},
           0, 0, 0.0)

    # The unit loop coarsens when magnitudes would overflow, and gives up honestly at 1 unit/arc.
    assert choose_unit(20_000_000, 10, 2, 100) == (1, 20_000_000, 200_000_001)
    u = choose_unit(20_000_000, 10**9, 2, 50_000)
    assert u is not None and u[0] > 1 and 2 * u[2] * (50_003 + 1) * 2 * PRICE_HEADROOM <= 2 * INT64_MAX, u
    assert choose_unit(20_000_000, 10**17, 2, 50_000) is None
    # A forced coarse unit still gives the same coverage (distance is then approximate).
    _check("coarse unit", {"item": "T8", "donors": [_donor(*o, 10)],
                           "receivers": [_recv(*near, 10, 1), _recv(*far, 10, 2)]},
           10, 20, 10 * _km(o, far), min_unit=1000)
    # With the headroom switched off, 1 m costs exceed OR-Tools' range: the solver must say
    # BAD_COST_RANGE and the oracle must rebuild with a coarser unit rather than report it.
    r = _check("retry coarser", {"item": "T9", "donors": [_donor(*o, 10**13)],
                                 "receivers": [_recv(*near, 10**13, 1), _recv(*far, 10**13, 2)]},
               10**13, 2 * 10**13, 10**13 * _km(o, far), headroom=0.001)
    assert r.get("attempts", 1) > 1 and r["distance_unit_m"] > 1, r

    # A random mid-size instance: it must solve, and its weighted coverage must equal the
    # maximum found by a coverage-only flow (distance ignored), i.e. M really dominates.
    rng = np.random.default_rng(7)
    nd, nr = 300, 300
    donors = []
    for _ in range(nd):
        q = rng.integers(0, 400, size=2)
        lots = [{"quantity": int(q[0]), "expiry_days": int(rng.integers(-5, 90))},
                {"quantity": int(q[1]), "expiry_days": None if rng.random() < 0.5 else int(rng.integers(1, 365))}]
        donors.append(_donor(float(rng.uniform(20, 45)), float(rng.uniform(100, 125)),
                             int(rng.integers(0, int(q.sum()) + 50)), lots))
    receivers = [_recv(float(rng.uniform(20, 45)), float(rng.uniform(100, 125)), int(rng.integers(0, 300)),
                       int(rng.choice([1, 2])), float(rng.choice([0.0, rng.uniform(0.1, 20)])))
                 for _ in range(nr)]
    data = {"item": "RANDOM-300", "donors": donors, "receivers": receivers}
    t = time.perf_counter()
    r = solve_instance(data)
    if r["status"] != "OPTIMAL":
        raise AssertionError(f"random instance not solved: {r}")
    print(f"[selftest] random 300x300x2: {r['arcs']} lot arcs, build {r['build_seconds']:.3f}s, "
          f"solve {r['solve_seconds']:.3f}s, total {time.perf_counter() - t:.3f}s; covered {r['covered']}, "
          f"weighted {r['weighted_covered']}, {r['quantity_km']:.1f} quantity-km", file=sys.stderr)

    inst = Instance(data)
    smcf, recv_first, _, _ = build(inst, 1, 1)
    # Same network, coverage only: replace every distance by 0 through a flat per-arc cost.
    flat = min_cost_flow.SimpleMinCostFlow()
    n = smcf.num_arcs()
    arcs = range(n)
    flat.add_arcs_with_capacity_and_unit_cost(
        np.array([smcf.tail(a) for a in arcs], np.int32), np.array([smcf.head(a) for a in arcs], np.int32),
        np.array([smcf.capacity(a) for a in arcs], np.int64),
        np.array([min(0, smcf.unit_cost(a)) for a in arcs], np.int64))  # keeps only -weight on receiver->sink
    flat.set_nodes_supplies(np.array([inst.source, inst.sink], np.int32),
                            np.array([inst.total_surplus, -inst.total_surplus], np.int64))
    assert flat.solve() == flat.OPTIMAL
    if -flat.optimal_cost() != r["weighted_covered"]:
        raise AssertionError(f"weighted coverage {r['weighted_covered']} is not the maximum {-flat.optimal_cost()}")
    if r["covered"] > min(inst.total_surplus, inst.total_need):
        raise AssertionError("covered exceeds what exists")
    print("selftest ok")
    return 0


def main(argv):
    if len(argv) == 2 and argv[1] == "--selftest":
        try:
            return selftest()
        except Exception as e:
            print(f"selftest FAILED: {e}", file=sys.stderr)
            return 1
    if len(argv) != 2:
        print("usage: ortools_oracle.py INSTANCE.json | --selftest", file=sys.stderr)
        return 2
    return main_file(argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
