#!/usr/bin/env bash
# A long power-cut run (docs/reliability.md): the e2e power-cut test with N cuts on
# one accumulating store and N/2 on fresh ones, instead of the suite's 9 + 6.
# Needs root and python3-fusepy (./test.sh installs it).
# Usage: bench/powercut.sh [N]   (default 100)
set -euo pipefail
cd "$(dirname "$0")/.."
WATERMETER_POWERCUTS=${1:-100} cargo test --test e2e \
    powercut::power_cuts_lose_no_acknowledged_liter -- --nocapture 2>&1 |
    grep -E -A4 "^power cuts:|test result|panicked|FAILED"
