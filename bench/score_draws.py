#!/usr/bin/env python3
"""Score detected water draws against a ground-truth CSV (stdlib only).

    score_draws.py TRUTH.csv DETECTED.json [--meter m001] [--min-liters 3] [--json]
    score_draws.py --self-test

TRUTH.csv is what gen_events.py / households.py write with --draws:
`meter,start_ns,end_ns,liters,kind`.  Truth kinds leak_drip, leak_toilet,
leak_running and leak_burst all count as `leak`.

DETECTED.json is a JSON list of draws, an object {"draws": [...]}, or a JSONL
file (one API page {"draws": [...], ...} or one draw per line).  Each draw has
`start` and `end` as RFC 3339 strings (offset or Z, optional fraction; unix
ns / ms / s numbers and start_ms/end_ms/start_ns/end_ns fields are accepted
too), `liters` (unused) and `kind`: shower, bath, toilet, washing_machine,
dishwasher, tap, garden, leak, other (leak_* is read as leak, anything else
as other).  If draws carry a `meter` field, only the scored meter's are used.

Rules:
  * a true draw of --min-liters (3) or more is *found* when the detected draw
    that overlaps it most in time has the same kind (on an exact tie in
    overlap a detected draw of the same kind wins);
  * a detected draw is *false* when it overlaps no true draw of its kind
    (of any volume);
  * per kind: recall = found / true draws (>= min liters); precision =
    (detected - false) / detected; F1 = harmonic mean (0 when either is 0);
  * a washing-machine / dishwasher cycle reported as one draw finds every
    fill it covers, and is not false (it overlaps fills of its kind);
  * weighted F1 over shower, bath, toilet, washing_machine, dishwasher, and
    over all kinds, each kind weighted by its number of true draws
    (>= min liters).

Overlaps are found with a sorted sweep (active sets with end-time heaps), so
100k-row truth files score in about a second.
"""
import argparse
import calendar
import heapq
import json
import re
import signal
import sys

KINDS = ["shower", "bath", "toilet", "washing_machine", "dishwasher", "tap", "garden", "leak", "other"]
CORE = ["shower", "bath", "toilet", "washing_machine", "dishwasher"]
TRUTH_KINDS = {"shower", "bath", "toilet", "tap", "dishwasher", "washing_machine", "garden"}

RFC3339 = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"\s*(?:([Zz])|([+-])(\d{2}):?(\d{2}))\s*$")


def parse_time(v):
    """RFC 3339 string or unix number -> integer ns."""
    if isinstance(v, bool) or v is None:
        raise ValueError(f"bad time {v!r}")
    if isinstance(v, (int, float)):
        x = abs(v)
        if x >= 1e17:   # ns
            return int(v)
        if x >= 1e14:   # us
            return int(v * 1000)
        if x >= 1e11:   # ms
            return int(v * 1_000_000)
        return int(round(v * 1e9))  # s
    s = str(v)
    if re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", s):
        return parse_time(float(s) if "." in s else int(s))
    m = RFC3339.match(s)
    if not m:
        raise ValueError(f"not an RFC 3339 time: {s!r}")
    y, mo, d, hh, mi, ss, frac, z, sign, oh, om = m.groups()
    secs = calendar.timegm((int(y), int(mo), int(d), int(hh), int(mi), int(ss), 0, 0, 0))
    ns = int((frac or "0")[:9].ljust(9, "0"))
    if not z:
        off = (int(oh) * 60 + int(om)) * 60
        secs -= off if sign == "+" else -off
    return secs * 1_000_000_000 + ns


def norm_kind(k):
    k = str(k or "other").strip().lower().replace("-", "_").replace(" ", "_")
    if k.startswith("leak"):
        return "leak"
    aliases = {"washer": "washing_machine", "washingmachine": "washing_machine",
               "laundry": "washing_machine", "dish_washer": "dishwasher", "faucet": "tap",
               "wc": "toilet", "irrigation": "garden"}
    k = aliases.get(k, k)
    return k if k in KINDS else "other"


def read_truth(path, meter=None):
    """-> (meter, [(start_ns, end_ns, liters, kind)])"""
    rows = []
    meters = []
    chosen = meter is not None
    with open(path) as f:
        header = f.readline().strip().split(",")
        col = {name: i for i, name in enumerate(header)}
        for name in ("meter", "start_ns", "end_ns", "liters", "kind"):
            if name not in col:
                raise SystemExit(f"{path}: missing column {name!r} (header {header})")
        im, is_, ie, il, ik = (col[n] for n in ("meter", "start_ns", "end_ns", "liters", "kind"))
        for line in f:
            p = line.rstrip("\n").split(",")
            if len(p) < len(header):
                continue
            m = p[im]
            if meter is None:
                meter = m
            if m not in meters:
                meters.append(m)
            if m != meter:
                continue
            k = p[ik]
            kind = "leak" if k.startswith("leak") else k if k in TRUTH_KINDS else "other"
            rows.append((int(p[is_]), int(p[ie]), float(p[il]), kind))
    if len(meters) > 1 and not chosen:
        print(f"score_draws: truth has {len(meters)} meters, scoring {meter} (use --meter)", file=sys.stderr)
    return meter, rows


def _draws_of(obj, out):
    if isinstance(obj, list):
        for x in obj:
            _draws_of(x, out)
    elif isinstance(obj, dict):
        if any(k in obj for k in ("start", "start_ns", "start_ms")):
            out.append(obj)
        else:
            for key in ("draws", "items", "data", "results"):
                if isinstance(obj.get(key), list):
                    _draws_of(obj[key], out)
                    break


def read_detected(path, meter=None):
    """-> [(start_ns, end_ns, liters, kind)]"""
    text = sys.stdin.read() if path == "-" else open(path).read()
    raw = []
    try:
        _draws_of(json.loads(text), raw)
    except json.JSONDecodeError:
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            try:
                _draws_of(json.loads(line), raw)
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{n}: not JSON: {e}")
    return [d for d in (draw_tuple(x) for x in raw if meter is None or x.get("meter") in (None, meter))]


def draw_tuple(d):
    def t(names):
        for n in names:
            if n in d and d[n] is not None:
                v = d[n]
                if n.endswith("_ms"):
                    return int(v) * 1_000_000
                if n.endswith("_ns"):
                    return int(v)
                return parse_time(v)
        raise SystemExit(f"draw without {names[0]}: {d}")
    s = t(("start", "start_ns", "start_ms"))
    e = t(("end", "end_ns", "end_ms"))
    liters = d.get("liters", d.get("volume_l", 0.0)) or 0.0
    return (s, e, float(liters), norm_kind(d.get("kind")))


def overlaps(truth, det):
    """Yield (ti, di, overlap_ns) for every truth/detected pair with positive overlap.
    Intervals are [start, end); zero-length ones are widened to 1 ns."""
    ev = []
    for i, (s, e, _l, _k) in enumerate(truth):
        ev.append((s, 0, i, max(e, s + 1)))
    for j, (s, e, _l, _k) in enumerate(det):
        ev.append((s, 1, j, max(e, s + 1)))
    ev.sort()
    act = ({}, {})          # side -> {index: end}
    heaps = ([], [])        # side -> [(end, index)]
    for s, side, i, e in ev:
        for sd in (0, 1):   # expire everything that ended at or before s
            h, a = heaps[sd], act[sd]
            while h and h[0][0] <= s:
                _, j = heapq.heappop(h)
                a.pop(j, None)
        other = act[1 - side]
        for j, oe in other.items():
            ov = min(e, oe) - s
            if ov > 0:
                yield (i, j, ov) if side == 0 else (j, i, ov)
        act[side][i] = e
        heapq.heappush(heaps[side], (e, i))


def score(truth, det, min_liters=3.0):
    """truth/det: lists of (start_ns, end_ns, liters, kind). -> dict of figures."""
    best = [None] * len(truth)          # (overlap, same_kind, det index)
    det_ok = [False] * len(det)
    for ti, di, ov in overlaps(truth, det):
        same = truth[ti][3] == det[di][3]
        if same:
            det_ok[di] = True
        if truth[ti][2] >= min_liters:
            key = (ov, same)
            b = best[ti]
            if b is None or key > b[:2]:
                best[ti] = (ov, same, di)
    per = {k: {"true": 0, "detected": 0, "found": 0, "false": 0} for k in KINDS}
    for ti, (s, e, liters, kind) in enumerate(truth):
        if liters < min_liters:
            continue
        per[kind]["true"] += 1
        b = best[ti]
        if b is not None and b[1]:
            per[kind]["found"] += 1
    for di, (_s, _e, _l, kind) in enumerate(det):
        per[kind]["detected"] += 1
        if not det_ok[di]:
            per[kind]["false"] += 1
    for k, c in per.items():
        p = (c["detected"] - c["false"]) / c["detected"] if c["detected"] else None
        r = c["found"] / c["true"] if c["true"] else None
        f1 = 2 * p * r / (p + r) if p and r else 0.0
        if p is None and r is None:
            f1 = None
        c.update(precision=p, recall=r, f1=f1)

    def weighted(kinds):
        w = sum(per[k]["true"] for k in kinds)
        return sum(per[k]["true"] * (per[k]["f1"] or 0.0) for k in kinds) / w if w else None

    return {"min_liters": min_liters, "kinds": per,
            "weighted_f1_core": weighted(CORE), "weighted_f1_all": weighted(KINDS)}


def fmt(x):
    return "    -" if x is None else f"{x:5.3f}"


def print_table(res, out=sys.stdout, title=""):
    if title:
        print(title, file=out)
    print(f"{'kind':16s} {'true':>7s} {'detected':>8s} {'found':>7s} {'false':>7s} "
          f"{'precision':>9s} {'recall':>7s} {'F1':>6s}", file=out)
    for k in KINDS:
        c = res["kinds"][k]
        if not c["true"] and not c["detected"]:
            continue
        print(f"{k:16s} {c['true']:7d} {c['detected']:8d} {c['found']:7d} {c['false']:7d} "
              f"{fmt(c['precision']):>9s} {fmt(c['recall']):>7s} {fmt(c['f1']):>6s}", file=out)
    print(f"weighted F1 (shower, bath, toilet, washing_machine, dishwasher): "
          f"{fmt(res['weighted_f1_core']).strip()}", file=out)
    print(f"weighted F1 (all kinds): {fmt(res['weighted_f1_all']).strip()}", file=out)


# ----------------------------------------------------------------- self-test
def self_test():
    S = 1_000_000_000
    M = 60 * S
    t0 = 1_700_000_000 * S
    truth = [
        (t0, t0 + 8 * M, 64.0, "shower"),
        (t0 + 3 * M, t0 + 3 * M + 20 * S, 0.5, "tap"),      # tiny, overlaps the shower
        (t0 + 10 * M, t0 + 12 * M, 6.0, "toilet"),
        (t0 + 60 * M, t0 + 61 * M, 9.0, "washing_machine"),
        (t0 + 75 * M, t0 + 76 * M, 9.0, "washing_machine"),
        (t0 + 82 * M, t0 + 83 * M, 9.0, "washing_machine"),
        (t0 + 200 * M, t0 + 206 * M, 50.0, "shower"),
    ]

    def iso(ns):  # RFC 3339 with +01:00 and fraction
        from datetime import datetime, timedelta, timezone
        tz = timezone(timedelta(hours=1))
        return datetime.fromtimestamp(ns // S, tz).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % S:09d}+01:00"

    # 1) perfect detection, fed through the JSON/RFC 3339 path
    perfect = [{"start": iso(s), "end": iso(e), "liters": l, "kind": k} for s, e, l, k in truth]
    det = [draw_tuple(d) for d in perfect]
    assert [d[:2] for d in det] == [t[:2] for t in truth], "RFC 3339 round trip"
    r = score(truth, det)
    for k in ("shower", "toilet", "washing_machine"):
        c = r["kinds"][k]
        assert c["f1"] == 1.0 and c["precision"] == 1.0 and c["recall"] == 1.0, (k, c)
    assert r["kinds"]["tap"]["true"] == 0 and r["kinds"]["tap"]["false"] == 0
    assert r["weighted_f1_core"] == 1.0 and r["weighted_f1_all"] == 1.0, r

    # 2) second shower labelled bath: a miss for shower, a false bath
    det2 = list(det)
    s, e, l, _ = det2[-1]
    det2[-1] = (s, e, l, "bath")
    r = score(truth, det2)
    sh, ba = r["kinds"]["shower"], r["kinds"]["bath"]
    assert (sh["true"], sh["found"], sh["detected"], sh["false"]) == (2, 1, 1, 0), sh
    assert sh["recall"] == 0.5 and sh["precision"] == 1.0
    assert (ba["true"], ba["detected"], ba["false"], ba["precision"]) == (0, 1, 1, 0.0), ba
    assert abs(r["weighted_f1_core"] - (2 * (2 / 3) + 1 + 3) / 6) < 1e-12, r["weighted_f1_core"]

    # 3) one washing-machine cycle draw covering the three fills finds all three
    det3 = [d for d in det if d[3] != "washing_machine"]
    det3.append((t0 + 59 * M, t0 + 90 * M, 27.0, "washing_machine"))
    r = score(truth, det3)
    wm = r["kinds"]["washing_machine"]
    assert (wm["true"], wm["detected"], wm["found"], wm["false"]) == (3, 1, 3, 0), wm
    assert wm["f1"] == 1.0

    # 4) most-overlap decides: a long leak over the shower vs a short shower draw
    det4 = [(t0 - 10 * M, t0 + 30 * M, 40.0, "leak"), (t0 + 1 * M, t0 + 2 * M, 8.0, "shower")]
    r = score(truth[:3], det4)
    assert r["kinds"]["shower"]["found"] == 0 and r["kinds"]["shower"]["false"] == 0
    assert r["kinds"]["leak"]["false"] == 1
    assert r["kinds"]["toilet"]["found"] == 0 and r["kinds"]["toilet"]["recall"] == 0.0

    # 5) parsers: Z, nanosecond fractions, offsets without colon, JSONL pages
    assert parse_time("2024-03-31T01:00:00Z") == 1711846800 * S
    assert parse_time("2024-03-31T03:00:00.123456789+02:00") == 1711846800 * S + 123456789
    assert parse_time("2024-03-31T03:00:00+0200") == 1711846800 * S
    raw = []
    for line in ('{"draws":[{"start":"2024-01-01T00:00:00Z","end":"2024-01-01T00:01:00Z",'
                 '"liters":5,"kind":"leak_burst"}],"next":null}',
                 '{"start_ms":1704067200000,"end_ms":1704067260000,"kind":"Washing-Machine"}'):
        _draws_of(json.loads(line), raw)
    d = [draw_tuple(x) for x in raw]
    assert d[0] == (1704067200 * S, 1704067260 * S, 5.0, "leak"), d
    assert d[1][3] == "washing_machine" and d[1][0] == 1704067200 * S, d

    # 6) sweep agrees with brute force on random intervals
    import random
    rng = random.Random(7)
    kinds = ["shower", "toilet", "tap", "leak"]
    tr = [(a, a + rng.randint(1, 500), rng.uniform(0, 10), rng.choice(kinds))
          for a in (rng.randint(0, 10000) for _ in range(300))]
    de = [(a, a + rng.randint(0, 800), 0.0, rng.choice(kinds))
          for a in (rng.randint(0, 10000) for _ in range(200))]
    got = sorted(overlaps(tr, de))
    want = sorted((i, j, min(te, max(de_, ds + 1)) - max(ts, ds))
                  for i, (ts, te, _, _) in enumerate(tr)
                  for j, (ds, de_, _, _) in enumerate(de)
                  if min(te, max(de_, ds + 1)) - max(ts, ds) > 0)
    assert got == want, "sweep != brute force"
    print("score_draws self-test: ok")


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("truth", nargs="?")
    ap.add_argument("detected", nargs="?", help="JSON / JSONL file, or - for stdin")
    ap.add_argument("--meter", help="meter id to score (default: the first in TRUTH)")
    ap.add_argument("--min-liters", type=float, default=3.0)
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return
    if not args.truth or not args.detected:
        ap.error("TRUTH.csv and DETECTED.json are required")
    meter, truth = read_truth(args.truth, args.meter)
    det = read_detected(args.detected, meter)
    res = score(truth, det, args.min_liters)
    res["meter"] = meter
    print_table(res, title=f"meter {meter}: {len(truth)} true draws, {len(det)} detected, "
                           f"min {args.min_liters:g} L")
    if args.json:
        print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
