#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian 12 machine with only the Rust toolchain:
# installs everything the tests call from Debian's packages, checks that every tool
# is really there (naming the package when one is not), then runs the format and
# lint checks, cargo test, and the package tests. Needs root, as CI runs it.
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi

# Every Debian package a test or script below calls: tool (or Python module) -> package.
TOOLS=(
    "python3:aiosmtpd python3-aiosmtpd"
    "python3:fusepy python3-fusepy"
    "python3:influxdb python3-influxdb"
    "chromium chromium"
    "openssl openssl"
    "influxd influxdb"
    "influx influxdb-client"
    "prometheus prometheus"
    "mosquitto mosquitto"
    "mosquitto_pub mosquitto-clients"
    "victoria-metrics victoria-metrics"
    "gdb gdb"
    "lintian lintian"
    "debootstrap debootstrap"
    "qemu-aarch64-static qemu-user-static"
    "aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu"
    "arm-linux-gnueabihf-gcc gcc-arm-linux-gnueabihf"
    "systemd-analyze systemd"
    "stress-ng stress-ng"
)
# Packages without a command of their own to check.
LIBS=(python3-venv libc6-dev-arm64-cross libc6-dev-armhf-cross)

present() {
    case "$1" in
    python3:*) /usr/bin/python3 -c "import ${1#python3:}" 2>/dev/null ;;
    *) command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ] ;;
    esac
}

need=()
for entry in "${TOOLS[@]}"; do
    read -r tool pkg <<<"$entry"
    present "$tool" || need+=("$pkg")
done
for pkg in "${LIBS[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "test.sh: installing ${need[*]}"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
missing=()
for entry in "${TOOLS[@]}"; do
    read -r tool pkg <<<"$entry"
    present "$tool" || missing+=("$tool (Debian package $pkg)")
done
if [ ${#missing[@]} -gt 0 ]; then
    printf 'test.sh: still missing after the install: %s\n' "${missing[@]}" >&2
    exit 1
fi
for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done

cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets "$@"

# The .deb packages, installed into a throwaway Debian root, and the ARM binaries
# under qemu. Like the disk tests above (a small tmpfs), this needs root, and fails
# saying so without it: a check that did not run never counts as passed.
bash packaging/test-deb.sh
