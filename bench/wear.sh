#!/usr/bin/env bash
# SD card wear, measured (docs/reliability.md): bytes a watermeter process writes
# (/proc/PID/io write_bytes: pages it dirtied, as the kernel counts them) while
# idle, and per pulse at one pulse every 2 s (a running shower), each pulse a UDP
# datagram. The data directory lives on the disk under test (default /var/tmp).
# Usage: bench/wear.sh [BINARY] [SECONDS]   (default target/release/watermeter, 120)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/watermeter}
SECS=${2:-120}
DIR=$(mktemp -d /var/tmp/watermeter-wear.XXXXXX)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$DIR"' EXIT
cat >"$DIR/config.toml" <<TOML
data_dir = "$DIR/data"
timezone = "Europe/Vienna"
[http]
listen = "127.0.0.1:0"
[udp]
listen = "127.0.0.1:18089"
[[meter]]
id = "main"
name = "House"
TOML
"$BIN" serve --config "$DIR/config.toml" >"$DIR/out" 2>"$DIR/err" &
PID=$!
sleep 3
written() { awk '/^write_bytes/ {print $2}' "/proc/$PID/io"; }

# Idle: nothing arrives.
a=$(written); sleep 30; b=$(written)
echo "idle: $(( (b - a) / 30 )) B/s over 30 s"

# A running shower: one pulse every 2 s.
n=$((SECS / 2))
a=$(written)
for _ in $(seq "$n"); do
    printf 'water,meter=main liters=1' >/dev/udp/127.0.0.1/18089
    sleep 2
done
sleep 2
b=$(written)
echo "one pulse every 2 s: $(( (b - a) / n )) B per pulse over $n pulses"
