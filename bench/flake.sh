#!/usr/bin/env bash
# The suite must not flake on a loaded machine: runs ./test.sh N times in a row
# (default 3) with a CPU-bound process beside it (stress-ng on one core; test.sh
# installs stress-ng), and stops at the first failure. The figures of the last
# run are in docs/reliability.md, "How it is tested".
#
#   bench/flake.sh        # three runs
#   bench/flake.sh 1 --test e2e   # one run, arguments passed to cargo test
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
shift || true
command -v stress-ng >/dev/null || { apt-get update -qq && apt-get install -y -qq stress-ng; }
stress-ng --cpu 1 --timeout 0 --quiet &
hog=$!
trap 'kill $hog 2>/dev/null || true' EXIT
for i in $(seq 1 "$runs"); do
    started=$(date +%s)
    ./test.sh "$@" >"/tmp/flake-run-$i.log" 2>&1 || {
        echo "run $i failed; its log: /tmp/flake-run-$i.log"
        grep -E "panicked|FAILED" "/tmp/flake-run-$i.log" | head -20
        exit 1
    }
    echo "run $i passed in $(($(date +%s) - started)) s beside stress-ng --cpu 1"
done
