#!/usr/bin/env python3
"""Leak episodes against the truth, measured through the real binary.

Households come from bench/households.py (the independent end-use model, not
the generator the classifier was tuned on): some with injected leaks (drips of
1-3 L/h for days, leaking flappers, running toilets, bursts), some without. For
each: generate the pulses and their truth, `watermeter import` them into a fresh
data dir, start `watermeter serve`, read every draw through the draws API, and
compare the `leak` draws with the true leaks:

- coverage: the share of a true leak's span that leak draws cover;
- pieces: how many leak draws it shows as (one per local day at most is the
  draw log's limit: it is computed per day);
- liters: the leak draws' liters over the truth's;
- false leaks: leak draws that touch no true leak (by an hour's margin).

    bench/leaks.py [--bin target/release/watermeter] [--days 30]

Not a test: the figures are for docs/draws.md.
"""
import argparse
import csv
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from draws import import_and_read  # noqa: E402

H = 3600.0


def truth_leaks(path):
    """(kind, start_s, end_s, liters) of every true leak."""
    out = []
    with open(path) as f:
        for row in csv.DictReader(f):
            if row["kind"].startswith("leak"):
                out.append((row["kind"], int(row["start_ns"]) / 1e9, int(row["end_ns"]) / 1e9,
                            float(row["liters"])))
    return out


def detected_leaks(draws):
    out = []
    for d in draws:
        if d["kind"] == "leak":
            s = datetime.fromisoformat(d["start"]).timestamp()
            e = datetime.fromisoformat(d["end"]).timestamp()
            out.append((s, max(e, s + 1), d["liters"]))
    return out


def run(name, seed, leaks, binary, days, work):
    lp = os.path.join(work, f"{name}.lp")
    truth = os.path.join(work, f"{name}.csv")
    cmd = [sys.executable, os.path.join(HERE, "households.py"), "--days", str(days), "--start",
           "2023-01-01", "--seed", str(seed), "-o", lp, "--draws", truth]
    if leaks:
        cmd.append("--leaks")
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    draws, _, _ = import_and_read(name, lp, binary, days, "Europe/Berlin", work)
    return truth_leaks(truth), detected_leaks(draws)


def compare(truths, found):
    rows, used = [], set()
    for kind, s, e, liters in truths:
        touching = [i for i, (a, b, _) in enumerate(found) if a < e + H and b > s - H]
        used.update(touching)
        covered = 0.0
        for i in touching:
            a, b, _ = found[i]
            covered += max(0.0, min(b, e) - max(a, s))
        got = sum(found[i][2] for i in touching)
        if os.environ.get("LEAKS_VERBOSE"):
            at = lambda t: datetime.fromtimestamp(t, timezone.utc).strftime("%m-%d %H:%M")
            print(f"   {kind} {at(s)}..{at(e)} {liters:.0f} L:",
                  "; ".join(f"{at(found[i][0])}..{at(found[i][1])} {found[i][2]:.0f} L" for i in touching))
        rows.append((kind, (e - s) / H, liters, covered / max(e - s, 1.0), len(touching), got))
    false = [f for i, f in enumerate(found) if i not in used]
    return rows, false


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "watermeter"))
    ap.add_argument("--days", type=int, default=30)
    a = ap.parse_args()
    homes = [(f"leaky-seed{s}", s, True) for s in (1, 2, 3, 4)]
    homes += [(f"dry-seed{s}", s, False) for s in (11, 12)]
    all_rows, false_total, dry_days = [], 0, 0
    with tempfile.TemporaryDirectory() as work:
        for name, seed, leaks in homes:
            truths, found = run(name, seed, leaks, a.bin, a.days, work)
            rows, false = compare(truths, found)
            all_rows += rows
            false_total += len(false)
            if not leaks:
                dry_days += a.days
            print(f"## {name}: {len(truths)} true leaks, {len(found)} leak draws, "
                  f"{len(false)} false")
            for f in false:
                print(f"   false: {datetime.fromtimestamp(f[0], timezone.utc):%Y-%m-%d %H:%M} "
                      f"{(f[1] - f[0]) / 60:.0f} min {f[2]:.1f} L")
    print("| true leak | hours | liters | covered | pieces | liters found |")
    print("|---|---|---|---|---|---|")
    for kind, hours, liters, cov, pieces, got in all_rows:
        print(f"| {kind} | {hours:.1f} | {liters:.0f} | {cov * 100:.0f} % | {pieces} | {got:.0f} |")
    print(f"false leak draws: {false_total} in all ({dry_days} leak-free household-days)")


if __name__ == "__main__":
    main()
