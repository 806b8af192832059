#!/usr/bin/env bash
# Builds the watermeter .deb packages on a Debian 12 (bookworm) amd64 machine:
#   watermeter_X.Y.Z-1_amd64.deb  (rustup's native toolchain)
#   watermeter_X.Y.Z-1_arm64.deb  (aarch64-unknown-linux-gnu, Debian's aarch64 gcc as linker)
#   watermeter_X.Y.Z-1_armhf.deb  (armv7-unknown-linux-gnueabihf, Debian's armhf gcc as linker)
# into $OUT_DIR (default: <cargo target dir>/debian), and prints their paths and sizes.
# Installs what it misses (Debian packages, cargo-deb, rustup targets); safe to re-run:
# cargo only rebuilds what changed and cargo-deb overwrites the packages.
#
# Usage: packaging/build-debs.sh [amd64] [arm64] [armhf]     (no argument: all three)
set -euo pipefail

cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
OUT_DIR=${OUT_DIR:-$TARGET_DIR/debian}
ARCHES=("$@")
[ ${#ARCHES[@]} -gt 0 ] || ARCHES=(amd64 arm64 armhf)

log() { echo "build-debs: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Rust target triple and Debian cross-toolchain prefix for each Debian architecture.
triple_of() {
	case "$1" in
	amd64) echo x86_64-unknown-linux-gnu ;;
	arm64) echo aarch64-unknown-linux-gnu ;;
	armhf) echo armv7-unknown-linux-gnueabihf ;;
	*) die "unknown architecture '$1' (use amd64, arm64 or armhf)" ;;
	esac
}
gcc_prefix_of() {
	case "$1" in
	arm64) echo aarch64-linux-gnu ;;
	armhf) echo arm-linux-gnueabihf ;;
	esac
}

ensure_debian_packages() {
	local missing=() pkg
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
	log "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_cargo_deb() {
	if ! cargo deb --version >/dev/null 2>&1; then
		log "installing cargo-deb (a few minutes, once)"
		cargo install cargo-deb --locked
	fi
}

ensure_rust_target() {
	rustup target list --installed | grep -qx "$1" || rustup target add "$1"
}

# The packaged config is the repository's documented example: one file, not two.
[ -f config.example.toml ] || die "config.example.toml is missing: it is shipped as /etc/watermeter/config.toml"
[ -f README.md ] || die "README.md is missing: it is shipped in /usr/share/doc/watermeter"

debs=(dpkg-dev)
for arch in "${ARCHES[@]}"; do
	case "$arch" in
	arm64) debs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
	armhf) debs+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross) ;;
	amd64) ;;
	*) triple_of "$arch" >/dev/null ;;
	esac
done
ensure_debian_packages "${debs[@]}"
ensure_cargo_deb
mkdir -p "$OUT_DIR"

host_triple=$(rustc -vV | sed -n 's/^host: //p')
built=()
for arch in "${ARCHES[@]}"; do
	triple=$(triple_of "$arch")
	args=(--output "$OUT_DIR" --no-strip)
	if [ "$triple" != "$host_triple" ]; then
		ensure_rust_target "$triple"
		prefix=$(gcc_prefix_of "$arch")
		env_triple=$(echo "$triple" | tr 'a-z-' 'A-Z_')
		# Same as .cargo/config.toml; set here too so the script works from any config.
		export "CARGO_TARGET_${env_triple}_LINKER=${prefix}-gcc"
		# For any crate that compiles C through the cc crate.
		export "CC_${triple//-/_}=${prefix}-gcc" "AR_${triple//-/_}=${prefix}-ar"
		args+=(--target "$triple")
	fi
	log "building $arch ($triple)"
	deb=$(cargo deb "${args[@]}" | tail -n 1)
	[ -f "$deb" ] || die "cargo deb did not report a package for $arch"
	built+=("$deb")
done

log "packages in $OUT_DIR:"
for deb in "${built[@]}"; do
	size=$(stat -c %s "$deb")
	installed=$(dpkg-deb -f "$deb" Installed-Size)
	printf '%s\t%d KiB (.deb)\t%d KiB installed\n' "$deb" $(((size + 1023) / 1024)) "$installed"
done
