#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with only the Rust toolchain:
# installs what the tests need from Debian's packages, then runs cargo test.
set -euo pipefail
cd "$(dirname "$0")"

need=()
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || need+=(python3-aiosmtpd)
command -v chromium >/dev/null || need+=(chromium)
command -v openssl >/dev/null || need+=(openssl)
for pkg in influxdb influxdb-client prometheus mosquitto mosquitto-clients python3-venv; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    echo "test.sh: installing ${need[*]}"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo test --all-targets "$@"

# The .deb packages, installed into a throwaway Debian root, and the ARM binaries
# under qemu. Like the disk tests above (a small tmpfs), this needs root, and fails
# saying so without it: a check that did not run never counts as passed.
bash packaging/test-deb.sh
