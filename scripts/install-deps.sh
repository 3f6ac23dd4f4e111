#!/bin/bash
# Installs what xnat needs to build and test, from Debian's archive only. Quiet and quick
# when everything is there already.
set -euo pipefail

PACKAGES=(
	# build
	cmake make g++ pkg-config clang libbpf-dev bpftool libelf-dev zlib1g-dev
	nlohmann-json3-dev libcli11-dev catch2 libcpp-httplib-dev
	# tests and demo: namespaces, veth, tc, sockets, ping; netfilter only to prove it is unused
	iproute2 ethtool procps mount util-linux python3 iputils-ping iptables nftables
	iperf3 curl # tests/e2e/test_hitless.sh, test_metrics.sh
	natpmpc # tests/e2e/test_portmap.sh: a real NAT-PMP client (libnatpmp)
	python3-prometheus-client # tests/e2e/test_metrics.sh parses every scrape with it
	libclang-rt-14-dev # libFuzzer for tests/fuzz/config_fuzz.cpp
	qemu-system-x86 busybox-static xz-utils # tests/kernels: other kernels booted in QEMU
	ppp pppoe wireguard-tools # tests/kernels: the guests' PPPoE and WireGuard suites (pppoe.sh, wireguard.sh)
	man-db bsdextrautils # tests/man_pages.sh renders the man pages (man, groff, col)
	dpkg-dev file debootstrap # scripts/package.sh (cpack -G DEB runs dpkg-shlibdeps and file); tests/package: the .deb in a clean chroot
)

# --bench: also what bench/run.py needs (baselines, the plot).
if [ "${1:-}" = "--bench" ]; then
	PACKAGES+=(python3-matplotlib)
fi

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root (sudo $0)" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
