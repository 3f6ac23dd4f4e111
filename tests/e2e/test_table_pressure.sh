#!/bin/bash
# A full connection table refuses new flows and nothing else: with a table of 4096
# connections, a 20 MB TCP stream through a port forward finishes byte-identical while 45056
# new SYNs (11x the table) arrive; the flows beyond capacity are refused and counted as
# drop_ct_full, and the table stays whole (no duplicate tuples, no half without its peer).
source "$(dirname "$0")/lib.sh" "$1"

STREAM="python3 $E2E_DIR/stream.py"
TABLE=4096
# One more table's worth than the 10x asserted below, so a few frames lost on a loaded machine
# cannot fail the test.
FLOOD=$((11 * TABLE))

build_topology
CONFIG=$(write_config pressure.json <<JSON
{ "port_forwards": [
    { "proto": "tcp", "from": "203.0.113.1:22012", "to": "10.0.0.12:5001" },
    { "proto": "tcp", "from": "203.0.113.1:9000", "to": "10.0.0.12:9" },
    { "proto": "tcp", "from": "203.0.113.1:22013", "to": "10.0.0.12:5002" } ],
  "timeouts": { "tcp_established": 3600, "tcp_transitory": 3600, "tcp_close": 3600 },
  "limits": { "connections": $TABLE } }
JSON
)
xnat_load --mode tc wan0 lan0 "$CONFIG" >/dev/null
on_fail() { gw_report "$NS_G" "$PIN"; cat "$WORK"/*.log; }

spawn sink in_s $STREAM tcp-sink --port 5001
# The echo server behind 22013: a connection to it succeeds exactly when its flow is admitted.
spawn echo in_s $PEER tcp-server --port 5002
wait_log sink listening
wait_log echo listening
spawn stream in_c $STREAM tcp-send --host 203.0.113.1 --port 22012 --bytes 20000000 --seconds 6
stream_pid=$LAST_PID
wait_log stream "^sending"
sleep 1
new_before=$(counter new_flow)
full_before=$(counter drop_ct_full)

log "flood: $FLOOD new SYNs at a table of $TABLE connections, while the stream runs"
client_mac=$(in_c cat /sys/class/net/eth0/address)
wan_mac=$(in_g cat /sys/class/net/wan0/address)
in_c python3 "$E2E_DIR/syn_flood.py" eth0 "$client_mac" "$wan_mac" 198.51.100.100 203.0.113.1 9000 \
	1024 "$FLOOD" >"$WORK/gen.log" || fail "the SYN flood failed: $(cat "$WORK/gen.log")"
log "$(cat "$WORK/gen.log")"
# The flood must overlap the stream, or the stream proves nothing about a full table.
kill -0 "$stream_pid" 2>/dev/null || fail "the stream ended before the flood did; it tested nothing"

log "the stream finishes intact"
reap stream "$stream_pid"
log "$(grep '^ok stream' "$WORK/stream.log")"
grep -qF "$(sed -n 's/^ok stream \([0-9]*\) bytes sha256=\([0-9a-f]*\).*/received \1 bytes/p' "$WORK/stream.log")" \
	"$WORK/sink.log" || fail "the sink did not log the stream"

log "flows beyond capacity are refused and counted"
new=$(($(counter new_flow) - new_before))
full=$(($(counter drop_ct_full) - full_before))
conns=$(xnat_map stats --json | python3 -c "import json,sys; print(json.load(sys.stdin)['connections'])")
# The SYNs xnat saw: each is admitted (new_flow) or refused (drop_ct_full), so the two deltas add
# up to what the veth delivered, which on a loaded machine may be less than what was sent.
seen=$((new + full))
log "xnat saw $seen of $FLOOD SYNs: accepted $new new flows, refused $full (drop_ct_full); table holds $conns of $TABLE"
[ "$conns" -eq "$TABLE" ] || fail "the table holds $conns connections, expected it full at $TABLE"
[ "$seen" -le "$FLOOD" ] || fail "xnat counted $seen outcomes for $FLOOD SYNs"
# One connection (the stream's) was there before the flood; every SYN is accepted or refused.
[ "$new" -eq $((TABLE - 1)) ] || fail "$new flows accepted, expected $((TABLE - 1))"
[ "$full" -ge $((9 * TABLE)) ] || fail "drop_ct_full rose by $full, expected at least $((9 * TABLE))"
[ "$(counter drop_ct_collision)" -eq 0 ] || fail "collisions counted: $(counter drop_ct_collision)"

log "the table is consistent: conns, stats and the map agree, every half has its peer"
xnat_map conns --json >"$WORK/conns.json"
bpftool map dump pinned "$PIN/xnat_ct" -j >"$WORK/ct.json" || fail "bpftool cannot dump the ct map"
python3 "$E2E_DIR/ct_check.py" "$WORK/ct.json" "$WORK/conns.json" "$conns" >"$WORK/check.log" ||
	fail "table inconsistent: $(cat "$WORK/check.log")"
log "$(cat "$WORK/check.log")"

log "a new flow is refused while the table is full, and accepted once it is flushed"
new_before=$(counter new_flow)
full_before=$(counter drop_ct_full)
if in_c $PEER tcp-client --host 203.0.113.1 --port 22013 --timeout 2 >"$WORK/refused.log" 2>&1; then
	fail "a new connection got through a full table: $(cat "$WORK/refused.log")"
fi
full_delta=$(($(counter drop_ct_full) - full_before))
new_delta=$(($(counter new_flow) - new_before))
log "refused: drop_ct_full +$full_delta, new_flow +$new_delta"
[ "$full_delta" -ge 1 ] || fail "the refused connection's SYN was not counted as drop_ct_full"
[ "$new_delta" -eq 0 ] || fail "new_flow rose by $new_delta while the table was full"
xnat_map flush >/dev/null
in_c $PEER tcp-client --host 203.0.113.1 --port 22013 >"$WORK/admitted.log" 2>&1 ||
	fail "no new flow after flush: $(cat "$WORK/admitted.log")"
log "after flush: $(cat "$WORK/admitted.log")"
assert_no_netfilter_rules
log "PASS table pressure"
