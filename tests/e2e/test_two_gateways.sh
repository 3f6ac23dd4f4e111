#!/bin/bash
# The seed setup (docs/ARCHITECTURE.md, "The two-gateway setup") with one rule per side:
# host 10.0.1.13 behind gateway B reaches 10.0.0.12:22 behind gateway A across the internet. Gateway B sends LAN traffic for
# 10.0.0.12:22 to gateway A's public forward and masquerades it; gateway A forwards it to the
# server. Both gateways load the shipped configs/seed-gateway-{a,b}.json. With the hosts' TX
# checksum offload on and off.
#
#   a12 10.0.0.12 ── swa ── gwa 203.0.113.1 ── rtr ── 198.51.100.1 gwb ── b13 10.0.1.13
source "$(dirname "$0")/lib.sh" "$1"

CONFIGS=$E2E_DIR/../../configs
NS_A12=$(ns_a 12)
GA=203.0.113.1
GB=198.51.100.1

build_seed_topology 12
resolve_neighbour "$NS_GA" 203.0.113.254
resolve_neighbour "$NS_GB" 198.51.100.254
on_fail() {
	[ -e "$PIN_A" ] && gw_report "$NS_GA" "$PIN_A"
	[ -e "$PIN_B" ] && gw_report "$NS_GB" "$PIN_B"
}

gw_load "$NS_GA" "$PIN_A" wan0 lan0 "$CONFIGS/seed-gateway-a.json" >/dev/null
gw_load "$NS_GB" "$PIN_B" wan0 lan0 "$CONFIGS/seed-gateway-b.json" >/dev/null
serve tcpsrv "$NS_A12" tcp 22

for offload in on off; do
	log "== the hosts' tx checksum offload $offload"
	offload_in "$offload" "$NS_A12:eth0" "$NS_SWA:pgw" "$NS_B13:eth0"
	log "10.0.1.13 -> 10.0.0.12:22 across both gateways: 1 MB echoed intact, held open"
	hold_tcp hold 150 "$NS_B13" --host 10.0.0.12 --port 22 --bytes 1000000 --hold "$WORK/release$offload"
	hold_pid=$LAST_PID
	P=$HELD_PORT
	peer=$(last_peer tcpsrv)
	[ "${peer% *}" = $GB ] || fail "server saw '$peer', expected gateway B's public address $GB"
	E=${peer#* }
	log "10.0.1.13:$P left gateway B as $GB:$E"

	log "both gateways show the flow in conntrack's form, with the same external port"
	b=$(conn_line "$NS_GB" "$PIN_B" "tcp ESTABLISHED src=10.0.1.13 dst=10.0.0.12 sport=$P dport=22 src=$GA dst=$GB sport=22012 dport=$E timeout=") ||
		fail "gateway B has no seed-form line for 10.0.1.13:$P"
	a=$(conn_line "$NS_GA" "$PIN_A" "tcp ESTABLISHED src=$GB dst=$GA sport=$E dport=22012 src=10.0.0.12 dst=$GB sport=22 dport=$E timeout=") ||
		fail "gateway A has no seed-form line for $GB:$E"
	printf '    gateway B: %s\n    gateway A: %s\n' "$b" "$a"

	touch "$WORK/release$offload"
	reap hold "$hold_pid"
	grep -q "ok tcp after hold" "$WORK/hold.log" || fail "held connection did not carry data again"

	log "a second connection works too, with its own external port"
	spawn again in_ns "$NS_B13" $PEER tcp-client --host 10.0.0.12 --port 22
	reap again "$LAST_PID"
	peer2=$(last_peer tcpsrv)
	[ "${peer2% *}" = $GB ] && [ "${peer2#* }" != "$E" ] || fail "second connection seen as '$peer2'"
done

for g in A B; do
	ns=NS_G$g pin=PIN_$g
	n=$(gw_counter "${!ns}" "${!pin}" redirected)
	log "gateway $g fast path redirected $n packets"
	[ "$n" -gt 100 ] || fail "gateway $g redirected only $n packets"
done
assert_no_netfilter_rules_in "$NS_GA" "$NS_GB"
log "PASS two gateways"
