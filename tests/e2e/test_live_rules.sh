#!/bin/bash
# Rules change live with xnat-map: added rules take effect, deleted rules stop new flows while
# established ones finish, and bad input is refused without changing anything.
source "$(dirname "$0")/lib.sh" "$1"

build_topology
CONFIG=$(write_config fwd.json <<'JSON'
{ "port_forwards": [ { "proto": "tcp", "from": "203.0.113.1:22012", "to": "10.0.0.12:22" } ] }
JSON
)
gw_load "$NS_G" "$PIN" wan0 lan0 "$CONFIG" >/dev/null
serve tcpsrv "$NS_S" tcp 22 udpsrv "$NS_S" udp 6005

log "port 2222 is not forwarded yet"
if in_ns "$NS_C" $PEER tcp-client --host 203.0.113.1 --port 2222 --timeout 2 >/dev/null 2>&1; then
	fail "2222 reached the server before its rule existed"
fi

log "add tcp 203.0.113.1:2222 -> 10.0.0.12:22"
out=$(gw_map "$NS_G" "$PIN" add tcp 203.0.113.1:2222 10.0.0.12:22)
[ "$out" = "added rule 1: tcp 203.0.113.1:2222 -> 10.0.0.12:22 on wan" ] || fail "add said: $out"
in_ns "$NS_C" $PEER tcp-client --host 203.0.113.1 --port 2222 >/dev/null || fail "2222 does not work after add"
gw_map "$NS_G" "$PIN" list | grep -qF "tcp 203.0.113.1:2222 -> 10.0.0.12:22 on wan" || fail "list misses the rule"

log "add a UDP range live"
gw_map "$NS_G" "$PIN" add udp 203.0.113.1:7000-7009 10.0.0.12:6000 >/dev/null
in_ns "$NS_C" $PEER udp-client --host 203.0.113.1 --port 7005 --count 5 >/dev/null || fail "UDP range does not work"

log "delete 2222: a held connection finishes, new ones are refused"
spawn hold in_ns "$NS_C" $PEER tcp-client --host 203.0.113.1 --port 2222 --hold "$WORK/release"
hold_pid=$LAST_PID
wait_log hold "^holding"
out=$(gw_map "$NS_G" "$PIN" del tcp 203.0.113.1:2222)
[ "$out" = "deleted rule 1: tcp 203.0.113.1:2222 -> 10.0.0.12:22 on wan" ] || fail "del said: $out"
if in_ns "$NS_C" $PEER tcp-client --host 203.0.113.1 --port 2222 --timeout 2 >/dev/null 2>&1; then
	fail "2222 still opens new connections after del"
fi
touch "$WORK/release"
reap hold "$hold_pid"

log "bad input is refused with one line, exit 2, and nothing changes"
before=$(gw_map "$NS_G" "$PIN" list)
expect_fail 2 "overlaps rule 0 (tcp 203.0.113.1:22012 -> 10.0.0.12:22 on wan)" \
	gw_map "$NS_G" "$PIN" add tcp 203.0.113.1:22012 10.0.0.13:22
expect_fail 2 "FROM: port 70000 out of range (1-65535)" gw_map "$NS_G" "$PIN" add tcp 203.0.113.1:70000 10.0.0.12:22
expect_fail 2 'PROTO: protocol must be "tcp" or "udp", got "sctp"' gw_map "$NS_G" "$PIN" add sctp 203.0.113.1:1 10.0.0.12:1
expect_fail 2 'TO: bad IPv4 address "10.0.0.300"' gw_map "$NS_G" "$PIN" add tcp 203.0.113.1:1 10.0.0.300:1
expect_fail 2 "FROM names 10 address:port pairs but TO names 2" \
	gw_map "$NS_G" "$PIN" add udp 203.0.113.1:8000-8009 10.0.0.12:1-2
expect_fail 2 '--on: must be "wan" or "lan", got "dmz"' gw_map "$NS_G" "$PIN" add tcp 203.0.113.1:1 10.0.0.12:1 --on dmz
expect_fail 2 "no tcp rule from 203.0.113.1:9999 on wan" gw_map "$NS_G" "$PIN" del tcp 203.0.113.1:9999
[ "$(gw_map "$NS_G" "$PIN" list)" = "$before" ] || fail "a refused change altered the rules"

log "100 add/del cycles leave the rule set as it was"
for i in $(seq 100); do
	gw_map "$NS_G" "$PIN" add tcp 203.0.113.1:3000 10.0.0.12:22 >/dev/null
	gw_map "$NS_G" "$PIN" del tcp 203.0.113.1:3000 >/dev/null
done
[ "$(gw_map "$NS_G" "$PIN" list)" = "$before" ] || fail "add/del cycles altered the rules"
in_ns "$NS_C" $PEER tcp-client --host 203.0.113.1 --port 22012 >/dev/null || fail "22012 broke during cycles"
log "flush removes every connection"
n=$(gw_map "$NS_G" "$PIN" conns | wc -l)
[ "$n" -gt 0 ] || fail "no connections to flush"
[ "$(gw_map "$NS_G" "$PIN" flush)" = "flushed $n connections" ] || fail "flush count"
[ -z "$(gw_map "$NS_G" "$PIN" conns)" ] || fail "connections left after flush"
gw_map "$NS_G" "$PIN" stats | grep -qE "^connections +0 " || fail "stats still count connections"
in_ns "$NS_C" $PEER tcp-client --host 203.0.113.1 --port 22012 >/dev/null || fail "no new flow after flush"
assert_no_netfilter_rules_in "$NS_G"
log "PASS live rules"
