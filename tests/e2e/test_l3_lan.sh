#!/bin/bash
# A LAN without an Ethernet header: the gateway's LAN is a tun device (bare IP, as a WireGuard
# link to a site would be). --mode xdp naming it is refused; --mode auto runs tc there. A port
# forward into the tun LAN (TCP, UDP), masquerade out of it (TCP, UDP, ping) and hairpin (a LAN host
# reaching the forward through the public address, out and back in through the same tun) work.
#
#   cli 198.51.100.2 eth0 ── wan0 198.51.100.1, 203.0.113.1/32  gw
#                            lan0 (tun) 10.0.0.1 ══ tun wire ══ tun0 10.0.0.12, 10.0.0.13  srv
source "$(dirname "$0")/lib.sh" "$1"

INET=198.51.100.2
PUB=203.0.113.1
on_fail() { [ -e "$PIN" ] && gw_report "$NS_G" "$PIN"; }

build_preset_namespaces
veth_link "$NS_G" wan0 198.51.100.1/24 "$NS_C" eth0 $INET/24
ip -n "$NS_G" addr add $PUB/32 dev wan0
ip -n "$NS_C" route add $PUB/32 via 198.51.100.1
spawn wire python3 "$E2E_DIR/tun_wire.py" "$NS_G" lan0 "$NS_S" tun0
wait_log wire ready
ip -n "$NS_G" addr add 10.0.0.1/24 dev lan0
ip -n "$NS_G" link set lan0 up
ip -n "$NS_S" addr add 10.0.0.12/24 dev tun0
ip -n "$NS_S" addr add 10.0.0.13/24 dev tun0
ip -n "$NS_S" link set tun0 up
ip -n "$NS_S" route add default dev tun0 src 10.0.0.12

CFG=$(fwd_masq_config l3lan.json $PUB 10.0.0.12 '"not_destination": ["10.0.0.0/24"]')

log "--mode xdp naming the tun LAN is refused"
expect_fail 2 "--mode xdp: LAN_IF lan0 (link type none) carries bare IP packets" \
	gw_load "$NS_G" "$PIN" --mode xdp wan0 lan0 "$CFG"
[ ! -e "$PIN/xnat_config" ] || fail "a refused load left pins behind"

log "--mode auto runs tc on both"
report=$(gw_load "$NS_G" "$PIN" --mode auto wan0 lan0 "$CFG")
grep -q "lan0.*tc.*bare IP" <<<"$report" || fail "load report does not say tc for lan0: $report"

check_forward_and_masquerade "the tun LAN"

log "hairpin: 10.0.0.13 reaches the forward on $PUB, out and back in through the tun"
in_ns "$NS_S" $PEER tcp-client --bind 10.0.0.13 --host $PUB --port 8080 --bytes 100000 >"$WORK/hairpin.log" 2>&1 ||
	fail "hairpin TCP: $(cat "$WORK/hairpin.log")"
[ "$(last_peer tcpsrv | cut -d' ' -f1)" = $PUB ] || fail "hairpinned server saw '$(last_peer tcpsrv)', not $PUB"
conn_line "$NS_G" "$PIN" "src=10.0.0.13 dst=$PUB" "dport=8080 src=10.0.0.12 dst=$PUB sport=7000" >/dev/null ||
	fail "no connection line for the hairpinned flow"
assert_conn_count "$NS_G" "$PIN" "after the flows"
[ "$(gw_counter "$NS_G" "$PIN" pass_malformed)" -eq 0 ] || fail "pass_malformed is $(gw_counter "$NS_G" "$PIN" pass_malformed)"
assert_no_netfilter_rules_in "$NS_G"

log "PASS l3 lan"
