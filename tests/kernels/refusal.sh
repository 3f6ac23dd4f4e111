#!/bin/bash
# On a kernel below xnat's floor (5.15), xnat-load must refuse cleanly: exit 1, one message that
# names the missing kernel feature and the minimum version, and nothing attached or pinned.
#   refusal.sh BUILD_DIR
# Everything happens in a namespace and on a bpffs of its own, removed on exit.
set -euo pipefail

BUILD=$(cd "$1" && pwd)
XNAT_LOAD=$BUILD/xnat-load
NS=xnat-refusal-$$
WORK=$(mktemp -d /tmp/xnat-refusal.XXXXXX)
BPFFS=$WORK/bpffs
PIN=$BPFFS/xnat

cleanup() {
	local rc=$?
	set +e
	# If the loader did not refuse, it attached: take it down before the namespace goes.
	[ -e "$PIN" ] && ip netns exec "$NS" "$XNAT_LOAD" --unload --pin-dir "$PIN" >/dev/null 2>&1
	ip netns del "$NS" 2>/dev/null
	umount "$BPFFS" 2>/dev/null
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT INT TERM

failures=0
check() {
	local what=$1
	shift
	if "$@"; then
		echo "  ok: $what"
	else
		echo "  FAIL: $what"
		failures=$((failures + 1))
	fi
}

echo "kernel $(uname -r)"
mkdir -p "$BPFFS"
mount -t bpf bpf "$BPFFS" # `ip netns exec` remounts /sys, hiding /sys/fs/bpf
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add wan0 type veth peer name lan0
ip -n "$NS" addr add 198.51.100.1/24 dev wan0
ip -n "$NS" addr add 203.0.113.1/32 dev wan0
ip -n "$NS" addr add 10.0.0.1/24 dev lan0
ip -n "$NS" link set wan0 up
ip -n "$NS" link set lan0 up
cat >"$WORK/config.json" <<'JSON'
{ "port_forwards": [ { "proto": "tcp", "from": "203.0.113.1:22012", "to": "10.0.0.12:22" } ],
  "masquerade": [ { "source": "10.0.0.0/24", "not_destination": ["10.0.0.0/8"] } ] }
JSON
# The config must be valid, or a refusal would prove nothing about the kernel.
"$XNAT_LOAD" --check "$WORK/config.json" >/dev/null

rc=0
ip netns exec "$NS" "$XNAT_LOAD" --pin-dir "$PIN" wan0 lan0 "$WORK/config.json" \
	>"$WORK/out" 2>"$WORK/err" || rc=$?
echo "xnat-load exited $rc"
echo "its stderr:"
sed 's/^/  | /' "$WORK/err"
echo "its stdout:"
sed 's/^/  | /' "$WORK/out"

check "exit code 1 (the kernel refused)" [ "$rc" -eq 1 ]
check "exactly one line on stderr" [ "$(wc -l <"$WORK/err")" -eq 1 ]
check "the message names the minimum version 5.15" grep -qF 5.15 "$WORK/err"
check "no XDP program on either interface" \
	bash -c "! ip -n '$NS' -d link show | grep -qE 'xdp|prog/'"
for dev in wan0 lan0; do
	for dir in ingress egress; do
		check "no tc filter on $dev $dir" \
			bash -c "[ -z \"\$(tc -n '$NS' filter show dev $dev $dir 2>/dev/null)\" ]"
	done
	check "no clsact qdisc on $dev" bash -c "! tc -n '$NS' qdisc show dev $dev | grep -q clsact"
done
check "nothing pinned (pin dir empty or absent)" \
	bash -c "[ -z \"\$(find '$BPFFS' -mindepth 1 -not -path '$PIN' 2>/dev/null)\" ]"

if [ "$failures" -gt 0 ]; then
	echo "FAIL: refusal ($failures checks failed)"
	exit 1
fi
echo "PASS: refusal"
