#!/usr/bin/env python3
"""Grafana's InfluxQL panel queries against watermeter and influxd, side by side.

Both must already hold the same history (docs/performance.md: a 10-year
gen_events.py file imported with `watermeter import` and written to influxd).
One kept-alive HTTP connection per system, as Grafana's pooled client connects;
prints the median of ROUNDS rounds of N queries each and the ratio.

    bench/panels.py --wm 127.0.0.1:18090 --influx 127.0.0.1:18086 [--db water]
"""
import argparse
import http.client
import statistics
import time
import urllib.parse

# 2015-11-30 .. 2025-11-27 is the generated decade; the last 30 days end with it.
DECADE = "time >= 1448841600000ms and time < 1764201600000ms"
MONTH = "time >= 1761609600000ms and time < 1764201600000ms"
PANELS = [
    ("sum by time(1d) over 10 years", f'SELECT sum("liters") FROM "water" WHERE {DECADE} GROUP BY time(1d) fill(null)', 3),
    ("sum over 10 years", f'SELECT sum("liters") FROM "water" WHERE {DECADE}', 3),
    ("max, count by time(30d) over 10 years", f'SELECT max("liters"), count("liters") FROM "water" WHERE {DECADE} GROUP BY time(30d) fill(null)', 3),
    ("sum by time(1h) over 30 days", f'SELECT sum("liters") FROM "water" WHERE {MONTH} GROUP BY time(1h) fill(null)', 7),
    ("SHOW MEASUREMENTS (the round trip)", "SHOW MEASUREMENTS", 3),
]


def median_ms(addr, db, q, n):
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port))
    path = "/query?" + urllib.parse.urlencode({"db": db, "epoch": "ms", "q": q})
    times = []
    for _ in range(n + 3):
        t = time.perf_counter()
        c.request("GET", path)
        c.getresponse().read()
        times.append(time.perf_counter() - t)
    return statistics.median(times[3:]) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wm", required=True)
    ap.add_argument("--influx", required=True)
    ap.add_argument("--db", default="water")
    ap.add_argument("-n", type=int, default=31)
    a = ap.parse_args()
    print("| panel query | watermeter | influxd | ratio |\n|---|---|---|---|")
    for name, q, rounds in PANELS:
        w = statistics.median(median_ms(a.wm, a.db, q, a.n) for _ in range(rounds))
        i = statistics.median(median_ms(a.influx, a.db, q, max(a.n // 3, 5)) for _ in range(rounds))
        print(f"| {name} | {w:.2f} ms | {i:.2f} ms | {w / i:.3f}× |")


if __name__ == "__main__":
    main()
