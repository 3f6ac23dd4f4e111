#!/bin/bash
# Fragmented datagrams end to end (RFC 4787 REQ-14): 4000-byte UDP datagrams and 4000-byte
# pings, each three fragments on the 1500-byte veth links, cross a port forward and a
# masquerade in both directions and arrive whole: the echo servers get the whole datagram and
# send it back just as big, and the clients check every byte. Run in tc mode and in XDP mode.
#
#   client ns 198.51.100.2 --- wan0 gateway lan0 --- server ns 10.0.0.12
#   forward 203.0.113.1:7001 -> 10.0.0.12:7001; the LAN masqueraded to 198.51.100.1
source "$(dirname "$0")/lib.sh" "$1"

build_topology
CONFIG=$(write_config frag.json <<'JSON'
{ "port_forwards": [ { "proto": "udp", "from": "203.0.113.1:7001", "to": "10.0.0.12:7001" } ],
  "masquerade": [ { "source": "10.0.0.0/24" } ] }
JSON
)
on_fail() { [ -e "$PIN" ] && gw_report "$NS_G" "$PIN"; }

for ns in "$NS_C" "$NS_S"; do
	[ "$(ip -n "$ns" link show eth0 | sed -n 's/.* mtu \([0-9]*\) .*/\1/p')" = 1500 ] || fail "veth MTU is not 1500"
done

serve srvudp "$NS_S" udp 7001 cliudp "$NS_C" udp 7002

run_mode() {
	local mode=$1 v=$2 tracked_before no_first_before redirected_before sport

	log "== --mode $mode"
	offload_in off "$NS_C:eth0" "$NS_S:eth0"
	load_in_mode "$NS_G" "$PIN" "$mode" "$CONFIG" wan lan
	tracked_before=$(gw_counter "$NS_G" "$PIN" frag_tracked)
	no_first_before=$(gw_counter "$NS_G" "$PIN" drop_frag_no_first)
	redirected_before=$(($(gw_counter "$NS_G" "$PIN" redirected) + $(gw_counter "$NS_G" "$PIN" redirected_neigh)))

	log "UDP through the port forward: 5 datagrams of 4000 bytes there and back"
	sport=$((41000 + v))
	in_ns "$NS_C" $PEER udp-client --host 203.0.113.1 --port 7001 --sport $sport --bytes 4000 --count 5 --timeout 3 \
		>"$WORK/fwd$v.log" 2>&1 || { cat "$WORK/fwd$v.log" >&2; fail "4000-byte datagrams through the forward did not come back whole"; }
	grep -q "^datagram from 198.51.100.2 $sport$" "$WORK/srvudp.log" ||
		fail "the server did not see the client's own address 198.51.100.2:$sport"

	log "UDP through the masquerade: 5 datagrams of 4000 bytes there and back"
	sport=$((42000 + v))
	in_ns "$NS_S" $PEER udp-client --host 198.51.100.2 --port 7002 --sport $sport --bytes 4000 --count 5 --timeout 3 \
		>"$WORK/masq$v.log" 2>&1 || { cat "$WORK/masq$v.log" >&2; fail "4000-byte datagrams through the masquerade did not come back whole"; }
	grep -q "^datagram from 198.51.100.1 " "$WORK/cliudp.log" ||
		fail "the internet host did not see the gateway's address: $(cat "$WORK/cliudp.log")"

	log "ping -s 4000 through the masquerade (the reply is as big)"
	in_ns "$NS_S" ping -c 3 -i 0.2 -W 2 -s 4000 -M dont 198.51.100.2 >"$WORK/ping$v.log" 2>&1 ||
		{ cat "$WORK/ping$v.log" >&2; fail "ping -s 4000 failed"; }
	grep -q "4008 bytes from 198.51.100.2" "$WORK/ping$v.log" || fail "no 4008-byte echo reply: $(cat "$WORK/ping$v.log")"
	conn_line "$NS_G" "$PIN" "icmp " "src=10.0.0.12 dst=198.51.100.2 " "src=198.51.100.2 dst=198.51.100.1 " >/dev/null ||
		fail "no ICMP connection line"

	# Every datagram above is three fragments each way: 5 + 5 datagrams and 3 pings, sent and
	# answered, are 26 first fragments.
	local tracked=$(($(gw_counter "$NS_G" "$PIN" frag_tracked) - tracked_before))
	local no_first=$(($(gw_counter "$NS_G" "$PIN" drop_frag_no_first) - no_first_before))
	local redirected=$(($(gw_counter "$NS_G" "$PIN" redirected) + $(gw_counter "$NS_G" "$PIN" redirected_neigh) - redirected_before))
	log "frag_tracked +$tracked, drop_frag_no_first +$no_first, redirected +$redirected"
	[ "$tracked" -ge 26 ] || fail "only $tracked first fragments were tracked, expected 26"
	[ "$no_first" -eq 0 ] || fail "$no_first later fragments were dropped without their first"
	[ "$redirected" -ge 78 ] || fail "the fast path redirected only $redirected fragments of 78"
}

run_mode tc 1
run_mode xdp 2

assert_no_netfilter_rules_in "$NS_G"
log "PASS fragments"
