#!/usr/bin/env bash
# watermeter vs InfluxDB 1.x, side by side on this machine (issue 7).
#
#   bench/compare.sh                    # full run, median of 3, about 30 min on 2 cores
#   bench/compare.sh --quick            # one repetition, short UDP runs: a few minutes
#   bench/compare.sh --only-watermeter  # watermeter alone: HTTP points/s, UDP rate with
#                                       # zero loss, query latency, idle RSS, bytes/event
#   bench/compare.sh --only-udp [--unpaced-only]  # the UDP measurements alone
#   (--quick and --only-watermeter combine; other flags go to the bench tool)
#
# Generates the workloads once into bench/out/cache (gitignored), builds the release
# binary and the bench tool (examples/bench), starts both servers on 127.0.0.1 with
# temp dirs, and prints the table (also written to bench/out/results.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
gen=${GEN_EVENTS:-$root/../../shared/bench/gen_events.py}
[ -f "$gen" ] || gen=/work/shared/bench/gen_events.py
cache=$root/bench/out/cache
mkdir -p "$cache"

only_wm=0
for a in "$@"; do [ "$a" = --only-watermeter ] && only_wm=1; done
if [ $only_wm = 0 ] && ! command -v influxd >/dev/null; then
    echo "compare.sh: installing InfluxDB 1.x from Debian" >&2
    apt-get install -y influxdb influxdb-client >&2
fi

make_workload() { # file meters days start
    if [ ! -s "$cache/$1" ]; then
        echo "compare.sh: generating $1 ($2 meter(s) × $3 days)" >&2
        python3 "$gen" --meters "$2" --days "$3" --start "$4" -o "$cache/$1.tmp"
        mv "$cache/$1.tmp" "$cache/$1"
    fi
}
make_workload m1y.lp 1 365 2023-01-01
make_workload m50y.lp 50 365 2023-01-01
make_workload m1x10y.lp 1 3652 2015-01-01

cargo build --release --bin watermeter --example bench >&2
target=${CARGO_TARGET_DIR:-$root/target}
echo "compare.sh: $(nproc) cores, $(awk '/MemTotal/ {print int($2/1024)" MB"}' /proc/meminfo), $(influxd version 2>/dev/null || echo 'no influxd')" >&2
exec "$target/release/examples/bench" --cache "$cache" --scratch "$root/bench/out/scratch" \
    --bin "$target/release/watermeter" --out "$root/bench/out/results.md" "$@"
