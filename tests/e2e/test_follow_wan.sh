#!/bin/bash
# xnat-load --follow-wan: masquerade without a to_source follows the WAN address. It starts on
# a WAN without an address (rules parked, the load succeeds) and takes the first one; the
# gateway's address goes away and comes back (flows kept), then changes as on a new DHCP lease,
# to an address with a label (wan0:dhcp) as DHCP clients add them: new flows leave with the new
# address as the internet server's socket sees it, the old address's flows are gone from the
# table with their mappings, each step is one log line, and SIGTERM ends the watcher with exit
# 0 and xnat still loaded. A second watcher logs a failed update (the instance moved away) and
# retries it until it succeeds, without a notice, then exits 3 when the WAN interface is
# deleted (PPPoE redial).
#
#   lan 10.0.0.12 ── lan0 10.0.0.1   gw   wan0 198.51.100.1 (then .7) ── 198.51.100.254  inet
#                                                                         203.0.113.10 (server)
source "$(dirname "$0")/lib.sh" "$1"

NS_L=${TAG}lan
NS_I=${TAG}inet
OLD=198.51.100.1
NEW=198.51.100.7
SERVER=203.0.113.10
on_fail() {
	[ -e "$PIN" ] && gw_report "$NS_G" "$PIN"
	echo "    watcher log:" && sed 's/^/      /' "$WORK/follow.log" 2>/dev/null
}

ensure_bpffs
ns_create "$NS_G" "$NS_L" "$NS_I"
ns_forwarding "$NS_G"
veth_link "$NS_G" wan0 $OLD/24 "$NS_I" eth0 198.51.100.254/24
veth_link "$NS_G" lan0 10.0.0.1/24 "$NS_L" eth0 10.0.0.12/24
ip -n "$NS_I" addr add $SERVER/32 dev eth0
ip -n "$NS_G" route add default via 198.51.100.254
ip -n "$NS_L" route add default via 10.0.0.1

CFG=$(write_config masq.json <<'JSON'
{ "masquerade": [ { "source": "10.0.0.0/24" } ] }
JSON
)

spawn tcpsrv in_ns "$NS_I" $PEER tcp-server --bind $SERVER --port 7000
# Bound to the server address: an unbound UDP socket would answer from 198.51.100.254.
spawn udpsrv in_ns "$NS_I" $PEER udp-server --bind $SERVER --port 7001
wait_log tcpsrv listening
wait_log udpsrv listening

log "xnat-load --follow-wan loads on a WAN without an address, then takes the first one"
ip -n "$NS_G" addr flush dev wan0
# Directly, not through a shell function, so that the pid is xnat-load's own.
spawn follow ip netns exec "$NS_G" "$XNAT_LOAD" --pin-dir "$PIN" --follow-wan wan0 lan0 "$CFG"
WATCHER=$LAST_PID
wait_log follow "^following wan0: no IPv4 address; 1 masquerade rule parked (no source NAT) until one appears$"
grep -q "^masquerade 10.0.0.0/24 -> WAN address:" "$WORK/follow.log" || fail "load report missing"
ip -n "$NS_G" addr add $OLD/24 dev wan0
ip -n "$NS_G" route add default via 198.51.100.254
wait_log follow "^wan0: address $OLD appeared; 1 masquerade rule unparked$"
gw_map "$NS_G" "$PIN" list | grep -q "masquerade 10.0.0.0/24 -> $OLD (WAN address)" ||
	fail "xnat-map list does not show the rule on $OLD: $(gw_map "$NS_G" "$PIN" list)"

tcp_to_server() { in_ns "$NS_L" $PEER tcp-client --host $SERVER --port 7000 --timeout 5 "$@"; }
in_ns "$NS_L" $PEER udp-client --host $SERVER --port 7001 --sport 5001 --count 3 >/dev/null || fail "UDP before the change"
tcp_to_server >/dev/null || fail "TCP before the change"
[ "$(last_peer tcpsrv | cut -d' ' -f1)" = $OLD ] || fail "server saw $(last_peer tcpsrv), expected $OLD"
spawn held in_ns "$NS_L" $PEER tcp-client --host $SERVER --port 7000 --timeout 30 --hold "$WORK/release"
wait_log held "^holding"
conn_line "$NS_G" "$PIN" "src=10.0.0.12" "dst=$OLD" "sport=7001" >/dev/null || fail "no UDP flow of $OLD"
conn_line "$NS_G" "$PIN" "tcp ESTABLISHED src=10.0.0.12" "dst=$OLD" >/dev/null || fail "no held TCP flow of $OLD"
old_flows=$(gw_map "$NS_G" "$PIN" conns | grep -c "dst=$OLD ")

log "the address goes and comes back: one line each way, flows kept"
ip -n "$NS_G" addr del $OLD/24 dev wan0
wait_log follow "^wan0: no IPv4 address; masquerade keeps $OLD until one appears (1 masquerade rule)$"
ip -n "$NS_G" addr add $OLD/24 dev wan0
ip -n "$NS_G" route add default via 198.51.100.254
wait_log follow "^wan0: address $OLD back; 1 masquerade rule unchanged$"
[ "$(gw_map "$NS_G" "$PIN" conns | grep -c "dst=$OLD ")" -eq "$old_flows" ] ||
	fail "flows of $OLD were ended although it came back"

log "a new address, labelled wan0:dhcp: rules move, the old address's flows end"
ip -n "$NS_G" addr del $OLD/24 dev wan0
ip -n "$NS_G" addr add $NEW/24 dev wan0 label wan0:dhcp
ip -n "$NS_G" route add default via 198.51.100.254
wait_log follow "^wan0: address $OLD -> $NEW; 1 masquerade rule moved; $old_flows connections of $OLD ended$"
log "$(grep -- "-> $NEW" "$WORK/follow.log")"
if gw_map "$NS_G" "$PIN" conns | grep -q "$OLD"; then
	fail "flows of $OLD are still in the table: $(gw_map "$NS_G" "$PIN" conns | grep "$OLD")"
fi
gw_map "$NS_G" "$PIN" list | grep -q "masquerade 10.0.0.0/24 -> $NEW (WAN address)" ||
	fail "xnat-map list does not show the rule on $NEW: $(gw_map "$NS_G" "$PIN" list)"

tcp_to_server >/dev/null || fail "TCP after the change"
[ "$(last_peer tcpsrv | cut -d' ' -f1)" = $NEW ] || fail "server saw $(last_peer tcpsrv) after the change, expected $NEW"
in_ns "$NS_L" $PEER udp-client --host $SERVER --port 7001 --sport 5002 --count 3 >/dev/null || fail "UDP after the change"
grep -q "^datagram from $NEW " "$WORK/udpsrv.log" || fail "UDP server never saw $NEW"
conn_line "$NS_G" "$PIN" "src=10.0.0.12" "sport=5002" "dst=$NEW" >/dev/null || fail "no UDP flow of $NEW"
[ "$(gw_map "$NS_G" "$PIN" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["drop_ports_exhausted"])')" = 0 ] ||
	fail "ports ran out"

log "SIGTERM: the watcher stops cleanly, xnat stays loaded"
kill -TERM "$WATCHER"
expect_watcher_exit "$WATCHER" 0 60 SIGTERM
grep -q "^stopping; xnat stays loaded" "$WORK/follow.log" || fail "no stop line"
gw_map "$NS_G" "$PIN" conns | grep -q "dst=$NEW " || fail "instance not usable after the watcher stopped"
tcp_to_server >/dev/null || fail "TCP after the watcher stopped"
[ "$(grep -c . "$WORK/follow.log")" -le 11 ] || fail "watcher logged more than one line per change"
touch "$WORK/release"
assert_no_netfilter_rules_in "$NS_G"

spawn follow2 ip netns exec "$NS_G" "$XNAT_LOAD" --pin-dir "$PIN" --follow-wan wan0 lan0 "$CFG"
WATCHER=$LAST_PID
wait_log follow2 "^following wan0: address $NEW, 1 masquerade rule$"

log "a failed update is logged and retried without a notice; the watcher keeps running"
THIRD=198.51.100.9
mv "$PIN/xnat_config" "$PIN/xnat_config_away" # the instance cannot be read: a failed update (bpffs names take no dot)
ip -n "$NS_G" addr del $NEW/24 dev wan0
ip -n "$NS_G" addr add $THIRD/24 dev wan0
wait_log follow2 "^error: .* (retrying in [0-9]*s)$"
mv "$PIN/xnat_config_away" "$PIN/xnat_config"
wait_log follow2 "^wan0: address $NEW -> $THIRD; 1 masquerade rule moved; " 100
kill -0 "$WATCHER" || fail "the watcher exited on a failed update"
gw_map "$NS_G" "$PIN" list | grep -q "masquerade 10.0.0.0/24 -> $THIRD (WAN address)" ||
	fail "xnat-map list does not show the rule on $THIRD: $(gw_map "$NS_G" "$PIN" list)"

log "the WAN interface is deleted (PPPoE redial): the watcher exits 3 and says why"
wan_ifindex=$(ip -n "$NS_G" -o link show dev wan0 | cut -d: -f1)
ip -n "$NS_G" link del wan0
expect_watcher_exit "$WATCHER" 3 10 "wan0 was deleted"
grep -q "^the WAN interface wan0 (ifindex $wan_ifindex) is gone (deleted, or a PPPoE link redialled); exiting with status 3" "$WORK/follow2.log" ||
	fail "no gone line: $(cat "$WORK/follow2.log")"
grep -q "^xnat-load: the WAN interface is gone; run xnat-load again on the new one$" "$WORK/follow2.log" ||
	fail "no error line: $(cat "$WORK/follow2.log")"
log "PASS follow wan"
