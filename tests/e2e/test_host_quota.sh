#!/bin/bash
# Per-host quotas on masquerade ("limits": {"host_connections": 20, "host_ports": 10}): one LAN
# host cannot take the table or the port pool from the others.
#   - Ports: h12 opens 15 UDP flows from 15 source ports (15 mappings). The first 10 are
#     answered, the other 5 are refused (drop_host_ports) and answered with ICMP administratively
#     prohibited (icmp_refusals.lan, on by default), so each fails at once with EHOSTUNREACH.
#     conns shows exactly 10 flows of h12, and xnat-map hosts 10 connections and 10 ports. A
#     flow from a port h12 already has a mapping for costs no port and still works; a new TCP
#     connection fails at once with EHOSTUNREACH ("No route to host", ICMP 3/13 from the
#     gateway's LAN address 10.0.0.1) instead of timing out. Another LAN host, h13, still gets
#     ports, and the internet host sees its traffic from the masquerade address. A flush gives
#     h12 its quota back.
#   - Connections: h12 sends from one source port to 25 destination ports (endpoint-independent
#     mapping: one mapping, 25 flows). The first 20 are answered, the other 5 refused by
#     drop_host_connections, with the ICMP error; conns shows exactly 20 flows of h12, all on one
#     external port (xnat-map hosts: 20 connections, 1 port). TCP fails fast again; h13 is
#     unaffected.
#   - refusal_icmp_sent counts every ICMP error sent; none is rate-limited.
# Run in --mode auto (tc on veth) with TX checksum offload on (the refused packets are
# CHECKSUM_PARTIAL) and off, and in --mode xdp with offload off.
#
#   h12 10.0.0.12 ─┐ sw       gw                     cli (the internet host)
#   h13 10.0.0.13 ─┴─ br0 ── lan0 10.0.0.1           eth0 198.51.100.2
#                          wan0 198.51.100.1 ───────
source "$(dirname "$0")/lib.sh" "$1"

NS_SW=${TAG}sw
NS_H12=${TAG}h12
NS_H13=${TAG}h13
WAN=198.51.100.1
INET=198.51.100.2
HOST_CONNS=20
HOST_PORTS=10
on_fail() { [ -e "$PIN" ] && gw_report "$NS_G" "$PIN"; tail -n 20 "$WORK"/*.log; }

ensure_bpffs
ns_create "$NS_G" "$NS_C"
ns_forwarding "$NS_G"
veth_link "$NS_G" wan0 $WAN/24 "$NS_C" eth0 $INET/24
switch_create "$NS_SW"
switch_plug "$NS_SW" pgw "$NS_G" lan0 10.0.0.1/24
lan_host "$NS_H12" "$NS_SW" p12 10.0.0.12/24 10.0.0.1
lan_host "$NS_H13" "$NS_SW" p13 10.0.0.13/24 10.0.0.1
gro_on "$NS_C:eth0" "$NS_SW:pgw" # the peers of wan0 and lan0, which XDP redirects into
resolve_neighbour "$NS_G" $INET

CONFIG=$(write_config quota.json <<JSON
{ "masquerade": [ { "source": "10.0.0.0/24" } ],
  "limits": { "host_connections": $HOST_CONNS, "host_ports": $HOST_PORTS } }
JSON
)

spawn tcpsrv in_ns "$NS_C" $PEER tcp-server --port 7000
spawn udpsrv in_ns "$NS_C" $PEER udp-server --port 7001
# 30 echo servers, 7100-7129: the destinations of one source port's many flows.
spawn udptag in_ns "$NS_C" python3 "$E2E_DIR/stream.py" udp-tag --port 7100 --count 30
wait_log tcpsrv listening
wait_log udpsrv listening
wait_log udptag listening

# Counter deltas since the last snapshot: snap, then expect_deltas NAME=N...: the counters named
# rose by exactly that much, and the others of COUNTERS stayed put.
COUNTERS="drop_host_ports drop_host_connections refusal_icmp_sent refusal_icmp_limited drop_ct_full drop_ports_exhausted"
snap() { gw_map "$NS_G" "$PIN" stats --json >"$WORK/snap.json"; }
expect_deltas() {
	local problems
	gw_map "$NS_G" "$PIN" stats --json >"$WORK/now.json"
	problems=$(python3 - "$WORK/snap.json" "$WORK/now.json" "$COUNTERS" "$@" <<'PY'
import json, sys
before, now = (json.load(open(f))["counters"] for f in sys.argv[1:3])
want = dict.fromkeys(sys.argv[3].split(), 0)
want.update((k, int(v)) for k, v in (a.split("=") for a in sys.argv[4:]))
print("; ".join(f"{k} rose by {now[k] - before[k]}, expected {v}" for k, v in want.items()
                if now[k] - before[k] != v))
PY
)
	[ -z "$problems" ] || fail "$problems"
}

# The flows of a LAN host in the table.
host_flows() { gw_map "$NS_G" "$PIN" conns | grep -c -- " src=$1 dst=" || true; }

# expect_hosts ADDR CONNECTIONS PORTS: xnat-map hosts shows ADDR holding that much, against the
# configured quotas.
expect_hosts() {
	local got
	got=$(gw_map "$NS_G" "$PIN" hosts --json | python3 -c "
import json, sys
j = json.load(sys.stdin)
h = [h for h in j['hosts'] if h['host'] == '$1']
print(f\"{h[0]['connections']} {h[0]['ports']}\" if h else 'none', j['quota']['connections'], j['quota']['ports'])")
	[ "$got" = "$2 $3 $HOST_CONNS $HOST_PORTS" ] ||
		fail "xnat-map hosts: $1 holds (connections ports, quotas) '$got', expected '$2 $3 $HOST_CONNS $HOST_PORTS'"
}

# udp_flows NS NAME PEER_ARGS...: udp-flows from NS; prints its summary.
udp_flows() {
	local ns=$1 name=$2
	shift 2
	in_ns "$ns" $PEER udp-flows --host $INET --timeout 1 "$@" >"$WORK/$name.log" 2>&1 ||
		fail "udp-flows failed: $(cat "$WORK/$name.log")"
	tail -n1 "$WORK/$name.log"
}

# refused_fast NS WHAT: a new TCP connection from NS must fail at once with EHOSTUNREACH,
# because of ICMP 3/13 from the gateway's LAN address.
refused_fast() {
	local ns=$1 what=$2 err took
	if in_ns "$ns" $PEER tcp-connect --host $INET --port 7000 --timeout 5 --icmp-report >"$WORK/refused.log" 2>&1; then
		fail "$what: the TCP connection got through: $(cat "$WORK/refused.log")"
	fi
	err=$(cat "$WORK/refused.log")
	log "$what: ${err#FAIL tcp-connect: }"
	took=$(sed -n 's/.*connect failed after \([0-9.]*\) s.*/\1/p' <<<"$err")
	grep -q "EHOSTUNREACH" <<<"$err" || fail "$what: connect did not fail with EHOSTUNREACH: $err"
	grep -q "icmp 3/13 from 10.0.0.1$" <<<"$err" || fail "$what: the error was not ICMP 3/13 from 10.0.0.1: $err"
	awk -v t="$took" 'BEGIN { exit !(t < 0.5) }' || fail "$what: connect took $took s to fail"
}

run_variant() {
	local mode=$1 offload=$2 v=$3 sum flows ports base line

	log "== --mode $mode, tx checksum offload $offload"
	offload_in "$offload" "$NS_H12:eth0" "$NS_H13:eth0" "$NS_C:eth0" "$NS_SW:pgw"
	load_in_mode "$NS_G" "$PIN" "$mode" "$CONFIG" lan
	gw_map "$NS_G" "$PIN" flush >/dev/null

	log "port quota: 15 UDP flows from 15 source ports of 10.0.0.12, $HOST_PORTS allowed"
	base=$((20000 + 1000 * v))
	snap
	sum=$(udp_flows "$NS_H12" ports$v --port 7001 --sport $base --count 15)
	log "$sum"
	# xnat's side first: it refused 5 and answered each with an ICMP error.
	expect_deltas drop_host_ports=5 refusal_icmp_sent=5
	[ "$sum" = "flows 15 answered $HOST_PORTS refused 5 unanswered 0" ] ||
		fail "expected 10 answered and 5 refused by an ICMP error, got '$sum', though xnat counted 5 ICMP errors sent"
	# The first ten got their mappings; the refused ones learnt of it from an ICMP error.
	for i in $(seq 0 14); do
		line=$(grep "^flow $i " "$WORK/ports$v.log")
		if [ "$i" -lt $HOST_PORTS ]; then
			[ "${line##* }" = answered ] || fail "flow $i was not answered: $line"
		else
			grep -q " refused EHOSTUNREACH icmp 3/13 from 10.0.0.1$" <<<"$line" ||
				fail "flow $i was not refused with ICMP 3/13 from 10.0.0.1: $line"
		fi
	done
	flows=$(host_flows 10.0.0.12)
	log "conns: 10.0.0.12 holds $flows flows"
	[ "$flows" -eq $HOST_PORTS ] || fail "conns shows $flows flows of 10.0.0.12, expected $HOST_PORTS"
	expect_hosts 10.0.0.12 $HOST_PORTS $HOST_PORTS
	grep -q "^datagram from $WAN " "$WORK/udpsrv.log" || fail "the internet host never saw $WAN"

	log "at its port quota, 10.0.0.12 still reaches a new destination from a port it has a mapping for"
	snap
	sum=$(udp_flows "$NS_H12" reuse$v --port 7100 --sport $base --same-sport --count 1)
	[ "$sum" = "flows 1 answered 1 refused 0 unanswered 0" ] || fail "a flow on an existing mapping failed: $sum"
	expect_deltas

	log "at its port quota, a new TCP connection from 10.0.0.12 fails at once"
	snap
	refused_fast "$NS_H12" "TCP at the port quota"
	expect_deltas drop_host_ports=1 refusal_icmp_sent=1

	log "another LAN host still gets ports, seen from the masquerade address"
	snap
	sum=$(udp_flows "$NS_H13" other$v --port 7001 --sport $base --count 5)
	log "10.0.0.13: $sum"
	[ "$sum" = "flows 5 answered 5 refused 0 unanswered 0" ] || fail "10.0.0.13's flows failed: $sum"
	for i in $(seq 0 4); do
		ports=$(gw_map "$NS_G" "$PIN" conns | sed -n "s/^udp [A-Z]* src=10.0.0.13 dst=$INET sport=$((base + i)) dport=7001 src=$INET dst=$WAN sport=7001 dport=\([0-9]*\) .*/\1/p")
		[ -n "$ports" ] || fail "no masqueraded flow for 10.0.0.13:$((base + i))"
		grep -q "^datagram from $WAN $ports$" "$WORK/udpsrv.log" ||
			fail "the internet host did not see 10.0.0.13:$((base + i)) as $WAN:$ports"
	done
	in_ns "$NS_H13" $PEER tcp-connect --host $INET --port 7000 --timeout 5 >"$WORK/h13tcp.log" 2>&1 ||
		fail "10.0.0.13's TCP connection failed: $(cat "$WORK/h13tcp.log")"
	[ "$(last_peer tcpsrv | cut -d' ' -f1)" = $WAN ] || fail "the internet host saw 10.0.0.13 as '$(last_peer tcpsrv)'"
	expect_deltas

	log "a flush gives 10.0.0.12 its quota back"
	gw_map "$NS_G" "$PIN" flush >/dev/null
	snap
	sum=$(udp_flows "$NS_H12" again$v --port 7001 --sport $((base + 500)) --count $HOST_PORTS)
	[ "$sum" = "flows $HOST_PORTS answered $HOST_PORTS refused 0 unanswered 0" ] ||
		fail "after the flush, 10.0.0.12 did not get $HOST_PORTS ports: $sum"
	expect_deltas
	gw_map "$NS_G" "$PIN" flush >/dev/null

	log "connection quota: one source port of 10.0.0.12 to 25 destinations (one mapping), $HOST_CONNS flows allowed"
	snap
	sum=$(udp_flows "$NS_H12" conns$v --port 7100 --sport $((base + 600)) --same-sport --count 25)
	log "$sum"
	expect_deltas drop_host_connections=5 refusal_icmp_sent=5
	[ "$sum" = "flows 25 answered $HOST_CONNS refused 5 unanswered 0" ] ||
		fail "expected 20 answered and 5 refused by an ICMP error, got '$sum', though xnat counted 5 ICMP errors sent"
	for i in $(seq $HOST_CONNS 24); do
		grep -q "^flow $i .* refused EHOSTUNREACH icmp 3/13 from 10.0.0.1$" "$WORK/conns$v.log" ||
			fail "flow $i was not refused with ICMP 3/13: $(grep "^flow $i " "$WORK/conns$v.log")"
	done
	flows=$(host_flows 10.0.0.12)
	ports=$(gw_map "$NS_G" "$PIN" conns | sed -n "s/^udp [A-Z]* src=10.0.0.12 dst=$INET sport=$((base + 600)) dport=[0-9]* src=$INET dst=$WAN sport=[0-9]* dport=\([0-9]*\) .*/\1/p" | sort -u)
	log "conns: 10.0.0.12 holds $flows flows on external port(s) $(echo $ports)"
	[ "$flows" -eq $HOST_CONNS ] || fail "conns shows $flows flows of 10.0.0.12, expected $HOST_CONNS"
	[ "$(wc -w <<<"$ports")" -eq 1 ] || fail "the flows of one source port use external ports '$(echo $ports)', expected one"
	expect_hosts 10.0.0.12 $HOST_CONNS 1

	log "at its connection quota, a new TCP connection from 10.0.0.12 fails at once"
	snap
	refused_fast "$NS_H12" "TCP at the connection quota"
	expect_deltas drop_host_connections=1 refusal_icmp_sent=1
	sum=$(udp_flows "$NS_H13" other2$v --port 7001 --sport $((base + 600)) --count 3)
	[ "$sum" = "flows 3 answered 3 refused 0 unanswered 0" ] || fail "10.0.0.13's flows failed: $sum"
	expect_deltas drop_host_connections=1 refusal_icmp_sent=1
	log "refusal_icmp_sent $(gw_counter "$NS_G" "$PIN" refusal_icmp_sent), refusal_icmp_limited $(gw_counter "$NS_G" "$PIN" refusal_icmp_limited)"
}

run_variant auto on 1
run_variant auto off 2
run_variant xdp off 3

assert_no_netfilter_rules_in "$NS_G"
log "PASS host quota"
