#!/usr/bin/env bash
# Long power-cut runs (docs/reliability.md), on the e2e power-cut test:
#   bench/powercut.sh [N]          N cuts on one accumulating store and N/2 on fresh
#                                  ones, instead of the suite's 9 + 6 (default 100);
#   bench/powercut.sh --long [N]   N cuts (default 300) on one store whose HTTP
#                                  writers fill one dense day past 500,000 events
#                                  (every start rebuilds that index from the journal).
# Needs root and python3-fusepy (./test.sh installs it). Release-optimised test
# build, so that the harness itself is not the bottleneck.
set -euo pipefail
cd "$(dirname "$0")/.."
long=0
if [ "${1:-}" = --long ]; then
    long=1
    shift
fi
n=${1:-$([ $long = 1 ] && echo 300 || echo 100)}
WATERMETER_POWERCUTS=$n WATERMETER_POWERCUTS_LONG=$long WATERMETER_TEST_START_SECS=300 \
    cargo test --release --test e2e \
    powercut::power_cuts_lose_no_acknowledged_liter -- --nocapture 2>&1 |
    grep -E -A4 "^power cuts:|test result|panicked|FAILED"
