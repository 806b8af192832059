#!/usr/bin/env bash
# Load test (issue 8): 50 concurrent dashboard clients for 60 s while 1,000 UDP
# pulses/s arrive. Checks that no pulse is lost (the stored total equals the
# number sent, exactly) and prints the page latency p50/p99 as wrk measures it.
#
# Not part of `cargo test`: it takes over a minute and measures, never asserts speed.
#
#   bench/load.sh                       # target/release/watermeter (cargo build --release)
#   WATERMETER_BIN=target/debug/watermeter bench/load.sh
#   DURATION=60 CLIENTS=50 RATE=1000 PAGE=/ bench/load.sh
#
# Needs: wrk (apt-get install wrk), curl, python3. With a binary that has
# `hash-password`, the dashboard runs with [http.auth] on and wrk sends a session
# cookie, so the login check is part of what is measured.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${WATERMETER_BIN:-target/release/watermeter}
DURATION=${DURATION:-60}
CLIENTS=${CLIENTS:-50}
RATE=${RATE:-1000}
PAGE=${PAGE:-/}
THREADS=${THREADS:-2}

for tool in wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "load.sh: $tool is missing (apt-get install $tool)" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "load.sh: no binary at $BIN; build it or set WATERMETER_BIN" >&2; exit 2; }

work=$(mktemp -d)
server=
cleanup() {
    [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

auth=
password="load-test-$RANDOM-$RANDOM"
if hash=$(printf '%s\n' "$password" | "$BIN" hash-password 2>/dev/null) && [ -n "$hash" ]; then
    auth=$(printf '[http.auth]\nusername = "load"\npassword_hash = "%s"\n' "$hash")
fi
cat >"$work/config.toml" <<EOF
data_dir = "$work/data"
timezone = "UTC"

[http]
listen = "127.0.0.1:0"
$auth

[udp]
listen = "127.0.0.1:0"

[[meter]]
id = "main"
name = "House"
EOF

WATERMETER_LOG=warn "$BIN" serve --config "$work/config.toml" >"$work/stdout" 2>"$work/log" &
server=$!
for _ in $(seq 600); do
    grep -q "line protocol over UDP" "$work/stdout" 2>/dev/null && break
    sleep 0.1
done
http=$(sed -n 's|^watermeter: dashboard at http://\(.*\)/$|\1|p' "$work/stdout")
udp=$(sed -n 's|^watermeter: line protocol over UDP on ||p' "$work/stdout")
[ -n "$http" ] && [ -n "$udp" ] || { echo "load.sh: the server did not start:" >&2; cat "$work/log" >&2; exit 1; }

cookie=
if [ -n "$auth" ]; then
    jar="$work/jar"
    page=$(curl -s -c "$jar" "http://$http/login")
    csrf=$(printf '%s' "$page" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' | head -1)
    curl -s -b "$jar" -c "$jar" -o /dev/null \
        --data-urlencode "csrf=$csrf" --data-urlencode "username=load" \
        --data-urlencode "password=$password" "http://$http/login"
    session=$(awk '$6 == "wm_session" { print $7 }' "$jar")
    [ -n "$session" ] || { echo "load.sh: signing in failed" >&2; exit 1; }
    cookie="wm_session=$session"
fi
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "http://$http$PAGE")
[ "$status" = 200 ] || { echo "load.sh: $PAGE answers $status, not 200" >&2; exit 1; }

before=$(curl -s -H "Cookie: $cookie" "http://$http/api/v1/meters/main" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["total_liters"])')

# Paced sender: bursts of RATE/100 datagrams every 10 ms, one pulse each.
python3 - "$udp" "$RATE" "$DURATION" >"$work/sent" <<'EOF' &
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
rate, duration = int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
line = b"water,meter=main liters=1"
start, sent, tick = time.perf_counter(), 0, 0
while True:
    tick += 1
    due = start + tick * 0.01
    if due - start > duration:
        break
    target = min(int(rate * tick * 0.01), int(rate * duration))
    while sent < target:
        s.sendto(line, (host, int(port)))
        sent += 1
    pause = due - time.perf_counter()
    if pause > 0:
        time.sleep(pause)
print(sent)
EOF
sender=$!

wrk -t"$THREADS" -c"$CLIENTS" -d"${DURATION}s" --timeout 10s --latency \
    ${cookie:+-H "Cookie: $cookie"} "http://$http$PAGE" >"$work/wrk"
wait "$sender"
sent=$(cat "$work/sent")

# Everything sent must be stored: poll (the writer flushes within flush_ms).
expected=$(python3 -c "print($before + $sent)")
stored=
for _ in $(seq 100); do
    stored=$(curl -s -H "Cookie: $cookie" "http://$http/api/v1/meters/main" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["total_liters"])')
    python3 -c "import sys; sys.exit(0 if abs($stored - $expected) < 1e-6 else 1)" && break
    sleep 0.1
done

p50=$(awk '$1 == "50%" { print $2 }' "$work/wrk")
p99=$(awk '$1 == "99%" { print $2 }' "$work/wrk")
rps=$(awk '$1 == "Requests/sec:" { print $2 }' "$work/wrk")
non2xx=$(awk '/Non-2xx/ { print $5 }' "$work/wrk")
errors=$(grep -E "Socket errors" "$work/wrk" || true)
cat "$work/wrk"
echo
echo "binary:          $BIN ($(if [ -n "$auth" ]; then echo "login on, session cookie"; else echo "no login"; fi))"
echo "dashboard:       $CLIENTS clients on $PAGE for ${DURATION}s: $rps pages/s, p50 $p50, p99 $p99${non2xx:+, $non2xx non-2xx}${errors:+, $errors}"
echo "udp pulses:      sent $sent at ${RATE}/s, stored $(python3 -c "print($stored - $before)")"
if python3 -c "import sys; sys.exit(0 if abs($stored - $expected) < 1e-6 else 1)"; then
    echo "result:          no pulse lost"
else
    echo "result:          LOST $(python3 -c "print($expected - $stored)") pulses" >&2
    exit 1
fi
