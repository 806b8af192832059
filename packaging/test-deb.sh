#!/usr/bin/env bash
# Check functions run through check(), which shellcheck cannot follow.
# shellcheck disable=SC2317
# Tests the watermeter .deb packages the way a user meets them:
#   - builds all three packages (packaging/build-debs.sh);
#   - checks names, installed sizes, glibc symbol versions and lintian for each;
#   - installs the amd64 package with `dpkg -i` into a throwaway Debian 12 root made by
#     debootstrap (not on this machine), checks files, user, group, conffile, permissions,
#     runs `watermeter --version` and `check-config` as installed and as the service user,
#     verifies the unit and its security score; boots systemd in that root and runs
#     the service under it (notify, a pulse counted, the watchdog, a clean stop);
#     then upgrade, remove and purge;
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
	stop_systemd 2>/dev/null
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

# --- Under a running systemd ------------------------------------------------
# systemd as PID 1 of its own mount, pid, network, uts, ipc and cgroup namespaces
# in the throwaway root (a cgroup2 sub-tree of this machine's): the unit as it runs
# on a Pi, with its whole sandbox, Type=notify and the watchdog.
SYSTEMD_PID='' UNSHARE_PID='' CGROUP_DIR=''
cgroup2_dir() {
	local dir
	dir=$(mktemp -d /tmp/watermeter-cgroup.XXXXXX)
	mount -t cgroup2 none "$dir" || { rmdir "$dir"; return 1; }
	echo "$dir"
}
boot_systemd() {
	local cg
	cg=$(cgroup2_dir) || return 1
	CGROUP_DIR=$cg/watermeter-deb-test-$$
	mkdir -p "$CGROUP_DIR"
	# The subshell moves into the sub-tree, then becomes unshare; its child is PID 1.
	(
		echo "$BASHPID" >"$CGROUP_DIR/cgroup.procs"
		exec unshare --cgroup --mount --pid --net --uts --ipc --fork bash -c "
			set -e
			mount --make-rprivate /
			mount --bind '$ROOT' '$ROOT'
			mount -t proc proc '$ROOT/proc'
			mount -t sysfs sysfs '$ROOT/sys'
			mount -t cgroup2 none '$ROOT/sys/fs/cgroup'
			mount -t tmpfs tmpfs '$ROOT/run'
			mount -t tmpfs tmpfs '$ROOT/tmp'
			mount --rbind /dev '$ROOT/dev'
			exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin container=watermeter-deb-test \
				chroot '$ROOT' /lib/systemd/systemd --system --log-target=journal --log-level=notice
		"
	) >"$UNPACK/systemd.log" 2>&1 &
	UNSHARE_PID=$!
	for _ in $(seq 1 100); do
		SYSTEMD_PID=$(pgrep -P "$UNSHARE_PID" | head -n 1)
		[ -n "$SYSTEMD_PID" ] && [ "$(cat "/proc/$SYSTEMD_PID/comm" 2>/dev/null)" = systemd ] && break
		sleep 0.1
	done
	[ -n "$SYSTEMD_PID" ] || { cat "$UNPACK/systemd.log"; return 1; }
	for _ in $(seq 1 120); do
		case $(in_systemd systemctl is-system-running 2>/dev/null) in
		running | degraded) return 0 ;;
		esac
		sleep 0.5
	done
	echo "systemd did not finish booting:"
	in_systemd systemctl list-jobs --no-pager
	cat "$UNPACK/systemd.log"
	return 1
}
stop_systemd() {
	[ -n "$UNSHARE_PID" ] || return 0
	kill -9 "$UNSHARE_PID" "$SYSTEMD_PID" 2>/dev/null # PID 1 gone: its namespace ends
	wait "$UNSHARE_PID" 2>/dev/null
	UNSHARE_PID=
	# The cgroups left by that systemd, deepest first, once the kernel has emptied
	# them; then the mount.
	for _ in $(seq 1 50); do
		find "$CGROUP_DIR" -depth -type d -exec rmdir {} \; 2>/dev/null
		[ -d "$CGROUP_DIR" ] || break
		sleep 0.2
	done
	[ ! -d "$CGROUP_DIR" ] || echo "note: could not remove the cgroup $CGROUP_DIR"
	umount "$(dirname "$CGROUP_DIR")" && rmdir "$(dirname "$CGROUP_DIR")"
}
in_systemd() { nsenter -t "$SYSTEMD_PID" -m -p -n -- chroot "$ROOT" "$@"; }
# A command of this machine (python3) on the network of that systemd.
on_its_network() { nsenter -t "$SYSTEMD_PID" -n -- "$@"; }
unit_prop() { in_systemd systemctl show -P "$1" watermeter; }

# The dashboard's total for meter main, through the real port 8080.
total_liters() {
	on_its_network /usr/bin/python3 -c '
import json, urllib.request
with urllib.request.urlopen("http://127.0.0.1:8080/api/v1/meters/main", timeout=5) as r:
    print(json.load(r)["total_liters"])'
}
wait_total() {
	local got
	for _ in $(seq 1 50); do
		got=$(total_liters 2>/dev/null) && [ "$got" = "$1" ] && return 0
		sleep 0.2
	done
	echo "total_liters is ${got:-unreadable}, want $1"
	return 1
}
starts_under_systemd() {
	for _ in $(seq 1 60); do
		[ "$(unit_prop ActiveState)" = active ] && break
		sleep 0.5
	done
	in_systemd systemctl status watermeter --no-pager 2>&1 | head -n 20
	# Type=notify: active means READY=1 came through the sandbox after listening.
	[ "$(unit_prop ActiveState)" = active ] && [ "$(unit_prop Type)" = notify ]
}
counts_a_pulse() {
	on_its_network /usr/bin/python3 -c '
import socket
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"water,meter=main liters=1", ("127.0.0.1", 8089))' &&
		wait_total 1.0
}
watchdog_restarts_a_hung_process() {
	local pid
	mkdir -p "$ROOT/etc/systemd/system/watermeter.service.d"
	printf '[Service]\nWatchdogSec=2s\n' >"$ROOT/etc/systemd/system/watermeter.service.d/test.conf"
	in_systemd systemctl daemon-reload && in_systemd systemctl restart watermeter || return 1
	pid=$(unit_prop MainPID)
	echo "main pid $pid; stopping it with SIGSTOP (a hang)"
	in_systemd bash -c "kill -STOP $pid" || return 1
	for _ in $(seq 1 60); do
		[ "$(unit_prop NRestarts)" -ge 1 ] && [ "$(unit_prop ActiveState)" = active ] &&
			[ "$(unit_prop MainPID)" != "$pid" ] && break
		sleep 0.5
	done
	in_systemd journalctl -u watermeter --no-pager | grep -i 'watchdog' | tail -n 3
	[ "$(unit_prop NRestarts)" -ge 1 ] && [ "$(unit_prop ActiveState)" = active ] &&
		in_systemd journalctl -u watermeter --no-pager | grep -q 'Watchdog timeout'
}
stops_cleanly() {
	in_systemd systemctl stop watermeter || return 1
	in_systemd journalctl -u watermeter --no-pager | tail -n 3
	[ "$(unit_prop Result)" = success ] &&
		in_systemd journalctl -u watermeter --no-pager | grep -q 'store flushed and closed; bye'
}
if boot_systemd; then
	ok "systemd boots in the throwaway root"
	check "under systemd: the hardened Type=notify service starts and is active" starts_under_systemd
	check "under systemd: a UDP pulse on :8089 is counted on :8080" counts_a_pulse
	check "under systemd: the watchdog restarts a hung process" watchdog_restarts_a_hung_process
	check "under systemd: the pulse counted before the hang is still there" wait_total 1.0
	check "under systemd: systemctl stop flushes and exits cleanly" stops_cleanly
	rm -rf "$ROOT/etc/systemd/system/watermeter.service.d"
else
	not_ok "systemd boots in the throwaway root" "$(cat "$UNPACK/systemd.log" 2>/dev/null)"
fi
stop_systemd

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
