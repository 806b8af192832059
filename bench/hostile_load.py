#!/usr/bin/env python3
"""Do writes and health checks wait behind heavy reads and corrections?

Starts the real binary on a fresh store holding a dense day (300,000 events of
0.1 L today) and ten years of a household (one liter an hour), then runs at
once, for --seconds: 50 clients sending worst-case InfluxQL (max() GROUP BY
time(1h) over ten years), 4 clients loading the dashboard, and one ten-year
`set_liters` correction every 5 s; meanwhile one client writes a point to
/write and one asks /healthz, one request after the other, and their latencies
are reported (p50, p99, max), with how many heavy reads were told to retry.

    bench/hostile_load.py [--bin target/release/watermeter] [--seconds 30]

Not a test: the figures are for docs/reliability.md.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from draws import free_port  # noqa: E402


def request(url, data=None, headers=None, timeout=60):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        e.read()
        status = e.code
    except OSError:
        status = 0
    return status, time.perf_counter() - t0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "watermeter"))
    ap.add_argument("--seconds", type=int, default=30)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        cfg = os.path.join(work, "c.toml")
        with open(cfg, "w") as f:
            f.write(f'data_dir = "{work}/data"\ntimezone = "UTC"\n[http]\nlisten = "127.0.0.1:{port}"\n'
                    '[[meter]]\nid = "main"\n')
        # Ten years, a liter an hour, and today 300,000 events of 0.1 L.
        now = int(time.time())
        lp = os.path.join(work, "history.lp")
        with open(lp, "w") as f:
            for h in range(1, 10 * 365 * 24):
                f.write(f"water,meter=main liters=1 {(now - h * 3600) * 10**9}\n")
            day = now - now % 86400
            step = max(1, (now - 60 - day) * 1000 // 300_000)
            for i in range(300_000):
                f.write(f"water,meter=main liters=0.1 {(day * 1000 + i * step) * 10**6}\n")
        subprocess.run([a.bin, "import", "--config", cfg, lp], check=True, capture_output=True)
        server = subprocess.Popen([a.bin, "serve", "--config", cfg], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                if request(base + "/healthz", timeout=2)[0] == 200:
                    break
                time.sleep(0.1)
            stop = time.time() + a.seconds
            statuses = {}
            lock = threading.Lock()

            def count(kind, status):
                with lock:
                    statuses.setdefault(kind, {}).setdefault(status, 0)
                    statuses[kind][status] += 1

            q = urllib.parse.quote('SELECT max("liters") FROM "water" WHERE time > now() - 3650d '
                                   'GROUP BY time(1h)')

            def heavy_query():
                while time.time() < stop:
                    count("query", request(f"{base}/query?q={q}")[0])

            def dashboard():
                while time.time() < stop:
                    count("dashboard", request(base + "/")[0])

            def corrections():
                frm = (datetime.now(timezone.utc) - timedelta(days=3650)).strftime("%Y-%m-%dT%H:%M:%SZ")
                to = (datetime.now(timezone.utc) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
                n = 0
                while time.time() < stop:
                    n += 1
                    body = json.dumps({"from": frm, "to": to, "action": "set_liters",
                                       "liters": 80000 + n, "reason": "load"}).encode()
                    count("correction", request(base + "/api/v1/meters/main/corrections", body,
                                                {"Content-Type": "application/json"})[0])
                    time.sleep(5)

            lat = {"write": [], "healthz": []}

            def writer():
                while time.time() < stop:
                    s, t = request(base + "/write", b"water,meter=main liters=1\n")
                    count("write", s)
                    lat["write"].append(t)

            def health():
                while time.time() < stop:
                    s, t = request(base + "/healthz")
                    count("healthz", s)
                    lat["healthz"].append(t)
                    time.sleep(0.05)

            threads = [threading.Thread(target=heavy_query) for _ in range(50)]
            threads += [threading.Thread(target=dashboard) for _ in range(4)]
            threads += [threading.Thread(target=f) for f in (corrections, writer, health)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rss = 0
            with open(f"/proc/{server.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        rss = int(line.split()[1]) // 1024
        finally:
            server.terminate()
            t0 = time.perf_counter()
            server.wait()
            term = time.perf_counter() - t0
        print(f"{a.seconds} s, 50 query clients, 4 dashboard clients, a ten-year correction every 5 s")
        print("| request | answers | p50 | p99 | max |")
        print("|---|---|---|---|---|")
        for k in ("write", "healthz"):
            xs = lat[k]
            print(f"| /{k} | {statuses.get(k)} | {pct(xs, .5) * 1000:.0f} ms | {pct(xs, .99) * 1000:.0f} ms "
                  f"| {max(xs) * 1000:.0f} ms |")
        for k in ("query", "dashboard", "correction"):
            print(f"| {k} | {statuses.get(k)} | | | |")
        print(f"peak RSS {rss} MB; SIGTERM to exit {term:.2f} s")


if __name__ == "__main__":
    main()
