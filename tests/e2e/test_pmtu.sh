#!/bin/bash
# Path-MTU discovery through xnat: the ICMP "fragmentation needed" about a translated flow
# reaches its sender translated back, so the sender learns the path MTU. With the hosts' TX
# checksum offload on and off.
#
# (a) masquerade; a router past the gateway sends the error (xnat's WAN ingress translates it):
#   a12 10.0.0.12 ── swa ── gwa (203.0.113.1) ── rtr ══ mtu 1280 ══ far 198.51.100.2
# (b) port forward; the gateway's own kernel sends the error (xnat's tc egress translates it):
#   cli 198.51.100.2 ── gw (203.0.113.1) ══ mtu 1280 ══ srv 10.0.0.12
source "$(dirname "$0")/lib.sh" "$1"

NS_A12=$(ns_a 12)
NS_FAR=${TAG}far
FAR=198.51.100.2

build_topology # (b), and the bpffs both gateways pin on
build_site_a 12
ns_create "$NS_FAR"
veth_link "$NS_R" rb 198.51.100.254/24 "$NS_FAR" eth0 $FAR/24 1280
# The far host takes segments as large as 1460 bytes (advmss) although its own link carries
# 1280: TCP from the LAN then needs path-MTU discovery, as when the small link is mid-path.
ip -n "$NS_FAR" route add default via 198.51.100.254 advmss 1460
ip -n "$NS_G" link set lan0 mtu 1280
ip -n "$NS_S" link set eth0 mtu 1280
ip -n "$NS_S" route replace default via 10.0.0.1 advmss 1460
resolve_neighbour "$NS_GA" 203.0.113.254
resolve_neighbour "$NS_G" 198.51.100.2 10.0.0.12

MASQ=$(write_config masq.json <<'JSON'
{ "masquerade": [ { "source": "10.0.0.0/24", "not_destination": ["10.0.0.0/8"] } ] }
JSON
)
FWD=$(write_config fwd.json <<'JSON'
{ "port_forwards": [
    { "proto": "tcp", "from": "203.0.113.1:22012", "to": "10.0.0.12:22" },
    { "proto": "udp", "from": "203.0.113.1:6000", "to": "10.0.0.12:6000" } ] }
JSON
)
gw_load "$NS_GA" "$PIN_A" wan0 lan0 "$MASQ" >/dev/null
gw_load "$NS_G" "$PIN" wan0 lan0 "$FWD" >/dev/null
on_fail() {
	gw_report "$NS_GA" "$PIN_A"
	gw_report "$NS_G" "$PIN"
}

serve fartcp "$NS_FAR" tcp 7000 farudp "$NS_FAR" udp 7001 \
	srvtcp "$NS_S" tcp 22 srvudp "$NS_S" udp 6000

# expect_mtu LOG: the peer logged a path MTU of 1280.
expect_mtu() {
	grep -q "^mtu 1280$" "$WORK/$1.log" || fail "$1 did not learn path MTU 1280: $(cat "$WORK/$1.log")"
}

for offload in off on; do
	log "== tx checksum offload $offload"
	offload_in "$offload" "$NS_A12:eth0" "$NS_SWA:pgw" "$NS_FAR:eth0" "$NS_C:eth0" "$NS_S:eth0"
	gw_map "$NS_GA" "$PIN_A" flush >/dev/null
	gw_map "$NS_G" "$PIN" flush >/dev/null

	log "(a) masquerade: 1 MB of TCP from the LAN to the far host, echoed intact"
	ip -n "$NS_A12" route flush cache
	translated=$(gw_counter "$NS_GA" "$PIN_A" icmp_error_translated)
	spawn tcpa in_ns "$NS_A12" $PEER tcp-client --host $FAR --port 7000 --bytes 1000000 --report-mtu --timeout 20
	reap tcpa "$LAST_PID"
	expect_mtu tcpa
	[ "$(last_peer fartcp | cut -d' ' -f1)" = 203.0.113.1 ] || fail "far host saw '$(last_peer fartcp)'"
	[ "$(gw_counter "$NS_GA" "$PIN_A" icmp_error_translated)" -gt "$translated" ] ||
		fail "gateway A translated no ICMP error"

	log "(a) masquerade: DF ping of 1400 bytes learns mtu 1280"
	ip -n "$NS_A12" route flush cache
	in_ns "$NS_A12" ping -M "do" -s 1400 -c 3 -i 0.3 -W 1 $FAR >"$WORK/ping.log" 2>&1 || true
	grep -qE "mtu ?= ?1280" "$WORK/ping.log" || fail "ping never reported mtu 1280: $(cat "$WORK/ping.log")"
	route=$(ip -n "$NS_A12" route get $FAR)
	grep -q "mtu 1280" <<<"$route" || fail "the LAN host's route to $FAR has no mtu 1280: $route"

	log "(a) masquerade: DF UDP of 1400 bytes learns mtu 1280, then 1252 bytes go through"
	ip -n "$NS_A12" route flush cache
	spawn udpa in_ns "$NS_A12" $PEER udp-client --df --host $FAR --port 7001 --bytes 1400 --timeout 10
	reap udpa "$LAST_PID"
	expect_mtu udpa
	grep -q "^ok udp df 1252 bytes mtu=1280" "$WORK/udpa.log" || fail "udpa: $(cat "$WORK/udpa.log")"

	log "(b) port forward: DF UDP of 1400 bytes to 203.0.113.1:6000 learns mtu 1280"
	ip -n "$NS_C" route flush cache
	translated=$(gw_counter "$NS_G" "$PIN" icmp_error_translated)
	spawn udpb in_ns "$NS_C" $PEER udp-client --df --host 203.0.113.1 --port 6000 --bytes 1400 --timeout 10
	reap udpb "$LAST_PID"
	expect_mtu udpb
	grep -q "^ok udp df 1252 bytes mtu=1280" "$WORK/udpb.log" || fail "udpb: $(cat "$WORK/udpb.log")"
	[ "$(gw_counter "$NS_G" "$PIN" icmp_error_translated)" -gt "$translated" ] || fail "the gateway's own ICMP error was not translated"

	log "(b) port forward: 1 MB of TCP to 203.0.113.1:22012 learns mtu 1280"
	ip -n "$NS_C" route flush cache
	spawn tcpb in_ns "$NS_C" $PEER tcp-client --host 203.0.113.1 --port 22012 --bytes 1000000 --report-mtu --timeout 20
	reap tcpb "$LAST_PID"
	expect_mtu tcpb
done
assert_no_netfilter_rules_in "$NS_G" "$NS_GA"
log "PASS pmtu"
