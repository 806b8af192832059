#!/usr/bin/env bash
# Runs every cargo-fuzz target for a given time (default 600 s each), one after
# the other, on a working copy of its corpus (tests/corpus/<target> stays the
# small checked-in seed set that `cargo test` replays). Needs a nightly toolchain;
# installs cargo-fuzz when it is missing. Prints one line per target:
#   <target> <seconds> s: <runs> runs, <crashes> crashes
# and exits 1 when any target crashed (the input is kept in fuzz/artifacts/).
#
#   bench/fuzz.sh            # 10 minutes per target
#   bench/fuzz.sh 60 influxql wmbus
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(line_protocol config influxql wmbus)

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

failed=0
for t in "${targets[@]}"; do
    work="corpus/$t"
    mkdir -p "$work"
    cp -n ../tests/corpus/"$t"/* "$work"/ 2>/dev/null || true
    dict=()
    [ -f "$t.dict" ] && dict=(-dict="$t.dict")
    log=$(mktemp)
    if cargo +nightly fuzz run "$t" -s none "$work" -- -max_total_time="$secs" \
        -rss_limit_mb=2048 "${dict[@]}" >"$log" 2>&1; then
        crashes=0
    else
        crashes=1
        failed=1
    fi
    runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
    echo "$t $secs s: $runs runs, $crashes crashes"
    [ "$crashes" = 0 ] || tail -40 "$log"
    rm -f "$log"
done
exit $failed
