#!/usr/bin/env python3
"""A store made by an older watermeter, opened by a newer one (issue 23): the newer
binary must rebuild the old index once and answer exactly as the older one did.

The older binary makes the store the way users do: 60 days of a household
(gen_events.py) imported, a correction through the API, a reading set on the
dashboard, UDP pulses and counter values; then it answers the questions the
pages ask (the meter, usage by month, day, hour and minute, the draws of three
days, an InfluxQL hourly panel, the corrections' audit) and stops cleanly. The
newer binary opens the same data directory and must give the same answers, and
a second start must not rebuild again.

Usage: bench/migrate_check.py OLD_BINARY NEW_BINARY
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

GEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../shared/bench/gen_events.py")


def start(binary, cfg, log):
    proc = subprocess.Popen([binary, "serve", "--config", cfg], stdout=subprocess.PIPE,
                            stderr=open(log, "a"), text=True)
    while True:
        line = proc.stdout.readline()
        m = re.search(r"(http://[0-9.:]+)/", line or "")
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            raise SystemExit(f"{binary} exited: see {log}")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


def post(url, body, kind="application/json"):
    req = urllib.request.Request(url, data=body.encode(), method="POST",
                                 headers={"Content-Type": kind})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status


def answers(url):
    out = {}
    out["meter"] = get(f"{url}/api/v1/meters/main")
    out["meter"].pop("flow_l_per_min", None)
    for step, span in [("month", ("2026-01-01", "2026-04-01")), ("day", ("2026-01-01", "2026-03-02")),
                       ("hour", ("2026-02-10", "2026-02-12")), ("minute", ("2026-02-11T06:00:00Z", "2026-02-11T09:00:00Z"))]:
        a, b = span
        a = a if "T" in a else a + "T00:00:00Z"
        b = b if "T" in b else b + "T00:00:00Z"
        out[f"usage-{step}"] = get(f"{url}/api/v1/meters/main/usage?from={a}&to={b}&step={step}")
    for day in ["2026-01-15", "2026-02-11", "2026-02-25"]:
        out[f"draws-{day}"] = get(f"{url}/api/v1/meters/main/draws?from={day}T00:00:00Z&to={day}T23:59:59Z")
    q = urllib.parse.urlencode({"db": "w", "epoch": "ms", "q":
        'SELECT sum("liters") FROM "water" WHERE time >= \'2026-02-01T00:00:00Z\' '
        'AND time < \'2026-02-08T00:00:00Z\' GROUP BY time(1h) fill(0)'})
    out["influxql"] = get(f"{url}/query?{q}")
    out["counter"] = get(f"{url}/api/v1/meters/counter")
    out["counter"].pop("flow_l_per_min", None)
    out["corrections"] = get(f"{url}/api/v1/meters/main/corrections")
    return out


def main():
    old, new = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="wm-migrate-", dir="/var/tmp")
    cfg = os.path.join(work, "config.toml")
    udp = 18289
    with open(cfg, "w") as f:
        f.write(f'data_dir = "{work}/data"\ntimezone = "Europe/Berlin"\n[http]\nlisten = "127.0.0.1:0"\n'
                f'[udp]\nlisten = "127.0.0.1:{udp}"\n[[meter]]\nid = "main"\nname = "House"\n'
                f'[[meter]]\nid = "counter"\nname = "Garden"\n'
                f'[meter.line_protocol]\nmeasurement = "water"\ntags = {{ meter = "counter" }}\ncounter_field = "total"\n')
    lp = os.path.join(work, "history.lp")
    subprocess.run([sys.executable, GEN, "--meters", "1", "--days", "60", "--start", "2026-01-01",
                    "--tz", "Europe/Berlin", "-o", lp], check=True)
    with open(lp) as f:
        text = f.read().replace("meter=m001", "meter=main")
    with open(lp, "w") as f:
        f.write(text)
    log = os.path.join(work, "log.txt")
    subprocess.run([old, "import", "--config", cfg, lp], check=True, stdout=subprocess.DEVNULL,
                   stderr=open(log, "a"))
    proc, url = start(old, cfg, log)
    post(f"{url}/api/v1/meters/main/corrections", json.dumps({
        "from": "2026-02-11T07:00:00Z", "to": "2026-02-11T08:00:00Z",
        "action": "set_liters", "liters": 12.5, "reason": "misread"}))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    base = 1_771_000_000_000  # 2026-02-13
    for i in range(200):
        s.sendto(f"water,meter=main liters=1 {(base + i * 7_000) * 1_000_000}".encode(), ("127.0.0.1", udp))
    for i, total in enumerate([100, 101, 104, 3, 9, 9, 20]):  # a reboot in the middle
        s.sendto(f"water,meter=counter total={total}i {(base + i * 60_000) * 1_000_000}".encode(),
                 ("127.0.0.1", udp))
    time.sleep(2)
    before = answers(url)
    stop(proc)
    proc, url = start(new, cfg, log)
    after = answers(url)
    stop(proc)
    with open(log) as f:
        rebuilt = [l for l in f if "rebuilt the index" in l]
    proc, url = start(new, cfg, log)
    again = answers(url)
    stop(proc)
    with open(log) as f:
        rebuilt_again = [l for l in f if "rebuilt the index" in l]
    # The answers compared hold something.
    assert before["meter"]["total_liters"] > 20_000, before["meter"]
    assert all(len(before[f"draws-{d}"]["draws"]) > 5 for d in ["2026-01-15", "2026-02-11", "2026-02-25"])
    assert before["counter"]["total_liters"] == 24, before["counter"]
    assert len(before["corrections"]["corrections"]) == 1, before["corrections"]
    ok = True
    for key in before:
        same = before[key] == after[key] == again[key]
        ok &= same
        print(f"{'same' if same else 'DIFFERENT'}: {key}")
        if not same:
            print("  before:", json.dumps(before[key])[:400])
            print("  after: ", json.dumps(after[key])[:400])
    print("rebuilt at the first start of the new binary:", rebuilt[-1].strip() if rebuilt else "no")
    print("rebuilt again at the second start:", "yes" if len(rebuilt_again) > len(rebuilt) else "no")
    ok &= len(rebuilt) == 1 and len(rebuilt_again) == 1
    print("migration check:", "passed" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
