#!/bin/bash
# XDP redirected into a veth reaches the other side only if the veth's peer runs an XDP program
# or has GRO on (veth's default is off); otherwise the kernel drops every frame while xnat counts
# it redirected. With the peers in that default state, --mode xdp is refused (exit 2, naming the
# interface, the peer, its namespace and the fix) and changes nothing, and --mode auto runs a
# working gateway (tc). With GRO on at the peers, and again with an XDP program there instead,
# --mode xdp loads and forwards.
source "$(dirname "$0")/lib.sh" "$1"

build_topology
offload_in off "$NS_C:eth0" "$NS_S:eth0" # XDP forwards only full checksums (see docs/ARCHITECTURE.md)
peers_gro() { # STATE: GRO on both peers, eth0 of the client and of the server
	in_ns "$NS_C" ethtool -K eth0 gro "$1" >/dev/null
	in_ns "$NS_S" ethtool -K eth0 gro "$1" >/dev/null
}
peers_gro off
CONFIG=$(write_config fwd.json <<'JSON'
{ "port_forwards": [
    { "proto": "tcp", "from": "203.0.113.1:22012", "to": "10.0.0.12:22" },
    { "proto": "udp", "from": "203.0.113.1:6003", "to": "10.0.0.12:6003" } ] }
JSON
)
serve tcpsrv "$NS_S" tcp 22 udpsrv "$NS_S" udp 6003
on_fail() { gw_map "$NS_G" "$PIN" conns; gw_map "$NS_G" "$PIN" stats | awk '$2 != 0'; }

# Nothing of xnat on the gateway: no pins, no XDP, no tc filters.
assert_untouched() {
	[ ! -e "$PIN" ] || [ -z "$(ls -A "$PIN")" ] || fail "$1: pins left at $PIN: $(ls "$PIN")"
	local dev
	for dev in wan0 lan0; do
		ip -n "$NS_G" link show "$dev" | grep -q "prog/xdp" && fail "$1: an XDP program on $dev"
		[ -z "$(in_ns "$NS_G" tc filter show dev "$dev" ingress 2>/dev/null)$(in_ns "$NS_G" tc filter show dev "$dev" egress 2>/dev/null)" ] ||
			fail "$1: tc filters on $dev"
	done
	return 0
}

tx_dropped() { in_ns "$NS_G" cat "/sys/class/net/$1/statistics/tx_dropped"; }

# Real traffic through the port forwards, seen by the server and in conns and counters.
assert_forwards() {
	local label=$1 redirected_before redirected cport uport
	redirected_before=$(gw_counter "$NS_G" "$PIN" redirected)
	in_ns "$NS_C" $PEER tcp-client --host 203.0.113.1 --port 22012 --bytes 200000 --timeout 10 >"$WORK/tcpcli.log" 2>&1 ||
		fail "$label: TCP through the forward failed: $(cat "$WORK/tcpcli.log")"
	cport=$(client_port tcpcli)
	grep -q "^accepted 198.51.100.2 $cport$" "$WORK/tcpsrv.log" || fail "$label: the server did not see 198.51.100.2:$cport"
	gw_map "$NS_G" "$PIN" conns | grep -qF "src=198.51.100.2 dst=203.0.113.1 sport=$cport dport=22012 src=10.0.0.12 dst=198.51.100.2 sport=22 dport=$cport" ||
		fail "$label: no connection line for the TCP flow"
	in_ns "$NS_C" $PEER udp-client --host 203.0.113.1 --port 6003 --count 20 >"$WORK/udpcli.log" 2>&1 ||
		fail "$label: UDP through the forward failed: $(cat "$WORK/udpcli.log")"
	uport=$(client_port udpcli)
	gw_map "$NS_G" "$PIN" conns | grep -qF "udp REPLIED src=198.51.100.2 dst=203.0.113.1 sport=$uport dport=6003 src=10.0.0.12" ||
		fail "$label: no UDP connection line"
	redirected=$(($(gw_counter "$NS_G" "$PIN" redirected) - redirected_before))
	[ "$redirected" -gt 50 ] || fail "$label: the fast path redirected only $redirected packets"
	log "$label: TCP and UDP forwarded, $redirected packets redirected"
}

log "== peers with neither GRO nor XDP: --mode xdp is refused, nothing changes"
expect_fail 2 "wan wan0: --mode xdp: its veth peer eth0 (in network namespace $NS_C) has neither GRO nor an XDP program" \
	gw_load "$NS_G" "$PIN" --mode xdp wan0 lan0 "$CONFIG"
grep -qF "enable GRO on the peer (ip netns exec $NS_C ethtool -K eth0 gro on) or attach an XDP program to it, or use --mode tc" \
	"$WORK/expect.err" || fail "the refusal gives no fix: $(cat "$WORK/expect.err")"
assert_untouched "refused --mode xdp"

log "== GRO on at the WAN peer only: the refusal names the LAN side"
in_ns "$NS_C" ethtool -K eth0 gro on >/dev/null
expect_fail 2 "lan lan0: --mode xdp: its veth peer eth0 (in network namespace $NS_S) has neither GRO nor an XDP program" \
	gw_load "$NS_G" "$PIN" --mode xdp wan0 lan0 "$CONFIG"
assert_untouched "refused --mode xdp (LAN)"
peers_gro off

log "== the same peers: --mode auto runs tc and forwards"
out=$(gw_load "$NS_G" "$PIN" --mode auto wan0 lan0 "$CONFIG")
printf '%s\n' "$out" | sed 's/^/    /'
grep -q "^wan wan0: tc (" <<<"$out" || fail "--mode auto: WAN is not tc"
grep -q "^lan lan0: tc (" <<<"$out" || fail "--mode auto: LAN is not tc"
assert_forwards "--mode auto"
gw_load "$NS_G" "$PIN" --unload >/dev/null
assert_untouched "unload"

log "== GRO on at both peers: --mode xdp loads and forwards, and the veths drop nothing"
peers_gro on
out=$(gw_load "$NS_G" "$PIN" --mode xdp wan0 lan0 "$CONFIG")
printf '%s\n' "$out" | sed 's/^/    /'
grep -qF "wan wan0: xdp (--mode xdp; its veth peer eth0 (in network namespace $NS_C) takes XDP frames" <<<"$out" ||
	fail "--mode xdp: WAN is not xdp with its peer named"
grep -qF "lan lan0: xdp (--mode xdp; its veth peer eth0 (in network namespace $NS_S) takes XDP frames" <<<"$out" ||
	fail "--mode xdp: LAN is not xdp with its peer named"
grep -q "warning" <<<"$out" && fail "--mode xdp warned: $out"
drops_wan=$(tx_dropped wan0)
drops_lan=$(tx_dropped lan0)
assert_forwards "--mode xdp, GRO on the peers"
[ "$(tx_dropped wan0)" -eq "$drops_wan" ] || fail "wan0 dropped $(($(tx_dropped wan0) - drops_wan)) frames"
[ "$(tx_dropped lan0)" -eq "$drops_lan" ] || fail "lan0 dropped $(($(tx_dropped lan0) - drops_lan)) frames"

gw_load "$NS_G" "$PIN" --unload >/dev/null

log "== an XDP program on each peer instead of GRO: --mode xdp loads and forwards"
peers_gro off
clang=$(sed -n 's/^BPF_CLANG:FILEPATH=//p' "$BUILD_DIR/CMakeCache.txt")
cat >"$WORK/pass.c" <<'C'
__attribute__((section("xdp"), used)) int pass(void *ctx) { return 2; /* XDP_PASS */ }
char _license[] __attribute__((section("license"), used)) = "GPL";
C
"$clang" -O2 -target bpf -c "$WORK/pass.c" -o "$WORK/pass.o"
ip -n "$NS_C" link set dev eth0 xdpdrv obj "$WORK/pass.o" sec xdp
ip -n "$NS_S" link set dev eth0 xdpdrv obj "$WORK/pass.o" sec xdp
out=$(gw_load "$NS_G" "$PIN" --mode xdp wan0 lan0 "$CONFIG")
grep -q "^wan wan0: xdp (" <<<"$out" && grep -q "^lan lan0: xdp (" <<<"$out" ||
	fail "--mode xdp with XDP on the peers: $out"
assert_forwards "--mode xdp, XDP on the peers"
assert_no_netfilter_rules_in "$NS_G"
log "PASS veth_peer"
