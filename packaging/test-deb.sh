#!/usr/bin/env bash
# Check functions run through check(), which shellcheck cannot follow.
# shellcheck disable=SC2317
# Tests the watermeter .deb packages the way a user meets them:
#   - builds all three packages (packaging/build-debs.sh);
#   - checks names, installed sizes, glibc symbol versions and lintian for each;
#   - installs the amd64 package with `dpkg -i` into a throwaway Debian 12 root made by
#     debootstrap (not on this machine), checks files, user, group, conffile, permissions,
#     runs `watermeter --version` and `check-config` as installed and as the service user,
#     verifies the unit and its security score, then upgrade, remove and purge;
#   - runs the arm64 and armhf binaries under qemu-user (`--version`, `check-config`,
#     `gpio-test` refusing with the not-a-Pi message).
# Needs root (debootstrap, chroot, dpkg -i); fails with a message otherwise.
# The last line reads "deb tests: N passed, M failed".
#
# Environment: DEB_TEST_ARCHES (default "amd64 arm64 armhf"; amd64 is always tested),
# DEB_TEST_NO_BUILD=1 tests the packages already in $OUT_DIR, DEB_TEST_CACHE (default /var/cache/watermeter-deb-test) keeps the
# bootstrapped root as a tarball so later runs skip debootstrap; DEB_TEST_MIRROR
# overrides the Debian mirror (default: the first one in this machine's apt sources).
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
REPO=$PWD
if [ "$(id -u)" -ne 0 ]; then
	echo "deb tests: FAILED: they need root (debootstrap, chroot, dpkg -i), and nothing was checked; run: sudo $0" >&2
	exit 1
fi

TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
OUT_DIR=${OUT_DIR:-$TARGET_DIR/debian}
CACHE=${DEB_TEST_CACHE:-/var/cache/watermeter-deb-test}
SUITE=bookworm
MAX_SECURITY=2.0
MAX_INSTALLED_KIB=15360
MAX_GLIBC=2.34
read -r -a ARCHES <<<"${DEB_TEST_ARCHES:-amd64 arm64 armhf}"
[[ " ${ARCHES[*]} " == *" amd64 "* ]] || ARCHES=(amd64 "${ARCHES[@]}")
CONF=/etc/watermeter/config.toml

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
not_ok() {
	failed=$((failed + 1))
	echo "FAIL $1"
	[ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/     | /' | head -n 30
}
# check NAME CMD...: one test; passes when CMD exits 0, shows CMD's output when it fails.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "$out"; fi
}
finish() {
	echo "deb tests: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)

# --- Build ------------------------------------------------------------------
if [ "${DEB_TEST_NO_BUILD:-}" != 1 ]; then
	echo "== building the packages (packaging/build-debs.sh ${ARCHES[*]})"
	if ! OUT_DIR=$OUT_DIR packaging/build-debs.sh "${ARCHES[@]}"; then
		not_ok "build-debs.sh builds ${ARCHES[*]}"
		finish
	fi
	ok "build-debs.sh builds ${ARCHES[*]}"
fi

deb_of() { echo "$OUT_DIR/watermeter_${VERSION}-1_$1.deb"; }
for arch in "${ARCHES[@]}"; do
	[ -f "$(deb_of "$arch")" ] || { not_ok "package $(basename "$(deb_of "$arch")") exists"; finish; }
done
ok "packages are named watermeter_${VERSION}-1_<arch>.deb (${ARCHES[*]})"

# The binary of a package, unpacked once for the checks below.
UNPACK=$(mktemp -d /tmp/watermeter-deb-test.XXXXXX)
ROOT=$UNPACK/root
cleanup() {
	if mountpoint -q "$ROOT/proc"; then umount "$ROOT/proc"; fi
	rm -rf "$UNPACK"
}
trap cleanup EXIT
for arch in "${ARCHES[@]}"; do
	dpkg-deb -x "$(deb_of "$arch")" "$UNPACK/$arch"
done

installed_size_fits() {
	local kib
	kib=$(dpkg-deb -f "$(deb_of "$1")" Installed-Size)
	echo "installed size $kib KiB (limit $MAX_INSTALLED_KIB)"
	[ "$kib" -lt "$MAX_INSTALLED_KIB" ]
}
# The Depends line promises libc6 (>= 2.34): no symbol may need a newer glibc.
glibc_fits() {
	local newest
	newest=$(readelf --dyn-syms -W "$UNPACK/$1/usr/bin/watermeter" | grep -o 'GLIBC_[0-9.]*' |
		sed 's/GLIBC_//' | sort -uV | tail -n 1)
	echo "newest glibc symbol version: $newest (Depends promises $MAX_GLIBC)"
	[ "$(printf '%s\n%s\n' "$newest" "$MAX_GLIBC" | sort -V | tail -n 1)" = "$MAX_GLIBC" ]
}
lintian_clean() {
	local out
	out=$(lintian --info --fail-on error,warning,info "$(deb_of "$1")" 2>&1) || {
		echo "$out"
		return 1
	}
	! echo "$out" | grep -q '^[EWI]:' || { echo "$out"; return 1; }
}
for arch in "${ARCHES[@]}"; do
	check "$arch: installed size under 15 MB" installed_size_fits "$arch"
	check "$arch: binary needs glibc <= $MAX_GLIBC" glibc_fits "$arch"
	check "$arch: lintian clean (remaining tags overridden with reasons)" lintian_clean "$arch"
done

# --- A throwaway Debian 12 root ---------------------------------------------
# The mirror this machine's apt already uses (a local one where there is one).
apt_mirror() {
	if [ -n "${DEB_TEST_MIRROR:-}" ]; then echo "$DEB_TEST_MIRROR"; return; fi
	{
		sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)\/*[[:space:]]*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null
		sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\/debian\)\/*[[:space:]].*/\2/p' /etc/apt/sources.list 2>/dev/null
	} | head -n 1
}
make_root() {
	local tarball=$CACHE/$SUITE-minbase.tar mirror=()
	if [ ! -f "$tarball" ]; then
		command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
		mapfile -t mirror < <(apt_mirror)
		echo "== debootstrap $SUITE (${mirror[*]:-the default mirror of debootstrap}); cached in $tarball"
		mkdir -p "$CACHE" "$UNPACK/boot"
		debootstrap --variant=minbase --include=adduser,systemd,init-system-helpers \
			"$SUITE" "$UNPACK/boot" "${mirror[@]}" >"$UNPACK/debootstrap.log" 2>&1 || {
			tail -n 20 "$UNPACK/debootstrap.log"
			return 1
		}
		tar -C "$UNPACK/boot" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
		rm -rf "${UNPACK:?}/boot"
	fi
	mkdir -p "$ROOT" && tar -C "$ROOT" -xf "$tarball" && mount -t proc proc "$ROOT/proc"
}
if ! make_root; then
	not_ok "debootstrap a throwaway $SUITE root"
	finish
fi
ok "throwaway $SUITE root ready (debootstrap)"
in_root() { chroot "$ROOT" "$@"; }
as_service_user() { chroot --userspec=watermeter:watermeter --groups=gpio "$ROOT" "$@"; }

# --- Install ----------------------------------------------------------------
cp "$(deb_of amd64)" "$ROOT/tmp/watermeter.deb"
install_log=$(in_root dpkg -i /tmp/watermeter.deb 2>&1)
rc=$?
printf '%s\n' "$install_log" | sed 's/^/     > /' # what a user sees
if [ $rc -eq 0 ]; then ok "dpkg -i installs the amd64 package"; else
	not_ok "dpkg -i installs the amd64 package" "$install_log"
	finish
fi
check "postinst prints the dashboard address" grep -q 'dashboard at http://.*:8080/' <<<"$install_log"

# stat_is PATH "MODE OWNER:GROUP" TYPE
stat_is() {
	local got want="$2 $3"
	got=$(in_root stat -c '%a %U:%G %F' "$1" 2>&1) # names as the root resolves them
	echo "$1: $got (want $want)"
	[ "$got" = "$want" ]
}
files_in_place() {
	stat_is /usr/bin/watermeter "755 root:root" "regular file" &&
		stat_is /lib/systemd/system/watermeter.service "644 root:root" "regular file" &&
		stat_is /etc/watermeter "750 root:watermeter" directory &&
		stat_is "$CONF" "640 root:watermeter" "regular file" &&
		stat_is /var/lib/watermeter "750 watermeter:watermeter" directory &&
		stat_is /usr/share/doc/watermeter/copyright "644 root:root" "regular file" &&
		stat_is /usr/share/doc/watermeter/README.md "644 root:root" "regular file"
}
check "files and permissions in place" files_in_place
check "shipped config is config.example.toml" cmp "$REPO/config.example.toml" "$ROOT$CONF"
check "shipped config keeps data in the StateDirectory" \
	grep -qx 'data_dir = "/var/lib/watermeter"' "$ROOT$CONF"

user_ok() {
	local entry
	entry=$(in_root getent passwd watermeter) || { echo "no watermeter user"; return 1; }
	echo "$entry"
	IFS=: read -r _ _ uid _ _ home shell <<<"$entry"
	[ "$uid" -lt 1000 ] && [ "$home" = /var/lib/watermeter ] && [ "$shell" = /usr/sbin/nologin ]
}
check "system user watermeter (home /var/lib/watermeter, nologin)" user_ok
check "group gpio exists and watermeter is in it" bash -c "chroot '$ROOT' id -nG watermeter | tr ' ' '\n' | grep -qx gpio"
check "config is a conffile" bash -c \
	"chroot '$ROOT' dpkg-query -W -f='\${Conffiles}' watermeter | grep -q '^ $CONF [0-9a-f]\{32\}\$'"
check "service enabled for multi-user.target" \
	test -L "$ROOT/etc/systemd/system/multi-user.target.wants/watermeter.service"

version_ok() {
	local out
	out=$(as_service_user /usr/bin/watermeter --version 2>&1)
	echo "$out"
	[ "$out" = "watermeter $VERSION" ]
}
check "watermeter --version runs as installed" version_ok
# Needs the check-config command (CLI) and the config work merged.
check "watermeter check-config accepts the shipped config (as user watermeter)" \
	as_service_user /usr/bin/watermeter check-config --config "$CONF"

# The config the service would refuse: an unknown key (an error, CONTRACT.md) on its last line.
rejects_bad_config() {
	local out rc line
	cp "$ROOT$CONF" "$ROOT/tmp/bad.toml"
	printf '\nno_such_key = true\n' >>"$ROOT/tmp/bad.toml"
	chmod 0644 "$ROOT/tmp/bad.toml" # the copy keeps the shipped config's 0640 root mode
	line=$(wc -l <"$ROOT/tmp/bad.toml")
	out=$(as_service_user /usr/bin/watermeter check-config --config /tmp/bad.toml 2>&1)
	rc=$?
	echo "exit $rc: $out"
	[ "$rc" -eq 1 ] && [[ $out == *no_such_key* ]] && [[ $out == *"$line"* ]]
}
check "watermeter check-config rejects a bad config: exit 1, names key and line" rejects_bad_config

verify_clean() {
	local out
	out=$(in_root systemd-analyze verify /lib/systemd/system/watermeter.service 2>&1) || { echo "$out"; return 1; }
	echo "$out"
	[ -z "$out" ]
}
check "systemd-analyze verify is clean" verify_clean
security_ok() {
	local out score
	out=$(in_root systemd-analyze security --offline=yes /lib/systemd/system/watermeter.service 2>&1)
	score=$(echo "$out" | sed -n 's/.*Overall exposure level for watermeter.service: \([0-9.]*\).*/\1/p')
	echo "exposure: ${score:-none found} (limit $MAX_SECURITY)"
	if [ -z "$score" ] || ! awk -v s="$score" -v m="$MAX_SECURITY" 'BEGIN { exit !(s <= m) }'; then
		echo "$out" | grep '✗'
		return 1
	fi
}
check "systemd-analyze security exposure <= $MAX_SECURITY" security_ok

# --- Upgrade, remove, purge -------------------------------------------------
echo '# edited by the admin' >>"$ROOT$CONF"
echo history >"$ROOT/var/lib/watermeter/marker"
kept_after() {
	local out
	out=$(in_root dpkg "$@" 2>&1) || { echo "$out"; return 1; }
	if ! grep -q 'edited by the admin' "$ROOT$CONF" || [ ! -f "$ROOT/var/lib/watermeter/marker" ]; then
		echo "config edit or data lost after dpkg $*"
		return 1
	fi
}
# The same package with a higher version, as the next release would arrive.
upgraded_deb() {
	dpkg-deb -R "$ROOT/tmp/watermeter.deb" "$UNPACK/next" &&
		sed -i 's/^Version: .*/&+next1/' "$UNPACK/next/DEBIAN/control" &&
		dpkg-deb -b "$UNPACK/next" "$ROOT/tmp/watermeter-next.deb" >/dev/null
}
upgrade_keeps() {
	upgraded_deb || return 1
	kept_after -i /tmp/watermeter-next.deb || return 1
	in_root dpkg-query -W -f="\${Version}\n" watermeter | grep -q 'next1$' || { echo "not upgraded"; return 1; }
	stat_is "$CONF" "640 root:watermeter" "regular file"
}
check "upgrade keeps the edited config (and its mode) and the data" upgrade_keeps
removed_keeps() {
	kept_after -r watermeter || return 1
	[ ! -e "$ROOT/usr/bin/watermeter" ] || { echo "/usr/bin/watermeter still there"; return 1; }
}
check "dpkg -r removes the program, keeps config and data" removed_keeps
purged() {
	in_root dpkg -P watermeter && [ ! -e "$ROOT/etc/watermeter" ] && [ ! -e "$ROOT/var/lib/watermeter" ]
}
check "dpkg -P removes /etc/watermeter and /var/lib/watermeter" purged

# --- The ARM binaries under qemu-user ---------------------------------------
command -v qemu-aarch64-static >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
# qemu_run ARCH ARGS...: with the cross libc as sysroot unless libc6:ARCH is installed.
qemu_run() {
	local arch=$1 qemu sysroot
	shift
	case "$arch" in
	arm64) qemu=qemu-aarch64-static sysroot=/usr/aarch64-linux-gnu ;;
	armhf) qemu=qemu-arm-static sysroot=/usr/arm-linux-gnueabihf ;;
	esac
	if dpkg-query -W -f='${Status}' "libc6:$arch" 2>/dev/null | grep -q 'install ok installed'; then
		timeout 60 "$qemu" "$UNPACK/$arch/usr/bin/watermeter" "$@"
	else
		timeout 60 "$qemu" -L "$sysroot" "$UNPACK/$arch/usr/bin/watermeter" "$@"
	fi
}
qemu_version_ok() {
	local out
	out=$(qemu_run "$1" --version 2>&1)
	echo "$out"
	[ "$out" = "watermeter $VERSION" ]
}
# On a machine that is not a Pi, gpio-test must fail with the sentence that names the fix.
qemu_gpio_test_refuses() {
	local out rc
	out=$(qemu_run "$1" gpio-test --pin 17 2>&1)
	rc=$?
	echo "exit $rc: $out"
	[ "$rc" -eq 1 ] && [[ $out == *"GPIO input needs a Raspberry Pi; this machine is not one"* ]]
}
for arch in "${ARCHES[@]}"; do
	[ "$arch" != amd64 ] || continue
	check "$arch binary under qemu: --version" qemu_version_ok "$arch"
	check "$arch binary under qemu: check-config of the shipped config" \
		qemu_run "$arch" check-config --config "$UNPACK/$arch$CONF"
	check "$arch binary under qemu: gpio-test says this is not a Raspberry Pi" \
		qemu_gpio_test_refuses "$arch"
done

finish
