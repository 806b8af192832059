#!/usr/bin/env bash
# Validates docs/nodemcu/watermeter-nodemcu.yaml with `esphome config` (no compile).
# Installs the `esphome` package from PyPI into a venv under target/ on first use
# (a few minutes and ~300 MB; later runs reuse it). Needs python3 with venv.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${CARGO_TARGET_DIR:-$root/target}/esphome-venv"
if [ ! -x "$venv/bin/esphome" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check esphome
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$root/docs/nodemcu/watermeter-nodemcu.yaml" "$work/"
# The real secrets.yaml stays on the user's machine; these placeholders only let
# `esphome config` resolve the !secret references.
cat > "$work/secrets.yaml" <<'SECRETS'
wifi_ssid: "example-ssid"
wifi_password: "example-password"
ota_password: "example-ota-password"
SECRETS
cd "$work"
"$venv/bin/esphome" config watermeter-nodemcu.yaml >/dev/null
echo "esphome config: docs/nodemcu/watermeter-nodemcu.yaml is valid"
