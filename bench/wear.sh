#!/usr/bin/env bash
# SD card wear, measured (docs/performance.md, "Wear"): bytes written while idle,
# and per pulse at one pulse every 2 s (a running shower), each pulse a UDP
# datagram made durable on its own (flush_ms 500), on an empty day and on a day
# that already holds 20,000 events (a 0.1 L/pulse sensor; sent over HTTP first).
#
# Two figures per case:
# - process: /proc/PID/io write_bytes, the pages the process dirtied as the
#   kernel counts them;
# - device: sectors the block device wrote (/sys/block/loopN/stat), the file
#   system's own journal commits included. As root the data directory is on a
#   fresh ext4 file system in a loop device, so only watermeter writes there;
#   otherwise it is /var/tmp and this column says "-".
# Usage: bench/wear.sh [BINARY] [SECONDS]   (default target/release/watermeter, 300)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/watermeter}")
SECS=${2:-300}
WORK=$(mktemp -d /var/tmp/watermeter-wear.XXXXXX)
PID=
LOOP=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    if [ -n "$LOOP" ]; then
        umount "$WORK/mnt" 2>/dev/null || true
        losetup -d "$LOOP" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null; then
    truncate -s 512M "$WORK/disk.img"
    mkfs.ext4 -q -F "$WORK/disk.img"
    LOOP=$(losetup --find --show "$WORK/disk.img")
    mkdir -p "$WORK/mnt"
    mount "$LOOP" "$WORK/mnt"
    DATA_ROOT=$WORK/mnt
else
    DATA_ROOT=$WORK
fi
UDP_PORT=18089

device_bytes() {
    if [ -n "$LOOP" ]; then
        sync -f "$WORK/mnt" 2>/dev/null || true
        awk '{print $7 * 512}' "/sys/block/$(basename "$LOOP")/stat"
    else
        echo 0
    fi
}
process_bytes() { awk '/^write_bytes/ {print $2}' "/proc/$PID/io"; }

start() {
    local name=$1
    mkdir -p "$DATA_ROOT/$name"
    cat >"$WORK/$name.toml" <<TOML
data_dir = "$DATA_ROOT/$name/data"
timezone = "UTC"
[store]
flush_ms = 500
[http]
listen = "127.0.0.1:0"
[udp]
listen = "127.0.0.1:$UDP_PORT"
[[meter]]
id = "main"
name = "House"
TOML
    "$BIN" serve --config "$WORK/$name.toml" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PID=$!
    for _ in $(seq 100); do
        grep -q "http://" "$WORK/$name.out" 2>/dev/null && break
        sleep 0.1
    done
    HTTP=$(grep -o 'http://[0-9.:]*' "$WORK/$name.out" | head -1)
}

stop() {
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    PID=
}

# Pulses over UDP, one every 2 s; prints "process device" bytes per pulse.
pulses() {
    local n=$((SECS / 2)) a b da db
    a=$(process_bytes)
    da=$(device_bytes)
    for _ in $(seq "$n"); do
        printf 'water,meter=main liters=1' >"/dev/udp/127.0.0.1/$UDP_PORT"
        sleep 2
    done
    sleep 1
    b=$(process_bytes)
    db=$(device_bytes)
    echo "$(((b - a) / n)) $(((db - da) / n)) $n"
}

show() {
    local label=$1 process=$2 device=$3 n=$4
    if [ -n "$LOOP" ]; then
        echo "$label: $process B per pulse (process), $device B per pulse (device) over $n pulses"
    else
        echo "$label: $process B per pulse (process), - (device) over $n pulses"
    fi
}

# An empty day, and idle before it.
start empty
sleep 3
a=$(process_bytes)
da=$(device_bytes)
sleep 30
b=$(process_bytes)
db=$(device_bytes)
echo "idle: $(((b - a) / 30)) B/s (process), $(((db - da) / 30)) B/s (device) over 30 s"
read -r p d n <<<"$(pulses)"
show "one pulse every 2 s, empty day" "$p" "$d" "$n"
stop

# A day that already holds 20,000 events of 0.1 L since midnight (UTC).
start dense
midnight=$(($(date -u +%s) / 86400 * 86400))
now=$(date -u +%s)
python3 - "$HTTP" "$midnight" "$now" <<'PY'
import sys, urllib.request
url, midnight, now = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
span = max(now - midnight - 60, 600) * 1000
step = span // 20_000
for batch in range(40):
    lines = "".join(
        f"water,meter=main liters=0.1 {midnight * 1000 + (batch * 500 + i) * step}\n"
        for i in range(500)
    )
    req = urllib.request.Request(f"{url}/write?db=w&precision=ms", data=lines.encode(), method="POST")
    assert urllib.request.urlopen(req).status == 204
PY
sleep 3
read -r p d n <<<"$(pulses)"
show "one pulse every 2 s, a day of 20,000 events" "$p" "$d" "$n"
stop
