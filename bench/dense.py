#!/usr/bin/env python3
"""Dense days and a long history, measured through the real binary (issue 23).

Three stores, each made the way users make them:
  ten-years  the 10-year household (gen_events.py, 1 meter, 3,650 days), imported
             with `watermeter import`;
  pulses-20k 20,000 UDP datagrams of 0.1 L over the last 24 hours, one at a time
             (an inductive or 0.1 L/pulse sensor);
  events-2m  2,000,000 events of 0.1 L over the last 24 hours, in HTTP batches of
             5,000 lines (a load test).
For each: the journal's size (its records, not the room made ahead), the index's
size on disk (every sled file), the rebuild time from the journal, the answer
times of the dashboard, the meter page's day and hour views, an InfluxQL hourly
panel and the draws API (medians of 5), and the process's RSS after all of them.
Not a test: the figures are for docs/performance.md.

Usage: bench/dense.py BINARY [--gen GEN_EVENTS] [--only NAME] [--keep DIR]
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def config(dir_, udp_port):
    path = os.path.join(dir_, "config.toml")
    with open(path, "w") as f:
        f.write(
            f'data_dir = "{dir_}/data"\ntimezone = "UTC"\n'
            f'[http]\nlisten = "127.0.0.1:0"\n'
            f'[udp]\nlisten = "127.0.0.1:{udp_port}"\n'
            f'[[meter]]\nid = "main"\nname = "House"\n'
        )
    return path


class Server:
    def __init__(self, binary, cfg, log):
        self.log = log
        self.proc = subprocess.Popen(
            [binary, "serve", "--config", cfg],
            stdout=subprocess.PIPE,
            stderr=open(log, "a"),
            text=True,
        )
        self.url = None
        deadline = time.time() + 300
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            m = re.search(r"(http://[0-9.:]+)/", line or "")
            if m:
                self.url = m.group(1)
                break
            if self.proc.poll() is not None:
                raise SystemExit(f"watermeter exited: see {log}")
        if not self.url:
            raise SystemExit("watermeter did not start within 300 s")

    def get(self, path):
        t = time.perf_counter()
        try:
            with urllib.request.urlopen(self.url + path, timeout=120) as r:
                body = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            body, status = e.read(), e.code
        return time.perf_counter() - t, status, body

    def post(self, path, body):
        req = urllib.request.Request(self.url + path, data=body, method="POST")
        with urllib.request.urlopen(req, timeout=300) as r:
            return r.status

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


def journal_bytes(data):
    """The journal's records: the file without the zeros made ahead of them."""
    with open(os.path.join(data, "journal"), "rb") as f:
        b = f.read()
    return len(b.rstrip(b"\0"))


def tree_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total


def median_time(server, path, n=5):
    times = []
    for _ in range(n):
        t, status, body = server.get(path)
        if status != 200:
            server.stop()
            raise SystemExit(f"{path}: {status} {body[:300]!r}")
        times.append(t)
    return statistics.median(times)


def rfc(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def load_ten_years(binary, cfg, gen, work):
    lp = os.path.join(work, "ten-years.lp")
    subprocess.run(
        [sys.executable, gen, "--meters", "1", "--days", "3650", "--start", "2016-01-01",
         "--meter-prefix", "main", "-o", lp],
        check=True,
    )
    # gen_events names meters <prefix>001: map it to "main".
    with open(lp) as f:
        text = f.read().replace("meter=main001", "meter=main")
    with open(lp, "w") as f:
        f.write(text)
    subprocess.run([binary, "import", "--config", cfg, lp], check=True,
                   stdout=subprocess.DEVNULL)
    last = int(text.rstrip().rsplit(" ", 1)[1]) // 1_000_000
    return last


def load_udp_pulses(server, udp_port, n, now_ms):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    start = now_ms - DAY_MS
    step = DAY_MS // n
    for i in range(n):
        ts_ns = (start + i * step) * 1_000_000
        s.sendto(f"water,meter=main liters=0.1 {ts_ns}".encode(), ("127.0.0.1", udp_port))
        time.sleep(0.0005)
    # Every datagram stored: wait for the total.
    want = n * 0.1
    deadline = time.time() + 120
    while time.time() < deadline:
        _, _, body = server.get("/api/v1/meters/main")
        if abs(json.loads(body)["total_liters"] - want) < 0.01:
            return
        time.sleep(0.5)
    raise SystemExit("not every UDP pulse was stored")


def load_http_events(server, n, now_ms, batch=5_000):
    start = now_ms - DAY_MS
    step_us = DAY_MS * 1000 // n
    for b in range(0, n, batch):
        lines = "".join(
            f"water,meter=main liters=0.1 {start * 1000 + (b + i) * step_us}\n"
            for i in range(min(batch, n - b))
        )
        status = server.post("/write?db=w&precision=u", lines.encode())
        if status != 204:
            raise SystemExit(f"write answered {status}")


def measure(name, binary, gen, keep):
    work = keep or tempfile.mkdtemp(prefix=f"wm-dense-{name}-", dir="/var/tmp")
    os.makedirs(work, exist_ok=True)
    udp_port = 18189
    cfg = config(work, udp_port)
    log = os.path.join(work, "log.txt")
    data = os.path.join(work, "data")
    now_ms = int(time.time() * 1000) // 60_000 * 60_000
    t = time.time()
    if name == "ten-years":
        last = load_ten_years(binary, cfg, gen, work)
        focus = last - DAY_MS // 2
        server = Server(binary, cfg, log)
    else:
        server = Server(binary, cfg, log)
        if name == "pulses-20k":
            load_udp_pulses(server, udp_port, 20_000, now_ms)
        else:
            load_http_events(server, 2_000_000, now_ms)
        focus = now_ms - 2 * HOUR_MS
    load_s = time.time() - t
    _, _, body = server.get("/api/v1/meters/main")
    total = json.loads(body)["total_liters"]
    server.stop()
    row = {
        "store": name,
        "liters": round(total, 1),
        "load_s": round(load_s, 1),
        "journal_bytes": journal_bytes(data),
        "index_bytes": tree_bytes(os.path.join(data, "index")),
    }
    row["index_per_journal"] = round(row["index_bytes"] / max(row["journal_bytes"], 1), 2)

    # Rebuild: an index that was not closed cleanly is rebuilt at start.
    os.remove(os.path.join(data, "index.state"))
    server = Server(binary, cfg, log)
    with open(log) as f:
        m = re.findall(r"rebuilt the index from the journal because .*? in ([0-9.]+) s", f.read())
    row["rebuild_s"] = float(m[-1]) if m else None
    row["rss_after_rebuild_mb"] = round(server.rss_kb() / 1024, 1)
    server.stop()
    # The reads, on a start that trusts the cleanly closed index.
    server = Server(binary, cfg, log)

    day = time.strftime("%Y-%m-%d", time.gmtime(focus / 1000))
    hour = time.strftime("%Y-%m-%dT%H", time.gmtime(focus / 1000))
    q = urllib.parse.urlencode({
        "db": "water",
        "epoch": "ms",
        "q": f'SELECT sum("liters") FROM "water" WHERE time >= {focus - DAY_MS}ms '
             f'AND time < {focus + HOUR_MS}ms GROUP BY time(1h) fill(0)',
    })
    draws_from, draws_to = focus - 12 * HOUR_MS, focus + 12 * HOUR_MS
    row["dashboard_ms"] = round(median_time(server, "/") * 1000, 1)
    row["day_view_ms"] = round(median_time(server, f"/meters/main?range=day&at={day}") * 1000, 1)
    row["hour_view_ms"] = round(median_time(server, f"/meters/main?range=hour&at={hour}") * 1000, 1)
    row["influxql_hourly_ms"] = round(median_time(server, f"/query?{q}") * 1000, 1)
    t, status, body = server.get(
        f"/api/v1/meters/main/draws?from={rfc(draws_from)}&to={rfc(draws_to)}"
    )
    row["draws_ms"] = round(t * 1000, 1)
    row["draws_status"] = status
    row["draws"] = len(json.loads(body).get("draws", [])) if status == 200 else body[:120].decode()
    row["rss_mb"] = round(server.rss_kb() / 1024, 1)
    server.stop()
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--gen", default=os.path.join(os.path.dirname(__file__), "../../shared/bench/gen_events.py"))
    ap.add_argument("--only", action="append")
    ap.add_argument("--keep", help="keep the store in this directory (one store only)")
    args = ap.parse_args()
    gen = args.gen if os.path.exists(args.gen) else "/work/shared/bench/gen_events.py"
    names = args.only or ["ten-years", "pulses-20k", "events-2m"]
    rows = []
    for name in names:
        row = measure(name, os.path.realpath(args.binary), gen, args.keep)
        print(json.dumps(row), flush=True)
        rows.append(row)
    cols = ["store", "liters", "journal_bytes", "index_bytes", "index_per_journal", "rebuild_s",
            "dashboard_ms", "day_view_ms", "hour_view_ms", "influxql_hourly_ms", "draws_ms",
            "rss_mb", "rss_after_rebuild_mb"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r.get(c)) for c in cols) + " |")


if __name__ == "__main__":
    main()
