#!/bin/bash
# xnat-portmapd on a WAN that reconnects (PPPoE, DHCP) under xnat-load --follow-wan: the
# mapped forward moves with the address, and the daemon tells the LAN: its epoch starts again
# (RFC 6887 §8.5) and it announces the new address to 224.0.0.1:5350 (RFC 6886 §3.2.1), so
# clients renew; NAT-PMP and PCP then answer with the new address, and the internet reaches the
# host through it.
#
#   a12 10.0.0.12 (server :80) ── br0 ── lan0 10.0.0.1  gwa  wan0 203.0.113.1 (then .7) ── rtr ── cli 198.51.100.2
source "$(dirname "$0")/lib.sh" "$1"

PORTMAPD=$BUILD_DIR/xnat-portmapd
PCP="python3 $E2E_DIR/pcp_client.py"
command -v natpmpc >/dev/null || fail "natpmpc is not installed (scripts/install-deps.sh installs it)"
NS_A12=$(ns_a 12)
OLD=203.0.113.1
NEW=203.0.113.7
STATE=$WORK/portmapd.json

build_site_a 12
ns_create "$NS_C"
veth_link "$NS_R" rb 198.51.100.254/24 "$NS_C" eth0 198.51.100.2/24
ip -n "$NS_C" route add default via 198.51.100.254
gro_on "$NS_SWA:pgw" "$NS_R:ra"
resolve_neighbour "$NS_GA" 203.0.113.254 10.0.0.12
CFG=$(write_config portmap-wan.json <<'JSON'
{ "masquerade": [ { "source": "10.0.0.0/24", "ports": "1024-29999" } ],
  "port_mapping": { "ports": "30000-30999" } }
JSON
)
XNAT_INSTANCES+=("$NS_GA $PIN_A")
spawn follow ip netns exec "$NS_GA" "$XNAT_LOAD" --pin-dir "$PIN_A" --follow-wan wan0 lan0 "$CFG"
WATCHER=$LAST_PID
wait_log follow "^following wan0"
spawn portmapd in_ns "$NS_GA" "$PORTMAPD" --pin-dir "$PIN_A" --state "$STATE" "$CFG"
wait_log portmapd "serving NAT-PMP and PCP on lan0 port 5351"
serve websrv "$NS_A12" tcp 80
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }
inet_to() { in_ns "$NS_C" $PEER tcp-client --host "$1" --port "$2" --timeout 5 --bytes 2000 >/dev/null; }

log "a PCP mapping on $OLD"
NONCE=0102030405060708090a0b0c
out=$(in_ns "$NS_A12" $PCP --server 10.0.0.1 map --proto tcp --internal-port 80 --suggested-port 30080 --lifetime 600 --nonce $NONCE)
[ "$(json "['assigned_external_address']" <<<"$out"):$(json "['assigned_external_port']" <<<"$out")" = "$OLD:30080" ] ||
	fail "PCP MAP: $out"
inet_to $OLD 30080 || fail "the internet does not reach the host through $OLD:30080"

log "the WAN reconnects with $NEW: the forward moves, the daemon announces the new address"
spawn listener in_ns "$NS_A12" $PCP listen --seconds 4 --interface eth0
listener_pid=$LAST_PID
sleep 0.5
ip -n "$NS_GA" addr del $OLD/24 dev wan0
ip -n "$NS_GA" addr add $NEW/24 dev wan0
ip -n "$NS_GA" route add default via 203.0.113.254
wait_log follow "^wan0: address $OLD -> $NEW"
wait_log portmapd "the WAN address is now $NEW" 30
wait "$listener_pid" 2>/dev/null || true
for _ in $(seq 60); do grep -q '"count"' "$WORK/listener.log" && break; sleep 0.1; done
python3 - "$WORK/listener.log" "$NEW" <<'PY' || fail "announcements: $(cat "$WORK/listener.log")"
import json, sys
seen = json.load(open(sys.argv[1]))["datagrams"]
natpmp = [d for d in seen if d.get("family") == "natpmp" and d.get("external_address") == sys.argv[2]]
pcp = [d for d in seen if d.get("family") == "pcp" and d.get("opcode_name") == "ANNOUNCE"]
assert natpmp, "no NAT-PMP announcement of the new address"
assert pcp and min(d["epoch"] for d in pcp) <= 1, "no PCP ANNOUNCE with a new epoch"
PY
gw_map "$NS_GA" "$PIN_A" list --portmap-state "$STATE" | grep -q "tcp wan:30080 ($NEW) -> 10.0.0.12:80 on wan (mapped: pcp" ||
	fail "the mapped forward did not move: $(gw_map "$NS_GA" "$PIN_A" list --portmap-state "$STATE")"

log "clients renew onto $NEW, and the internet reaches the host there"
out=$(in_ns "$NS_A12" natpmpc -g 10.0.0.1 2>&1)
grep -q "Public IP address : $NEW" <<<"$out" || fail "natpmpc: $out"
out=$(in_ns "$NS_A12" $PCP --server 10.0.0.1 map --proto tcp --internal-port 80 --lifetime 600 --nonce $NONCE)
[ "$(json "['assigned_external_address']" <<<"$out"):$(json "['assigned_external_port']" <<<"$out")" = "$NEW:30080" ] ||
	fail "the renewal: $out"
inet_to $NEW 30080 || fail "the internet does not reach the host through $NEW:30080"

kill -TERM "$WATCHER"
expect_watcher_exit "$WATCHER" 0 60 SIGTERM
assert_no_netfilter_rules_in "$NS_GA"
log "ok"
