#!/bin/bash
# The seed setup with a whole subnet behind one rule per side: gateway A maps public ports
# 22000-22255 onto 10.0.0.0/24:22 (port 22000+i <-> host 10.0.0.i), gateway B maps
# 10.0.0.0/24:22 back onto them from its LAN. Host 10.0.1.13 reaches two servers on LAN A.
# First from configs, then with the rules added live by xnat-map.
#
#   a12 10.0.0.12 ─┐
#   a13 10.0.0.13 ─┴─ swa ── gwa 203.0.113.1 ── rtr ── 198.51.100.1 gwb ── b13 10.0.1.13
source "$(dirname "$0")/lib.sh" "$1"

GA=203.0.113.1
GB=198.51.100.1

build_seed_topology 12 13
resolve_neighbour "$NS_GA" 203.0.113.254
resolve_neighbour "$NS_GB" 198.51.100.254
on_fail() {
	[ -e "$PIN_A" ] && gw_report "$NS_GA" "$PIN_A"
	[ -e "$PIN_B" ] && gw_report "$NS_GB" "$PIN_B"
}

CONFIG_A=$(write_config a.json <<'JSON'
{ "port_forwards": [ { "proto": "tcp", "from": "203.0.113.1:22000-22255", "to": "10.0.0.0/24:22" } ] }
JSON
)
CONFIG_B=$(write_config b.json <<'JSON'
{ "port_forwards": [ { "proto": "tcp", "on": "lan", "from": "10.0.0.0/24:22", "to": "203.0.113.1:22000-22255" } ],
  "masquerade": [ { "source": "10.0.1.0/24", "not_destination": ["10.0.0.0/8"] } ] }
JSON
)
EMPTY_A=$(write_config a-empty.json <<<'{}')
MASQ_B=$(write_config b-masq.json <<'JSON'
{ "masquerade": [ { "source": "10.0.1.0/24", "not_destination": ["10.0.0.0/8"] } ] }
JSON
)

for h in 12 13; do
	spawn "srv$h" in_ns "$(ns_a $h)" $PEER tcp-server --port 22
	wait_log "srv$h" listening
done

# Both servers at once from 10.0.1.13, each connection held open while both gateways' tables
# are checked, then released.
reach_both() {
	local round=$1 h pid P peer E
	local -A pids
	for h in 12 13; do
		spawn "cli$h" in_ns "$NS_B13" $PEER tcp-client --host 10.0.0.$h --port 22 --bytes 200000 --seed "$h" \
			--hold "$WORK/release$round"
		pids[$h]=$LAST_PID
	done
	for h in 12 13; do
		wait_log "cli$h" "^holding" 150
		P=$(client_port "cli$h")
		peer=$(last_peer "srv$h")
		[ "${peer% *}" = $GB ] || fail "10.0.0.$h saw '$peer', expected $GB"
		E=${peer#* }
		log "10.0.1.13:$P -> 10.0.0.$h:22 went through $GA:220$h as $GB:$E"
		conn_line "$NS_GB" "$PIN_B" "tcp ESTABLISHED src=10.0.1.13 dst=10.0.0.$h sport=$P dport=22 src=$GA dst=$GB sport=220$h dport=$E timeout=" >/dev/null ||
			fail "gateway B has no line for 10.0.1.13:$P -> 10.0.0.$h:22"
		conn_line "$NS_GA" "$PIN_A" "tcp ESTABLISHED src=$GB dst=$GA sport=$E dport=220$h src=10.0.0.$h dst=$GB sport=22 dport=$E timeout=" >/dev/null ||
			fail "gateway A has no line with dport 220$h for $GB:$E"
	done
	touch "$WORK/release$round"
	for h in 12 13; do
		reap "cli$h" "${pids[$h]}"
		grep -q "ok tcp after hold" "$WORK/cli$h.log" || fail "held connection to 10.0.0.$h did not carry data again"
	done
}

log "== rules from the configs"
gw_load "$NS_GA" "$PIN_A" wan0 lan0 "$CONFIG_A" >/dev/null
gw_load "$NS_GB" "$PIN_B" wan0 lan0 "$CONFIG_B" >/dev/null
reach_both 1

log "== rules added live: gateway A from an empty config, gateway B from masquerade only"
gw_load "$NS_GA" "$PIN_A" wan0 lan0 "$EMPTY_A" >/dev/null
gw_load "$NS_GB" "$PIN_B" wan0 lan0 "$MASQ_B" >/dev/null
gw_map "$NS_GA" "$PIN_A" flush >/dev/null
gw_map "$NS_GB" "$PIN_B" flush >/dev/null
[ -z "$(gw_map "$NS_GA" "$PIN_A" list)" ] || fail "gateway A still has rules: $(gw_map "$NS_GA" "$PIN_A" list)"
if in_ns "$NS_B13" $PEER tcp-client --host 10.0.0.12 --port 22 --timeout 2 >/dev/null 2>&1; then
	fail "10.0.0.12 reachable without the forwards"
fi
out=$(gw_map "$NS_GA" "$PIN_A" add tcp $GA:22000-22255 10.0.0.0/24:22)
log "gateway A: $out"
grep -qF "tcp $GA:22000-22255 -> 10.0.0.0/24:22 on wan" <<<"$out" || fail "add on A said: $out"
out=$(gw_map "$NS_GB" "$PIN_B" add tcp 10.0.0.0/24:22 $GA:22000-22255 --on lan)
log "gateway B: $out"
grep -qF "tcp 10.0.0.0/24:22 -> $GA:22000-22255 on lan" <<<"$out" || fail "add on B said: $out"
reach_both 2

assert_no_netfilter_rules_in "$NS_GA" "$NS_GB"
log "PASS subnet map"
