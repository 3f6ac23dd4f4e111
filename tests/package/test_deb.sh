#!/bin/bash
# The Debian package in a clean Debian 12: scripts/package.sh builds the .deb, apt-get installs
# it into a fresh minbase chroot (pulling in its dependencies from the archive), and then:
# `xnat-load --check` takes an installed example config and refuses a broken one with exit 2,
# `man xnat-load` renders, the files and conffiles are where the package says, the BPF object is
# the one built, and remove keeps the operator's configs while purge takes them away.
#   tests/package/test_deb.sh BUILD_DIR
# Needs root and Debian's archive (the base system comes from debootstrap, cached in
# /var/cache/xnat-chroot after the first run).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:?usage: test_deb.sh BUILD_DIR}" && pwd)
CACHE=${XNAT_CHROOT_CACHE:-/var/cache/xnat-chroot}
BASE=$CACHE/bookworm-minbase.tar

log() { echo "  $*"; }
fail() { echo "FAIL: $*"; exit 1; }

ROOT=$(mktemp -d /tmp/xnat-deb.XXXXXX)
chmod 755 "$ROOT" # apt downloads as _apt, which must reach the chroot
cleanup() {
	for m in dev/pts dev proc; do mountpoint -q "$ROOT/$m" && umount -l "$ROOT/$m"; done
	rm -rf --one-file-system "$ROOT"
}
trap cleanup EXIT

log "building the package (scripts/package.sh)"
DEB=$(bash "$REPO/scripts/package.sh" "$BUILD/deb" | tail -n1)
[ -f "$DEB" ] || fail "scripts/package.sh made no .deb"
log "$(basename "$DEB"): $(du -k "$DEB" | cut -f1) KiB"

if [ ! -f "$BASE" ]; then
	log "a minbase Debian 12 with debootstrap (once; kept in $CACHE)"
	# deb822 sources (this machine) or a classic sources.list (a debootstrapped one); either may be absent.
	mirror=$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1 || true)
	[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
	mkdir -p "$CACHE"
	debootstrap --variant=minbase bookworm "$ROOT" "${mirror:-http://deb.debian.org/debian}" \
		>"$CACHE/debootstrap.log" 2>&1 || { tail -n 20 "$CACHE/debootstrap.log"; fail "debootstrap failed"; }
	tar -C "$ROOT" -cf "$BASE.tmp" . && mv "$BASE.tmp" "$BASE"
else
	tar -C "$ROOT" -xf "$BASE"
fi
mount -t proc proc "$ROOT/proc"
mount --bind /dev "$ROOT/dev"
mount --bind /dev/pts "$ROOT/dev/pts"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
cp "$DEB" "$ROOT/tmp/"
in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C DEBIAN_FRONTEND=noninteractive "$@"; }

log "apt-get install ./$(basename "$DEB") man-db"
in_root apt-get update -qq >/dev/null
! in_root dpkg-query -W -f='${Status}' libbpf1 2>/dev/null | grep -q "install ok installed" ||
	fail "the base system already has libbpf1: the test would not show that Depends pulls it in"
in_root apt-get install -y -qq --no-install-recommends "/tmp/$(basename "$DEB")" man-db >"$ROOT/tmp/apt.log" 2>&1 ||
	{ tail -n 30 "$ROOT/tmp/apt.log"; fail "apt-get install failed"; }
for dep in libbpf1 libcpp-httplib0.11; do
	in_root dpkg-query -W -f='${Status}' "$dep" | grep -q "install ok installed" || fail "Depends did not pull in $dep"
done

log "the files are where they belong"
for f in /usr/sbin/xnat-load /usr/sbin/xnat-map /usr/sbin/xnat-exporter /usr/sbin/xnat-import \
	/usr/share/man/man8/xnat-load.8.gz /usr/share/man/man8/xnat-map.8.gz /usr/share/man/man8/xnat-exporter.8.gz \
	/usr/share/man/man8/xnat-import.8.gz /usr/lib/systemd/system/xnat.service /usr/lib/xnat/xnat.bpf.o \
	/usr/sbin/xnat-portmapd /usr/share/man/man8/xnat-portmapd.8.gz /usr/lib/systemd/system/xnat-portmapd.service \
	/etc/xnat/xnat.env /etc/xnat/port-forward.json; do
	[ -f "$ROOT$f" ] || fail "not installed: $f"
done
cmp -s "$ROOT/usr/lib/xnat/xnat.bpf.o" "$BUILD/deb/xnat_bpf.bpf.o" || fail "the packaged BPF object is not the one built"
grep -q "^ExecStart=/usr/sbin/xnat-load " "$ROOT/usr/lib/systemd/system/xnat.service" || fail "the unit does not run /usr/sbin/xnat-load"
grep -q "^EnvironmentFile=/etc/xnat/xnat.env$" "$ROOT/usr/lib/systemd/system/xnat.service" || fail "the unit does not read /etc/xnat/xnat.env"
conffiles=$(in_root dpkg-query -W -f='${Conffiles}\n' xnat)
for f in /etc/xnat/xnat.env /etc/xnat/port-forward.json; do
	grep -q " $f " <<<"$conffiles" || fail "$f is not a conffile: $conffiles"
done

log "xnat-load --check in the chroot"
out=$(in_root xnat-load --check /etc/xnat/port-forward.json 2>&1) || fail "--check refused the installed example: $out"
echo '{ "port_forwards": [ { "proto": "tcp", "from": "203.0.113.1:99999", "to": "10.0.0.12:22" } ] }' >"$ROOT/tmp/bad.json"
rc=0
out=$(in_root xnat-load --check /tmp/bad.json 2>&1) || rc=$?
[ "$rc" = 2 ] || fail "--check of a bad config exited $rc, expected 2: $out"
grep -q "port_forwards" <<<"$out" || fail "--check's error does not name the field: $out"
log "  refused: $out"

log "man xnat-load in the chroot"
page=$(in_root man -P cat xnat-load 2>&1) || fail "man xnat-load failed: $page"
grep -q "xnat-load" <<<"$page" && grep -q -- "--check" <<<"$page" || fail "man xnat-load shows no page: $(head -n 5 <<<"$page")"

log "remove keeps the configs, purge takes them"
echo "# edited" >>"$ROOT/etc/xnat/xnat.env"
in_root apt-get remove -y -qq xnat >/dev/null 2>&1 || fail "apt-get remove failed"
[ ! -e "$ROOT/usr/sbin/xnat-load" ] || fail "remove left /usr/sbin/xnat-load"
grep -q "^# edited$" "$ROOT/etc/xnat/xnat.env" || fail "remove lost the edited xnat.env"
in_root apt-get purge -y -qq xnat >/dev/null 2>&1 || fail "apt-get purge failed"
[ ! -e "$ROOT/etc/xnat/xnat.env" ] || fail "purge left /etc/xnat/xnat.env"
echo "PASS: the .deb installs with its dependencies in a clean Debian 12; --check and man work there"
