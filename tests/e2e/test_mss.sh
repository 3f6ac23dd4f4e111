#!/bin/bash
# MSS clamping against a path-MTU black hole, the PPPoE failure it exists for. The gateway's
# WAN link has MTU 1492; the router on its far side cannot send "fragmentation needed" (its
# ICMP is filtered, as on many real paths), so a host that sends 1500-byte segments towards the
# LAN stalls. Without clamping, a bulk TCP exchange through masquerade stalls; with
# "mss_clamp": "pmtu" the SYNs carry 1452 and the same exchange (1 MB each way, DF set, as
# Linux TCP sends) completes through masquerade and through a port forward.
#
#   h12 10.0.0.12 (1500) ── lan0 gw wan0 ══ 1492 ══ rtr ── srv 192.0.2.2 (1500)
#                        10.0.0.1   198.51.100.1   198.51.100.254 / 192.0.2.254
source "$(dirname "$0")/lib.sh" "$1"

NS_H=${TAG}h12
NS_R=${TAG}rtr
SRV=192.0.2.2
on_fail() { [ -e "$PIN" ] && gw_report "$NS_G" "$PIN"; }

ensure_bpffs
ns_create "$NS_H" "$NS_G" "$NS_R" "$NS_S"
ns_forwarding "$NS_G" "$NS_R"
veth_link "$NS_H" eth0 10.0.0.12/24 "$NS_G" lan0 10.0.0.1/24
veth_link "$NS_G" wan0 198.51.100.1/24 "$NS_R" eth0 198.51.100.254/24 1492
veth_link "$NS_R" eth1 192.0.2.254/24 "$NS_S" eth0 $SRV/24
ip -n "$NS_G" addr add 203.0.113.1/32 dev wan0
ip -n "$NS_H" route add default via 10.0.0.1
ip -n "$NS_G" route add default via 198.51.100.254
ip -n "$NS_R" route add 203.0.113.1/32 via 198.51.100.1
ip -n "$NS_S" route add default via 192.0.2.254
# The black hole: the router drops what does not fit and tells no one.
in_ns "$NS_R" iptables -A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP

RULES='"port_forwards": [ { "proto": "tcp", "from": "203.0.113.1:8080", "to": "10.0.0.12:7000" } ],
  "masquerade": [ { "source": "10.0.0.0/24" } ]'
PLAIN=$(write_config plain.json <<<"{ $RULES }")
CLAMP=$(write_config clamp.json <<<"{ $RULES, \"mss_clamp\": \"pmtu\" }")

serve srvtcp "$NS_S" tcp 7100 htcp "$NS_H" tcp 7000

log "without clamping, 1 MB through masquerade stalls at the black hole"
gw_load "$NS_G" "$PIN" wan0 lan0 "$PLAIN" >/dev/null
in_ns "$NS_H" $PEER tcp-client --host $SRV --port 7100 --bytes 1000000 --timeout 8 >"$WORK/plain.log" 2>&1 &&
	fail "the transfer completed without clamping: the black hole is not one, the test proves nothing"
[ "$(gw_counter "$NS_G" "$PIN" mss_clamped)" -eq 0 ] || fail "mss_clamped counted without the option"

log "with mss_clamp pmtu (1492 - 40 = 1452), the same transfer completes"
gw_load "$NS_G" "$PIN" wan0 lan0 "$CLAMP" >/dev/null
in_ns "$NS_H" $PEER tcp-client --host $SRV --port 7100 --bytes 1000000 --timeout 20 >"$WORK/masq.log" 2>&1 ||
	fail "masqueraded transfer with clamping: $(cat "$WORK/masq.log")"
[ "$(gw_counter "$NS_G" "$PIN" mss_clamped)" -ge 1 ] || fail "no SYN was clamped"

log "through the port forward: the server's SYN is clamped on its way in"
clamped=$(gw_counter "$NS_G" "$PIN" mss_clamped)
in_ns "$NS_S" $PEER tcp-client --host 203.0.113.1 --port 8080 --bytes 1000000 --timeout 20 >"$WORK/fwd.log" 2>&1 ||
	fail "forwarded transfer with clamping: $(cat "$WORK/fwd.log")"
[ "$(gw_counter "$NS_G" "$PIN" mss_clamped)" -gt "$clamped" ] || fail "the forwarded flow's SYN or SYN-ACK was not clamped"
assert_no_netfilter_rules_in "$NS_G"

log "PASS mss"
