#!/usr/bin/env bash
# Dense days and a long history (docs/performance.md, "Dense days"): builds the
# release binary and runs bench/dense.py on the three stores of issue 23 (10-year
# household, 20,000 UDP pulses in a day, 2 million events in a day). About 10 min.
# Usage: bench/dense.sh [--only ten-years|pulses-20k|events-2m]...
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin watermeter >&2
exec python3 bench/dense.py "${CARGO_TARGET_DIR:-target}/release/watermeter" "$@"
