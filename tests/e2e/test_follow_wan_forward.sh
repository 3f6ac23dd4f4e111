#!/bin/bash
# A port forward on "the WAN address", as xnat-import translates the most common one there is,
# `iptables -t nat -A PREROUTING -i wan0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.12:80`:
# "from": "wan:8080". Without --follow-wan a WAN without an address refuses the load, naming the
# field; with it the forward waits (parked) and is installed on the first address. Internet
# clients and a LAN host (hairpin) reach the server through it, as through one added live
# (xnat-map add tcp wan:9090 ...). Then the WAN reconnects as PPPoE does (the old address
# deleted, a new one added): the forwards move with masquerade, in the same log line; a new
# connection to the new address:port works, the old address's flows are gone, and the old
# address (put back as a /32 beside the new one, so packets still reach the gateway) no longer
# forwards. `xnat-map list` shows the wan: form throughout.
#
#   a12 10.0.0.12 (server :80) ─┐ swa     gwa                       rtr                 cli
#   a13 10.0.0.13 (hairpin)    ─┴─ br0 ── lan0 10.0.0.1   ra 203.0.113.254   eth0 198.51.100.2
#                                         wan0 203.0.113.1 (then .7) ── rb 198.51.100.254 ──
source "$(dirname "$0")/lib.sh" "$1"

NS_A12=$(ns_a 12)
NS_A13=$(ns_a 13)
OLD=203.0.113.1
NEW=203.0.113.7
CLIENT=198.51.100.2
XNAT_IMPORT=$BUILD_DIR/xnat-import

build_site_a 12 13
ns_create "$NS_C"
veth_link "$NS_R" rb 198.51.100.254/24 "$NS_C" eth0 $CLIENT/24
ip -n "$NS_C" route add default via 198.51.100.254
gro_on "$NS_SWA:pgw" "$NS_R:ra" # the peers of lan0 and wan0, which XDP redirects into
resolve_neighbour "$NS_GA" 203.0.113.254 10.0.0.12 10.0.0.13
on_fail() {
	[ -e "$PIN_A/xnat_config" ] && gw_report "$NS_GA" "$PIN_A"
	echo "    watcher log:" && sed 's/^/      /' "$WORK/follow.log" 2>/dev/null
}

log "xnat-import: -i WAN without -d becomes wan:8080, with no extra flag"
printf '%s\n' \
	"iptables -t nat -A PREROUTING -i wan0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.12:80" \
	"iptables -t nat -A POSTROUTING -s 10.0.0.0/24 ! -d 10.0.0.0/8 -o wan0 -j MASQUERADE" >"$WORK/rules"
"$XNAT_IMPORT" -o "$WORK/fwd.json" "$WORK/rules" 2>"$WORK/import.report" ||
	fail "xnat-import exited $?: $(cat "$WORK/import.report")"
grep -q '"from": "wan:8080", "to": "10.0.0.12:80"' "$WORK/fwd.json" || fail "no wan:8080 forward: $(cat "$WORK/fwd.json")"
"$XNAT_LOAD" --check "$WORK/fwd.json" >/dev/null || fail "xnat-load --check refuses the imported config"
CFG=$WORK/fwd.json

serve websrv "$NS_A12" tcp 80 masqsrv "$NS_C" tcp 7000
accepts() { grep -c "^accepted " "$WORK/websrv.log" || true; }
inet_to() { in_ns "$NS_C" $PEER tcp-client --host "$1" --port "$2" --timeout 5 --bytes 2000 >/dev/null; }
lan_to() { in_ns "$NS_A13" $PEER tcp-client --host "$1" --port "$2" --timeout 5 --bytes 2000 >/dev/null; }

log "a WAN without an address: refused without --follow-wan, naming the field"
ip -n "$NS_GA" addr flush dev wan0
FWD_ONLY=$(write_config fwd-only.json <<'JSON'
{ "port_forwards": [ { "proto": "tcp", "from": "wan:8080", "to": "10.0.0.12:80" } ] }
JSON
)
expect_fail 2 "port_forwards[0].from: wan:8080 is on the WAN address, and WAN_IF wan0 has no IPv4 address (xnat-load --follow-wan waits for one)" \
	in_ns "$NS_GA" "$XNAT_LOAD" --pin-dir "$BPFFS/refused" wan0 lan0 "$FWD_ONLY"
[ ! -e "$BPFFS/refused" ] || fail "a refused load left pins behind"

log "--follow-wan: the forward waits parked, and is installed on the first address"
XNAT_INSTANCES+=("$NS_GA $PIN_A") # unloaded on exit
spawn follow ip netns exec "$NS_GA" "$XNAT_LOAD" --pin-dir "$PIN_A" --follow-wan wan0 lan0 "$CFG"
WATCHER=$LAST_PID
wait_log follow "^following wan0: no IPv4 address; 1 masquerade rule and 1 port forward parked (no source NAT, nothing forwarded) until one appears$"
grep -q "^tcp wan:8080 -> 10.0.0.12:80 on wan: parked until the WAN has an IPv4 address$" "$WORK/follow.log" ||
	fail "the load report does not say the forward is parked"
gw_map "$NS_GA" "$PIN_A" list | grep -q "tcp wan:8080 -> 10.0.0.12:80 on wan (parked: the WAN has no IPv4 address)" ||
	fail "xnat-map list does not show the parked forward: $(gw_map "$NS_GA" "$PIN_A" list)"
ip -n "$NS_GA" addr add $OLD/24 dev wan0
ip -n "$NS_GA" route add default via 203.0.113.254
wait_log follow "^wan0: address $OLD appeared; 1 masquerade rule and 1 port forward unparked$"
gw_map "$NS_GA" "$PIN_A" list | grep -q "tcp wan:8080 ($OLD) -> 10.0.0.12:80 on wan" ||
	fail "xnat-map list does not show the forward on $OLD: $(gw_map "$NS_GA" "$PIN_A" list)"

log "internet and hairpin connections through wan:8080 on $OLD; one added live, wan:9090"
inet_to $OLD 8080 || fail "internet client -> $OLD:8080"
[ "$(last_peer websrv | cut -d' ' -f1)" = $CLIENT ] || fail "server saw $(last_peer websrv), expected $CLIENT"
lan_to $OLD 8080 || fail "hairpin 10.0.0.13 -> $OLD:8080"
[ "$(last_peer websrv | cut -d' ' -f1)" = $OLD ] || fail "hairpin: server saw $(last_peer websrv), expected $OLD"
out=$(gw_map "$NS_GA" "$PIN_A" add tcp wan:9090 10.0.0.12:80) || fail "xnat-map add tcp wan:9090 failed"
[ "$out" = "added rule 1: tcp wan:9090 ($OLD) -> 10.0.0.12:80 on wan" ] || fail "xnat-map add said: $out"
inet_to $OLD 9090 || fail "internet client -> $OLD:9090 (added live)"
spawn held in_ns "$NS_C" $PEER tcp-client --host $OLD --port 8080 --timeout 30 --hold "$WORK/release"
wait_log held "^holding"
conn_line "$NS_GA" "$PIN_A" "tcp ESTABLISHED src=$CLIENT dst=$OLD" "dport=8080" >/dev/null || fail "no held flow on $OLD:8080"

log "a PPPoE-like reconnect: $OLD deleted, $NEW added; forwards and masquerade move together"
ip -n "$NS_GA" addr del $OLD/24 dev wan0
wait_log follow "^wan0: no IPv4 address; masquerade and forwards keep $OLD until one appears (1 masquerade rule and 2 port forwards)$"
ip -n "$NS_GA" addr add $NEW/24 dev wan0
ip -n "$NS_GA" route add default via 203.0.113.254
wait_log follow "^wan0: address $OLD -> $NEW; 1 masquerade rule and 2 port forwards moved; [0-9]* connections* of $OLD ended$"
log "$(grep -- "-> $NEW" "$WORK/follow.log")"
if gw_map "$NS_GA" "$PIN_A" conns | grep -q "$OLD"; then
	fail "flows of $OLD are still in the table: $(gw_map "$NS_GA" "$PIN_A" conns | grep "$OLD")"
fi
list=$(gw_map "$NS_GA" "$PIN_A" list)
grep -q "^0	tcp wan:8080 ($NEW) -> 10.0.0.12:80 on wan" <<<"$list" || fail "list after the move: $list"
grep -q "^1	tcp wan:9090 ($NEW) -> 10.0.0.12:80 on wan" <<<"$list" || fail "list after the move: $list"
json=$(gw_map "$NS_GA" "$PIN_A" list --json)
python3 -c 'import json,sys; f=[r["from"] for r in json.load(sys.stdin)["port_forwards"]]; sys.exit(f != ["wan:8080", "wan:9090"])' <<<"$json" ||
	fail "list --json does not keep the wan: form: $json"

log "new connections on $NEW: internet, the live-added forward, hairpin, masquerade"
inet_to $NEW 8080 || fail "internet client -> $NEW:8080 after the reconnect"
[ "$(last_peer websrv | cut -d' ' -f1)" = $CLIENT ] || fail "server saw $(last_peer websrv), expected $CLIENT"
inet_to $NEW 9090 || fail "internet client -> $NEW:9090 after the reconnect"
lan_to $NEW 8080 || fail "hairpin 10.0.0.13 -> $NEW:8080"
[ "$(last_peer websrv | cut -d' ' -f1)" = $NEW ] || fail "hairpin: server saw $(last_peer websrv), expected $NEW"
lan_to $CLIENT 7000 || fail "masquerade 10.0.0.13 -> $CLIENT:7000"
[ "$(last_peer masqsrv | cut -d' ' -f1)" = $NEW ] || fail "masquerade: $CLIENT saw $(last_peer masqsrv), expected $NEW"

log "$OLD no longer forwards: back as a /32 beside $NEW, it is the gateway's own (refused)"
ip -n "$NS_GA" addr add $OLD/32 dev wan0
before=$(accepts)
if inet_to $OLD 8080 2>/dev/null; then fail "$OLD:8080 still forwards after the move"; fi
[ "$(accepts)" = "$before" ] || fail "the server accepted a connection to $OLD:8080"
gw_map "$NS_GA" "$PIN_A" list | grep -q "tcp wan:8080 ($NEW)" || fail "a second address moved the forward"
ip -n "$NS_GA" addr del $OLD/32 dev wan0

out=$(gw_map "$NS_GA" "$PIN_A" del tcp wan:9090) || fail "xnat-map del tcp wan:9090 failed"
[ "$out" = "deleted rule 1: tcp wan:9090 ($NEW) -> 10.0.0.12:80 on wan" ] || fail "xnat-map del said: $out"
if inet_to $NEW 9090 2>/dev/null; then fail "$NEW:9090 still forwards after del"; fi

log "SIGTERM: the watcher stops, xnat stays loaded"
touch "$WORK/release"
kill -TERM "$WATCHER"
expect_watcher_exit "$WATCHER" 0 60 SIGTERM
inet_to $NEW 8080 || fail "internet client -> $NEW:8080 after the watcher stopped"
assert_no_netfilter_rules_in "$NS_GA"
log "PASS follow wan forward"
