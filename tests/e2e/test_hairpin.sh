#!/bin/bash
# Hairpin: a LAN host reaching a port forward through the gateway's public address gets to the
# LAN server, and the flow is also source-NATed to the public address, so the server's replies
# go back through the gateway. The forward keeps working from the internet. In --mode auto
# with TX checksum offload on and off, and in --mode xdp with offload off.
#
#   a12 10.0.0.12 (server) ─┐ swa       gwa                rtr               cli
#   a13 10.0.0.13 (client) ─┴─ br0 ── lan0 10.0.0.1     ra 203.0.113.254   eth0 198.51.100.2
#                                   wan0 203.0.113.1 ──    rb 198.51.100.254 ──
source "$(dirname "$0")/lib.sh" "$1"

NS_A12=$(ns_a 12)
NS_A13=$(ns_a 13)
PUB=203.0.113.1

build_site_a 12 13
ns_create "$NS_C"
veth_link "$NS_R" rb 198.51.100.254/24 "$NS_C" eth0 198.51.100.2/24
ip -n "$NS_C" route add default via 198.51.100.254
gro_on "$NS_SWA:pgw" "$NS_R:ra" # the peers of lan0 and wan0, which XDP redirects into
resolve_neighbour "$NS_GA" 203.0.113.254 10.0.0.12 10.0.0.13

CONFIG=$(write_config hairpin.json <<'JSON'
{ "port_forwards": [
    { "proto": "tcp", "from": "203.0.113.1:22012", "to": "10.0.0.12:22" },
    { "proto": "udp", "from": "203.0.113.1:6000", "to": "10.0.0.12:6000" } ],
  "masquerade": [ { "source": "10.0.0.0/24", "not_destination": ["10.0.0.0/8"] } ] }
JSON
)
on_fail() { [ -e "$PIN_A" ] && gw_report "$NS_GA" "$PIN_A"; }

serve tcpsrv "$NS_A12" tcp 22 udpsrv "$NS_A12" udp 6000

run_variant() {
	local mode=$1 offload=$2 v=$3 out cport peer line
	log "== --mode $mode, tx checksum offload $offload"
	offload_in "$offload" "$NS_A12:eth0" "$NS_A13:eth0" "$NS_C:eth0" "$NS_SWA:pgw"
	load_in_mode "$NS_GA" "$PIN_A" "$mode" "$CONFIG" lan
	gw_map "$NS_GA" "$PIN_A" flush >/dev/null

	log "TCP: 10.0.0.13 -> $PUB:22012 reaches 10.0.0.12:22, which sees $PUB"
	hold_tcp hold 100 "$NS_A13" --host $PUB --port 22012 --bytes 300000 --hold "$WORK/release$v"
	local hold_pid=$LAST_PID
	cport=$HELD_PORT
	peer=$(last_peer tcpsrv)
	[ "${peer% *}" = $PUB ] || fail "server saw '$peer', expected $PUB (hairpin source NAT)"
	line=$(conn_line "$NS_GA" "$PIN_A" "tcp ESTABLISHED src=10.0.0.13 dst=$PUB sport=$cport dport=22012 src=10.0.0.12 dst=$PUB sport=22 dport=${peer#* } timeout=") ||
		fail "no hairpin connection line"
	printf '    %s\n' "$line"
	touch "$WORK/release$v"
	reap hold "$hold_pid"
	grep -q "ok tcp after hold" "$WORK/hold.log" || fail "held hairpin connection did not carry data again"

	log "UDP: 10.0.0.13 -> $PUB:6000 reaches 10.0.0.12:6000, which sees $PUB"
	out=$(in_ns "$NS_A13" $PEER udp-client --host $PUB --port 6000 --count 20) || fail "UDP hairpin failed"
	cport=$(sed -n 's/.*local=[0-9.]*:\([0-9]*\).*/\1/p' <<<"$out")
	peer=$(last_peer udpsrv)
	[ "${peer% *}" = $PUB ] || fail "UDP server saw '$peer', expected $PUB"
	conn_line "$NS_GA" "$PIN_A" "udp REPLIED src=10.0.0.13 dst=$PUB sport=$cport dport=6000 src=10.0.0.12 dst=$PUB sport=6000 dport=${peer#* } " >/dev/null ||
		fail "no UDP hairpin connection line"

	log "the forward still works from the internet, with the client's own address"
	spawn inet in_ns "$NS_C" $PEER tcp-client --host $PUB --port 22012
	reap inet "$LAST_PID"
	[ "$(last_peer tcpsrv)" = "198.51.100.2 $(client_port inet)" ] ||
		fail "server saw '$(last_peer tcpsrv)' for the internet client"
}

run_variant auto on 1
run_variant auto off 2
run_variant xdp off 3
assert_no_netfilter_rules_in "$NS_GA"
log "PASS hairpin"
