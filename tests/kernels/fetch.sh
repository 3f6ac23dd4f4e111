#!/bin/bash
# Fetches one of Debian's generic kernels for the kernel matrix and prints its cache directory:
#   fetch.sh NAME        NAME: 6.1 (bookworm), 6.12 (trixie), 5.10 (bullseye)
# The directory holds vmlinuz, release (the kernel's `uname -r`) and lib/modules/RELEASE with a
# modules.dep, ready for vm-run.sh. Cached under ${XNAT_KERNEL_CACHE:-/var/cache/xnat-kernels};
# a second call only checks the cache.
#
# Generic, not -cloud-, kernels: the cloud flavour lacks 9p (vm-run.sh mounts the host's root
# through it) and PPP. apt runs with a private sources list and state, so the machine's own apt
# configuration and package lists are never touched.
set -euo pipefail

usage() {
	echo "usage: $0 NAME   (NAME: 6.1, 6.12 or 5.10)" >&2
	exit 2
}
[ $# -eq 1 ] || usage
NAME=$1
case "$NAME" in
6.1) SUITE=bookworm ;;
# trixie rather than bookworm-backports: trixie's 6.12 stays 6.12 for the release's life, while
# backports follows whatever testing ships next.
6.12) SUITE=trixie ;;
5.10) SUITE=bullseye ;;
*) usage ;;
esac

CACHE=${XNAT_KERNEL_CACHE:-/var/cache/xnat-kernels}
DEST=$CACHE/$NAME
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# Modules the matrix and the e2e tests rely on; a kernel without any of them is no use here.
# 9p, 9pnet_virtio and overlay build the guest's root; the rest are what tests create.
REQUIRED_MODULES="virtio_pci 9p 9pnet_virtio overlay veth sch_ingress cls_bpf act_bpf 8021q tun bridge
	macvlan vxlan wireguard ppp_generic pppoe"

say() { printf 'fetch.sh %s: %s\n' "$NAME" "$*" >&2; }
die() {
	say "ERROR: $*"
	exit 1
}

if [ -e "$DEST/.complete" ]; then
	echo "$DEST"
	exit 0
fi

[ "$(id -u)" -eq 0 ] || die "run as root (apt-get and the cache under $CACHE need it)"
command -v busybox >/dev/null || {
	say "installing busybox-static (its depmod indexes the modules)"
	apt-get install -y --no-install-recommends busybox-static >&2 ||
		die "cannot install busybox-static"
}
[ -r "$KEYRING" ] || die "$KEYRING missing (package debian-archive-keyring)"

# The same mirror the machine uses, so a CI box behind its own mirror keeps using it.
mirror() {
	local uri=""
	if [ -n "${XNAT_DEBIAN_MIRROR:-}" ]; then
		echo "$XNAT_DEBIAN_MIRROR"
		return
	fi
	uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }')
	[ -n "$uri" ] || uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:.*\/debian\/?$/) { print $i; exit } }')
	echo "${uri:-http://deb.debian.org/debian}"
}

mkdir -p "$CACHE"
# Two matrix runs may fetch the same kernel at once; the second waits and then finds it cached.
exec 9>"$CACHE/.$NAME.lock"
flock 9
if [ -e "$DEST/.complete" ]; then
	echo "$DEST"
	exit 0
fi

APT=$CACHE/.apt-$NAME
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial"
echo "deb [signed-by=$KEYRING] $(mirror) $SUITE main" >"$APT/sources.list"
# Sandbox user root: the private directories belong to root and _apt could not write them.
APT_OPTS=(-o "Dir::Etc::SourceList=$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o Dir::Etc::PreferencesParts=/dev/null -o "Dir::State::Lists=$APT/lists"
	-o "Dir::Cache=$APT/cache" -o APT::Sandbox::User=root -q)

say "apt-get update ($SUITE from $(mirror))"
# --error-on=any: by default a mirror that cannot be reached is only a warning.
apt-get "${APT_OPTS[@]}" --error-on=any update >&2 || die "apt-get update of $SUITE from $(mirror) failed"

# The metapackage names the suite's current kernel; old ABI names vanish from the mirror.
PKG=$(apt-cache "${APT_OPTS[@]}" show linux-image-amd64 |
	sed -n 's/^Depends: .*\(linux-image-[^ ,]*-amd64\).*/\1/p' | head -n1)
[ -n "$PKG" ] || die "linux-image-amd64 in $SUITE names no kernel package"

WORK=$(mktemp -d "$CACHE/.fetch-$NAME.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
say "downloading $PKG"
(cd "$WORK" && apt-get "${APT_OPTS[@]}" download "$PKG" >&2) || die "apt-get download $PKG failed"

say "extracting"
dpkg-deb -x "$WORK"/"$PKG"_*.deb "$WORK/root"
RELEASE=${PKG#linux-image-}
OUT=$WORK/out
mkdir -p "$OUT/lib/modules"
# bookworm and later ship merged-/usr packages (usr/lib/modules), bullseye ships lib/modules.
for d in "$WORK/root/usr/lib/modules/$RELEASE" "$WORK/root/lib/modules/$RELEASE"; do
	[ -d "$d" ] && mv "$d" "$OUT/lib/modules/"
done
[ -d "$OUT/lib/modules/$RELEASE" ] || die "$PKG has no modules for $RELEASE"
mv "$WORK/root/boot/vmlinuz-$RELEASE" "$OUT/vmlinuz" || die "$PKG has no vmlinuz-$RELEASE"
# bpftool feature probe reads the kernel's config from /boot/config-RELEASE; init.sh puts it there.
mv "$WORK/root/boot/config-$RELEASE" "$OUT/config" || die "$PKG has no config-$RELEASE"
echo "$RELEASE" >"$OUT/release"
echo "$PKG" >"$OUT/package"

# busybox's insmod and modprobe hand a module file to the kernel as it is, and the kernel takes
# only plain ELF that way: trixie's .ko.xz are unpacked once here.
say "decompressing modules"
if find "$OUT/lib/modules/$RELEASE" -name '*.ko.xz' -print -quit | grep -q . && ! command -v xz >/dev/null; then
	apt-get install -y --no-install-recommends xz-utils >&2 || die "cannot install xz-utils"
fi
find "$OUT/lib/modules/$RELEASE" -name '*.ko.xz' -print0 | xargs -0 -r -P "$(nproc)" -n 64 xz -d
find "$OUT/lib/modules/$RELEASE" -name '*.ko.zst' -print0 | xargs -0 -r -P "$(nproc)" -n 64 zstd -q -d --rm
find "$OUT/lib/modules/$RELEASE" -name '*.ko.gz' -print0 | xargs -0 -r -P "$(nproc)" -n 64 gzip -d

# Debian's postinst would run depmod; the package itself carries no modules.dep. busybox's
# depmod reads .ko.xz and writes the modules.dep and modules.alias that its modprobe uses in
# the guest (the host may have no kmod).
say "indexing modules (depmod)"
busybox depmod -b "$OUT" "$RELEASE"

missing=""
for m in $REQUIRED_MODULES; do
	grep -qE "/$m\.ko(\.[a-z]+)?:" "$OUT/lib/modules/$RELEASE/modules.dep" ||
		grep -qE "/$m\.ko$" "$OUT/lib/modules/$RELEASE/modules.builtin" ||
		missing="$missing $m"
done
[ -z "$missing" ] || die "$PKG lacks modules:$missing"

rm -rf "$DEST"
mv "$OUT" "$DEST"
touch "$DEST/.complete"
say "cached $RELEASE in $DEST"
echo "$DEST"
