#!/bin/bash
# xnat-portmapd with real clients: Debian's natpmpc (libnatpmp) and pcp_client.py, a PCP client
# written from RFC 6887 apart from the server. A mapping is a forward an internet peer reaches
# with TCP and UDP; it goes on release, at expiry and when the daemon stops; a killed daemon's
# forwards are adopted by the next one; the policy refuses what it must, with the protocol's code.
source "$(dirname "$0")/lib.sh" "$1"

PORTMAPD=$BUILD_DIR/xnat-portmapd
PCP="python3 $E2E_DIR/pcp_client.py"
command -v natpmpc >/dev/null || fail "natpmpc is not installed (scripts/install-deps.sh installs it)"

build_topology
STATE=$WORK/portmapd.json
CONFIG=$(write_config portmap.json <<'JSON'
{
  "masquerade": [ { "source": "10.0.0.0/24", "ports": "1024-29999" } ],
  "port_forwards": [ { "proto": "tcp", "from": "wan:31000", "to": "10.0.0.12:22" } ],
  "port_mapping": { "ports": "30000-30999", "per_host": 4, "min_lifetime": 3, "max_lifetime": 600,
                    "clients": [ "10.0.0.0/25" ] }
}
JSON
)
gw_load "$NS_G" "$PIN" wan0 lan0 "$CONFIG" >/dev/null
start_portmapd() {
	spawn "$1" in_ns "$NS_G" "$PORTMAPD" --pin-dir "$PIN" --state "$STATE" "$CONFIG"
	wait_log "$1" "serving NAT-PMP and PCP on lan0 port 5351"
}
start_portmapd portmapd
serve tcpsrv "$NS_S" tcp 8080 udpsrv "$NS_S" udp 6005
# (natpmpc spells "lifetime" "liftime".)
natpmp() { in_ns "$NS_S" natpmpc -g 10.0.0.1 "$@" 2>&1; }
pcp() { in_ns "$1" $PCP --server "$2" "${@:3}"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }
listed() { gw_map "$NS_G" "$PIN" list --portmap-state "$STATE"; }

log "natpmpc: the external address is the WAN's"
out=$(natpmp)
grep -q "Public IP address : 198.51.100.1" <<<"$out" || fail "natpmpc said: $out"

log "natpmpc: TCP and UDP mappings, reached from the internet"
out=$(natpmp -a 30005 8080 tcp 120)
grep -Eq "Mapped public port 30005 protocol TCP to local port 8080 lif(e)?time 120" <<<"$out" || fail "natpmpc said: $out"
out=$(natpmp -a 30006 6005 udp 120)
grep -Eq "Mapped public port 30006 protocol UDP to local port 6005 lif(e)?time 120" <<<"$out" || fail "natpmpc said: $out"
through natpmp "through a NAT-PMP mapping" "$NS_C" 198.51.100.1 30005 30006 tcpsrv 198.51.100.2
listed | grep -E "tcp wan:30005 \(198.51.100.1\) -> 10.0.0.12:8080 on wan \(mapped: natpmp, expires in 1[0-2][0-9] s\)" >/dev/null ||
	fail "xnat-map list does not show the mapping's origin and expiry: $(listed)"
listed | grep -F "udp wan:30006 (198.51.100.1) -> 10.0.0.12:6005 on wan (mapped: natpmp" >/dev/null || fail "list misses the UDP mapping"
gw_map "$NS_G" "$PIN" list --json | grep -q 30005 && fail "list --json holds a mapped forward: it would not load as a config"


log "masquerade agrees: a flow the host opens from its mapped port leaves from the mapped one"
out=$(natpmp -a 30007 7007 tcp 120)
grep -q "Mapped public port 30007 protocol TCP" <<<"$out" || fail "natpmpc said: $out"
in_ns "$NS_C" $PEER tcp-server --port 7070 >"$WORK/wansrv.log" 2>&1 &
BG_PIDS+=($!)
wait_log wansrv listening
in_ns "$NS_S" $PEER tcp-client --host 198.51.100.2 --port 7070 --sport 7007 >/dev/null ||
	fail "the mapped host cannot connect out from its mapped port"
[ "$(last_peer wansrv)" = "198.51.100.1 30007" ] || fail "the peer saw '$(last_peer wansrv)', not 198.51.100.1 30007"

log "natpmpc: release (lifetime 0) removes the forward"
out=$(natpmp -a 30005 8080 tcp 0)
grep -Eq "public port 0 protocol TCP to local port 8080 lif(e)?time 0" <<<"$out" || fail "natpmpc said: $out"
listed | grep -q "wan:30005" && fail "the released mapping is still listed"
if in_ns "$NS_C" $PEER tcp-client --host 198.51.100.1 --port 30005 --timeout 2 >/dev/null 2>&1; then
	fail "30005 still reaches the host after release"
fi

log "PCP: MAP with a suggested port, renewed with the same nonce, refused for another nonce"
NONCE=00112233445566778899aabb
out=$(pcp "$NS_S" 10.0.0.1 map --proto tcp --internal-port 8080 --suggested-port 30077 --lifetime 300 --nonce $NONCE)
[ "$(json "['result_name']" <<<"$out")" = SUCCESS ] || fail "PCP MAP: $out"
[ "$(json "['assigned_external_port']" <<<"$out")" = 30077 ] || fail "the suggested free port was not honoured: $out"
[ "$(json "['assigned_external_address']" <<<"$out")" = 198.51.100.1 ] || fail "PCP MAP address: $out"
[ "$(json "['well_formed']" <<<"$out")" = True ] || fail "PCP answer not well formed: $out"
in_ns "$NS_C" $PEER tcp-client --host 198.51.100.1 --port 30077 >/dev/null || fail "30077 does not reach the host"
out=$(pcp "$NS_S" 10.0.0.1 map --proto tcp --internal-port 8080 --lifetime 300 --nonce ffffffffffffffffffffffff)
[ "$(json "['result_name']" <<<"$out")" = NOT_AUTHORIZED ] || fail "another nonce: $out"
listed | grep -F "tcp wan:30077 (198.51.100.1) -> 10.0.0.12:8080 on wan (mapped: pcp" >/dev/null || fail "list misses the PCP mapping"

log "PCP: ANNOUNCE, and the policy's refusals"
out=$(pcp "$NS_S" 10.0.0.1 announce)
[ "$(json "['result_name']" <<<"$out")" = SUCCESS ] || fail "ANNOUNCE: $out"
out=$(pcp "$NS_S" 10.0.0.1 map --proto tcp --internal-port 22 --third-party 10.0.0.13)
[ "$(json "['result_name']" <<<"$out")" = NOT_AUTHORIZED ] || fail "THIRD_PARTY for another host: $out"
out=$(pcp "$NS_S" 10.0.0.1 map --proto tcp --internal-port 22 --client-ip 10.0.0.13)
[ "$(json "['result_name']" <<<"$out")" = ADDRESS_MISMATCH ] || fail "a request naming another host: $out"
out=$(pcp "$NS_S" 10.0.0.1 map --proto tcp --internal-port 22 --suggested-port 31000 --prefer-failure)
[ "$(json "['result_name']" <<<"$out")" = CANNOT_PROVIDE_EXTERNAL ] || fail "the static forward's port: $out"
out=$(pcp "$NS_S" 10.0.0.1 raw 0201)
[ "$(json "['result_name']" <<<"$out")" = MALFORMED_REQUEST ] || fail "a truncated request: $out"

log "only the LAN's clients are served"
if pcp "$NS_C" 198.51.100.1 announce --timeout 1 >"$WORK/wan-pcp.out"; then
	fail "a request from the WAN side was answered: $(cat "$WORK/wan-pcp.out")"
fi
ip -n "$NS_S" addr add 10.0.0.200/24 dev eth0
if pcp "$NS_S" 10.0.0.1 announce --bind 10.0.0.200 --timeout 1 >"$WORK/outside.out"; then
	fail "a LAN source outside port_mapping.clients was answered: $(cat "$WORK/outside.out")"
fi

log "mappings expire (PCP, then natpmpc)"
out=$(pcp "$NS_S" 10.0.0.1 map --proto udp --internal-port 6006 --suggested-port 30100 --lifetime 3)
[ "$(json "['lifetime']" <<<"$out")" = 3 ] || fail "short lifetime: $out"
listed | grep -q "wan:30100" || fail "the short mapping is not listed"
for _ in $(seq 50); do listed | grep -q "wan:30100" || break; sleep 0.2; done
listed | grep -q "wan:30100" && fail "the mapping outlived its lifetime"
out=$(natpmp -a 30101 6008 udp 3)
grep -Eq "Mapped public port 30101 protocol UDP to local port 6008 lif(e)?time 3" <<<"$out" || fail "natpmpc said: $out"
listed | grep -q "wan:30101" || fail "natpmpc's short mapping is not listed"
for _ in $(seq 50); do listed | grep -q "wan:30101" || break; sleep 0.2; done
listed | grep -q "wan:30101" && fail "natpmpc's mapping outlived its lifetime"
wait_log portmapd "expired udp 10.0.0.12:6008 <- wan:30101"

log "a host holds at most per_host (4) mappings"
for port in 1 2 3 4 5; do
	out=$(pcp "$NS_S" 10.0.0.1 map --proto udp --internal-port $port)
	[ "$(json "['result_name']" <<<"$out")" = SUCCESS ] || break
done
[ "$(json "['result_name']" <<<"$out")" = USER_EX_QUOTA ] || fail "past the host's quota: $out"
[ "$(listed | grep -c "mapped:")" = 4 ] || fail "the host holds other than 4 mappings: $(listed)"

log "a flood from one host is rate-limited; the counts reach the exporter"
in_ns "$NS_S" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
announce = bytes([2, 0, 0, 0]) + bytes(20) + bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 12])
for _ in range(100):
    s.sendto(announce, ("10.0.0.1", 5351))
'
sleep 1.2 # the state is saved on the daemon's next tick
python3 - "$STATE" <<'PY' || fail "request counts: $(cat "$STATE")"
import json, sys
r = json.load(open(sys.argv[1]))["requests"]
assert r.get("rate_limited", 0) >= 50, f"rate_limited {r.get('rate_limited')}"
assert r.get("malformed", 0) >= 1 and r.get("quota", 0) >= 1 and r.get("nonce", 0) >= 1, r
assert r.get("not_served", 0) >= 1, r
PY
spawn exporter in_ns "$NS_G" "$BUILD_DIR/xnat-exporter" --pin-dir "$PIN" --portmap-state "$STATE" --listen 127.0.0.1:9469
for _ in $(seq 50); do in_ns "$NS_G" curl -sf 127.0.0.1:9469/metrics >"$WORK/metrics.txt" && break; sleep 0.1; done
grep -q '^xnat_portmap_mappings{via="pcp",proto="tcp"} 1$' "$WORK/metrics.txt" ||
	fail "exporter: $(grep portmap "$WORK/metrics.txt")"
grep -q '^xnat_portmap_requests_total{outcome="quota"} [1-9]' "$WORK/metrics.txt" ||
	fail "exporter: $(grep portmap_requests "$WORK/metrics.txt")"
pkill -f "xnat-exporter --pin-dir $PIN" || true

log "a reload of the config keeps the mapped forwards"
out=$(gw_load "$NS_G" "$PIN" wan0 lan0 "$CONFIG")
grep -q "kept [1-9][0-9]* mapped forward(s) of xnat-portmapd" <<<"$out" || fail "the reload said: $out"
listed | grep -q "wan:30077 (198.51.100.1) -> 10.0.0.12:8080 on wan (mapped: pcp" || fail "the reload lost a mapping"
in_ns "$NS_C" $PEER tcp-client --host 198.51.100.1 --port 30077 >/dev/null || fail "30077 broke across the reload"
sleep 1.5 # a tick of the daemon: it must have had nothing to put back
grep -q "reinstalled" "$WORK/portmapd.log" && fail "the daemon had to reinstall forwards: $(cat "$WORK/portmapd.log")"

log "killed, restarted: the forwards are adopted, with their expiry"
pkill -9 -f "xnat-portmapd --pin-dir $PIN"
for _ in $(seq 50); do pgrep -f "xnat-portmapd --pin-dir $PIN" >/dev/null || break; sleep 0.1; done
listed | grep -q "wan:30077" || fail "the killed daemon's forward is gone: $(listed)"
gw_map "$NS_G" "$PIN" add tcp wan:30500 10.0.0.12:8080 >/dev/null # not the daemon's: left alone
spawn listener in_ns "$NS_S" $PCP listen --seconds 4 --interface eth0
listener_pid=$LAST_PID
sleep 0.5
start_portmapd portmapd2
grep -q "adopted tcp 10.0.0.12:8080 <- wan:30077" "$WORK/portmapd2.log" || fail "not adopted: $(cat "$WORK/portmapd2.log")"
# 30007's host has a flow out of its mapped port: its own masquerade mapping sits there.
grep -q "adopted tcp 10.0.0.12:7007 <- wan:30007" "$WORK/portmapd2.log" || fail "30007 not adopted: $(cat "$WORK/portmapd2.log")"
grep -q "removed tcp 10.0.0.12:8080 <- wan:30500" "$WORK/portmapd2.log" && fail "the operator's forward was taken for a mapping"

log "--check changes nothing, even beside a running daemon"
before=$(listed)
in_ns "$NS_G" "$PORTMAPD" --pin-dir "$PIN" --state "$STATE" --check "$CONFIG" 2>"$WORK/check.err" ||
	fail "--check beside the daemon: $(cat "$WORK/check.err")"
[ "$(listed)" = "$before" ] || fail "--check changed the forwards"
[ -e "$STATE" ] || fail "--check removed the state file"

log "an operator's xnat-map del ends the mapping, and the epoch starts again"
gw_map "$NS_G" "$PIN" del udp wan:30006 >/dev/null
wait_log portmapd2 "dropped udp 10.0.0.12:6005 <- wan:30006: its forward was removed from the instance" 30
grep -q '"external_port": 30006' "$STATE" && fail "the state still holds the deleted mapping"
out=$(pcp "$NS_S" 10.0.0.1 announce)
[ "$(json "['epoch']" <<<"$out")" -le 2 ] || fail "the epoch did not start again: $out"
in_ns "$NS_C" $PEER tcp-client --host 198.51.100.1 --port 30077 >/dev/null || fail "30077 broke across the restart"
out=$(pcp "$NS_S" 10.0.0.1 map --proto tcp --internal-port 8080 --lifetime 300 --nonce $NONCE)
[ "$(json "['assigned_external_port']" <<<"$out")" = 30077 ] || fail "renewal after the restart moved the port: $out"

log "the restarted daemon announced itself with a new epoch (RFC 6887 §14.1.3, RFC 6886 §3.2.1)"
wait "$listener_pid" 2>/dev/null || true
for _ in $(seq 60); do grep -q '"count"' "$WORK/listener.log" && break; sleep 0.1; done
python3 - "$WORK/listener.log" <<'PY' || fail "announcements: $(cat "$WORK/listener.log")"
import json, sys
seen = json.load(open(sys.argv[1]))["datagrams"]
pcp = [d for d in seen if d.get("family") == "pcp" and d.get("opcode_name") == "ANNOUNCE" and d.get("response")]
natpmp = [d for d in seen if d.get("family") == "natpmp" and d.get("external_address") == "198.51.100.1"]
assert pcp and natpmp, "no PCP ANNOUNCE or no NAT-PMP address announcement"
assert all(d["source"] == "10.0.0.1" and d["source_port"] == 5351 for d in pcp + natpmp), "not from 10.0.0.1:5351"
assert max(d["epoch"] for d in pcp + natpmp) <= 5, "the epoch did not start again"
assert len(pcp) >= 3, "fewer than 3 ANNOUNCEs in 3 seconds"
PY

log "SIGTERM removes every mapping, and only those"
pkill -TERM -f "xnat-portmapd --pin-dir $PIN"
wait_log portmapd2 "stopping"
for _ in $(seq 50); do pgrep -f "xnat-portmapd --pin-dir $PIN" >/dev/null || break; sleep 0.1; done
after=$(listed)
grep -q "mapped" <<<"$after" && fail "mapped forwards outlived the daemon: $after"
grep -q "tcp wan:30500 (198.51.100.1) -> 10.0.0.12:8080" <<<"$after" || fail "the operator's forward went with the daemon's"
grep -q "tcp wan:31000 (198.51.100.1) -> 10.0.0.12:22" <<<"$after" || fail "the static forward went with the daemon's"
[ -e "$STATE" ] && fail "the state file outlived the daemon"

log "a config without port_mapping, or overlapping masquerade, is refused"
expect_fail 2 "no port_mapping section" in_ns "$NS_G" "$PORTMAPD" --pin-dir "$PIN" --check "$(write_config plain.json <<<'{}')"
expect_fail 2 "port_mapping.ports: 20000-20999 overlaps masquerade[0].ports 1024-29999" \
	in_ns "$NS_G" "$PORTMAPD" --pin-dir "$PIN" --check "$(write_config overlap.json <<'JSON'
{ "masquerade": [ { "source": "10.0.0.0/24", "ports": "1024-29999" } ], "port_mapping": { "ports": "20000-20999" } }
JSON
)"
assert_no_netfilter_rules_in "$NS_G"
log "ok"
