#!/bin/bash
# A WAN without an Ethernet header: the gateway reaches the internet over a tun device (TUN
# mode, bare IP packets), as it would over PPPoE or WireGuard. --mode xdp is refused there,
# --mode auto picks tc, and port forwards (TCP, UDP), masquerade (TCP, UDP, ping), an ICMP
# error from the internet, the gateway's own ICMP error going out through the tun (path MTU
# discovery across a forward), traffic to the gateway itself and `xnat-map conns` all work.
#
#   cli 198.51.100.2 tun0 ══ tun wire ══ wan0 (tun) 198.51.100.1, 203.0.113.1/32  gw
#                                         lan0 10.0.0.1 (mtu 1280) ── eth0 10.0.0.12 (mtu 1280) srv
source "$(dirname "$0")/lib.sh" "$1"

INET=198.51.100.2
PUB=203.0.113.1
SRV=10.0.0.12
on_fail() { [ -e "$PIN" ] && gw_report "$NS_G" "$PIN"; }

build_preset_namespaces
spawn wire python3 "$E2E_DIR/tun_wire.py" "$NS_C" tun0 "$NS_G" wan0
wait_log wire ready
ip -n "$NS_C" addr add $INET/24 dev tun0
ip -n "$NS_C" link set tun0 up
ip -n "$NS_C" route add $PUB/32 dev tun0
ip -n "$NS_G" addr add 198.51.100.1/24 dev wan0
ip -n "$NS_G" addr add $PUB/32 dev wan0
ip -n "$NS_G" link set wan0 up
veth_link "$NS_G" lan0 10.0.0.1/24 "$NS_S" eth0 $SRV/24 1280
# The server takes 1460-byte segments although its link carries 1280, so TCP to it needs
# path-MTU discovery (as when the small link is mid-path).
ip -n "$NS_S" route add default via 10.0.0.1 advmss 1460

CFG=$(fwd_masq_config l3.json $PUB $SRV)

log "--mode xdp on a bare-IP interface is refused and loads nothing"
expect_fail 2 "--mode xdp: WAN_IF wan0 (link type none) carries bare IP packets" \
	gw_load "$NS_G" "$PIN" --mode xdp wan0 lan0 "$CFG"
[ ! -e "$PIN/xnat_config" ] || fail "a refused load left pins behind"
in_ns "$NS_G" tc filter show dev wan0 ingress | grep -q bpf && fail "a refused load left a tc filter on wan0"

log "--mode auto picks tc on the tun WAN"
report=$(gw_load "$NS_G" "$PIN" --mode auto wan0 lan0 "$CFG")
grep -q "wan0.*tc.*bare IP" <<<"$report" || fail "load report does not say tc for wan0: $report"
assert_no_netfilter_rules_in "$NS_G"

check_forward_and_masquerade "the tun WAN"

log "an ICMP error from the internet reaches the LAN host in its own form"
translated=$(gw_counter "$NS_G" "$PIN" icmp_error_translated)
in_ns "$NS_S" $PEER udp-client --host $INET --port 7198 --count 1 --timeout 2 >"$WORK/unreach.log" 2>&1 &&
	fail "UDP to a closed port got an echo"
[ "$(gw_counter "$NS_G" "$PIN" icmp_error_translated)" -gt "$translated" ] ||
	fail "the port unreachable from $INET was not translated back (icmp_error_translated unchanged)"

log "the gateway's own ICMP error leaves through the tun translated: path MTU across the forward"
ip -n "$NS_C" route flush cache # the forward's bulk TCP above learned the path MTU already
translated=$(gw_counter "$NS_G" "$PIN" icmp_error_translated)
in_ns "$NS_C" $PEER udp-client --df --host $PUB --port 5353 --bytes 1400 --timeout 10 >"$WORK/pmtu-udp.log" 2>&1 ||
	fail "DF UDP of 1400 bytes to the forward: $(cat "$WORK/pmtu-udp.log")"
grep -q "^ok udp df 1252 bytes mtu=1280" "$WORK/pmtu-udp.log" || fail "pmtu-udp: $(cat "$WORK/pmtu-udp.log")"
[ "$(gw_counter "$NS_G" "$PIN" icmp_error_translated)" -gt "$translated" ] || fail "no ICMP error was translated on the tun's egress"
ip -n "$NS_C" route flush cache
in_ns "$NS_C" $PEER tcp-client --host $PUB --port 8080 --bytes 1000000 --report-mtu --timeout 20 >"$WORK/pmtu.log" 2>&1 ||
	fail "bulk TCP to the forward behind a 1280 link: $(cat "$WORK/pmtu.log")"
grep -q "^mtu 1280$" "$WORK/pmtu.log" || fail "client did not learn path MTU 1280: $(cat "$WORK/pmtu.log")"

log "traffic to the gateway itself over the tun still reaches it (passed up without a header)"
in_ns "$NS_C" ping -c 2 -W 2 198.51.100.1 >/dev/null || fail "ping to the gateway's WAN address over the tun"
in_ns "$NS_C" ping -c 2 -W 2 $PUB >/dev/null || fail "ping to the gateway's public address over the tun"
in_ns "$NS_G" ping -c 2 -W 2 $INET >/dev/null || fail "ping from the gateway to the internet host"
[ "$(gw_counter "$NS_G" "$PIN" pass_malformed)" -eq 0 ] || fail "pass_malformed is $(gw_counter "$NS_G" "$PIN" pass_malformed)"

log "PASS l3 wan"
