# Shared by the end-to-end tests and the demo: a throwaway network of namespaces.
#
#   client ns             gateway ns                       server ns
#   eth0 198.51.100.2 --- wan0 198.51.100.1             
#                         (203.0.113.1/32, the public address)
#                         lan0 10.0.0.1 ------------------ eth0 10.0.0.12
#
# Everything lives in namespaces this file creates and removes on exit (trap), with pins on a
# bpffs mounted under a private temp directory, so a test never touches the host's interfaces.
# shellcheck shell=bash

set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD_DIR=$(cd "${1:-$E2E_DIR/../../build}" && pwd)
XNAT_LOAD=$BUILD_DIR/xnat-load
XNAT_MAP=$BUILD_DIR/xnat-map
PEER="python3 $E2E_DIR/peer.py"

TAG=x$$
NS_C=${TAG}cli
NS_G=${TAG}gw
NS_S=${TAG}srv
WORK=$(mktemp -d /tmp/xnat-e2e.XXXXXX)
BPFFS=$WORK/bpffs
PIN=$BPFFS/xnat
BG_PIDS=()

log() { printf '  %s\n' "$*"; }
fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}

cleanup() {
	local rc=$?
	set +e
	for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	wait 2>/dev/null
	if ip netns list | grep -q "^$NS_G"; then
		ip netns exec "$NS_G" "$XNAT_LOAD" --unload --pin-dir "$PIN" >/dev/null 2>&1
	fi
	for ns in $(ip netns list | awk '{print $1}' | grep "^$TAG"); do ip netns del "$ns"; done
	umount "$BPFFS" 2>/dev/null
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT INT TERM

in_c() { ip netns exec "$NS_C" "$@"; }
in_g() { ip netns exec "$NS_G" "$@"; }
in_s() { ip netns exec "$NS_S" "$@"; }

xnat_load() { in_g "$XNAT_LOAD" --pin-dir "$PIN" "$@"; }
xnat_map() { in_g "$XNAT_MAP" --pin-dir "$PIN" "$@"; }

# A bpffs every process of the test sees: `ip netns exec` remounts /sys, hiding /sys/fs/bpf.
mount_bpffs() {
	mkdir -p "$BPFFS"
	mount -t bpf bpf "$BPFFS"
}

# Runs a command in the background, remembering it for cleanup; output to $WORK/NAME.log.
# Its pid is left in LAST_PID.
spawn() {
	local name=$1
	shift
	"$@" >"$WORK/$name.log" 2>&1 &
	LAST_PID=$!
	BG_PIDS+=("$LAST_PID")
}

# Waits for a spawned command and fails the test unless it succeeded.
reap() {
	local name=$1 pid=$2
	if ! wait "$pid"; then
		cat "$WORK/$name.log" >&2
		fail "$name failed"
	fi
}

# expect_fail CODE PATTERN CMD...: CMD must exit with CODE and print PATTERN on stderr.
expect_fail() {
	local code=$1 pattern=$2 rc=0
	shift 2
	"$@" >"$WORK/expect.out" 2>"$WORK/expect.err" || rc=$?
	[ "$rc" -eq "$code" ] || fail "'$*' exited $rc, expected $code: $(cat "$WORK/expect.err")"
	grep -qF -- "$pattern" "$WORK/expect.err" ||
		fail "'$*' said '$(cat "$WORK/expect.err")', expected '$pattern'"
	[ "$(wc -l <"$WORK/expect.err")" -eq 1 ] || fail "'$*' printed more than one error line"
}

# Waits until a log file contains a line matching a pattern.
wait_log() {
	local name=$1 pattern=$2 tries=${3:-100}
	for _ in $(seq "$tries"); do
		grep -q -- "$pattern" "$WORK/$name.log" 2>/dev/null && return 0
		sleep 0.1
	done
	cat "$WORK/$name.log" >&2 2>/dev/null || true
	fail "$name never logged '$pattern'"
}

# veth pair between two namespaces.
link_ns() {
	local ns_a=$1 if_a=$2 ns_b=$3 if_b=$4
	ip link add "$if_a" netns "$ns_a" type veth peer name "$if_b" netns "$ns_b"
	ip -n "$ns_a" link set "$if_a" up
	ip -n "$ns_b" link set "$if_b" up
}

# TX checksum offload on the hosts' ends: "on" (veth's default: local packets leave with only
# the pseudo-header sum) or "off" (full checksums in every packet).
set_offload() {
	local state=$1
	in_c ethtool -K eth0 tx "$state" >/dev/null
	in_s ethtool -K eth0 tx "$state" >/dev/null
}

build_topology() {
	mount_bpffs
	for ns in "$NS_C" "$NS_G" "$NS_S"; do
		ip netns add "$ns"
		ip -n "$ns" link set lo up
	done
	link_ns "$NS_G" wan0 "$NS_C" eth0
	link_ns "$NS_G" lan0 "$NS_S" eth0
	ip -n "$NS_C" addr add 198.51.100.2/24 dev eth0
	ip -n "$NS_C" route add 203.0.113.0/24 via 198.51.100.1
	ip -n "$NS_G" addr add 198.51.100.1/24 dev wan0
	ip -n "$NS_G" addr add 203.0.113.1/32 dev wan0
	ip -n "$NS_G" addr add 10.0.0.1/24 dev lan0
	in_g sysctl -qw net.ipv4.ip_forward=1
	ip -n "$NS_S" addr add 10.0.0.12/24 dev eth0
	ip -n "$NS_S" route add default via 10.0.0.1
	# XDP frames redirected into a veth are delivered only if the peer runs XDP or GRO.
	in_c ethtool -K eth0 gro on >/dev/null
	in_s ethtool -K eth0 gro on >/dev/null
}

# The gateway must do its job with xnat alone.
assert_no_netfilter_rules() {
	local rules
	rules=$(in_g sh -c 'iptables-save 2>/dev/null | grep -E "^-A" ; nft list ruleset 2>/dev/null | grep -E "dnat|snat|masquerade"' || true)
	[ -z "$rules" ] || fail "gateway namespace has netfilter rules: $rules"
}

# write_config NAME <<EOF ... EOF: a config file under the test's directory; prints its path.
write_config() {
	local path=$WORK/$1
	cat >"$path"
	echo "$path"
}

# The local port a tcp-client reported ("ok tcp N bytes local=ADDR:PORT").
client_port() {
	sed -n 's/.*local=[0-9.]*:\([0-9]*\).*/\1/p' "$WORK/$1.log" | head -n1
}

counter() {
	xnat_map stats --json | python3 -c "import json,sys; print(json.load(sys.stdin)['counters']['$1'])"
}
