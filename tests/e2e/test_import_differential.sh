#!/bin/bash
# xnat-import against iptables itself: two identical networks, one gateway running the original
# iptables rules (iptables-restore, inside its namespace), the other xnat with the config
# xnat-import made of the same rules. The same connections go through both, and the address:port
# each endpoint sees must be the same on both sides.
#
#   cN eth0 198.51.100.2 ── eth0 198.51.100.1  gN  eth1 10.0.0.1 ── eth0 10.0.0.12 sN
#           10.9.0.2 (a private       203.0.113.1/32      10.0.1.1       10.0.1.12
#           network behind the WAN)   (the public address) 10.0.3.1       10.0.3.12
#   N = 1: iptables (tests/fixtures/iptables/port-forward.rules, masquerade.rules and
#          masquerade-ports.rules)
#   N = 2: xnat, loaded with xnat-import's translation of the same three files
#
# Compared, per connection: the client address and port the LAN server sees (port forwards, TCP
# and UDP, single ports, a range onto itself, a range onto an offset range, a port kept inside a
# target range), and the source the internet host sees (masquerade, TCP and UDP; SNAT
# --to-source from 10.0.3.12; the tcp+udp MASQUERADE --to-ports pair from 10.0.1.12, whose port
# each side picks from 20000-29999 on its own, so only the range is compared; and a flow to
# 10.9.0.2, which the ! -d 10.0.0.0/8 exclusion leaves untranslated). A port nobody forwards
# must fail on both. One difference is expected and asserted: a LAN source port inside
# the gateway's own ip_local_port_range is kept by iptables but never handed out by xnat, which
# keeps those ports for the gateway's own connections (docs/CONFIG.md, masquerade[].ports).
source "$(dirname "$0")/lib.sh" "$1"

FIXTURES=$E2E_DIR/../fixtures/iptables
XNAT_IMPORT=$BUILD_DIR/xnat-import
PUBLIC=203.0.113.1
INET=198.51.100.2
SERVER=10.0.0.12
ensure_bpffs

build() {
	local n=$1 c=${TAG}c$1 g=${TAG}g$1 s=${TAG}s$1
	ns_create "$c" "$g" "$s"
	ns_forwarding "$g"
	veth_link "$g" eth0 198.51.100.1/24 "$c" eth0 $INET/24
	ip -n "$g" addr add $PUBLIC/32 dev eth0
	veth_link "$g" eth1 10.0.0.1/24 "$s" eth0 $SERVER/24
	ip -n "$c" addr add 10.9.0.2/24 dev eth0
	ip -n "$g" addr add 10.0.1.1/24 dev eth1
	ip -n "$g" addr add 10.0.3.1/24 dev eth1
	ip -n "$s" addr add 10.0.1.12/24 dev eth0
	ip -n "$s" addr add 10.0.3.12/24 dev eth0
	ip -n "$c" route add 203.0.113.0/24 via 198.51.100.1
	ip -n "$c" route add 10.0.0.0/24 via 198.51.100.1
	ip -n "$g" route add 10.9.0.0/24 via $INET dev eth0
	ip -n "$s" route add default via 10.0.0.1
	gro_on "$c:eth0" "$s:eth0"
	log "network $n built"
}

# The client-side and server-side endpoints of network N; their logs are tagged with N.
start_servers() {
	local n=$1 c=${TAG}c$1 s=${TAG}s$1
	spawn "fwd22-$n" in_ns "$s" $PEER tcp-server --port 22
	spawn "fwd6003-$n" in_ns "$s" $PEER udp-server --port 6003
	spawn "fwd9005-$n" in_ns "$s" $PEER tcp-server --port 9005
	spawn "fwd443-$n" in_ns "$s" $PEER tcp-server --port 443
	spawn "masq7000-$n" in_ns "$c" $PEER tcp-server --port 7000
	spawn "masq7001-$n" in_ns "$c" $PEER udp-server --port 7001
	for name in fwd22 fwd6003 fwd9005 fwd443 masq7000 masq7001; do wait_log "$name-$n" listening; done
}

# Runs one client in network N and fails the test if it fails.
client() {
	local n=$1 where=$2 name=$3
	shift 3
	local ns=${TAG}${where}$n
	in_ns "$ns" $PEER "$@" >"$WORK/$name-$n.client" 2>&1 ||
		fail "network $n ($([ "$n" = 1 ] && echo iptables || echo xnat)): $name failed: $(cat "$WORK/$name-$n.client")"
}

push_traffic() {
	local n=$1
	client "$n" c ssh tcp-client --host $PUBLIC --port 22012 --sport 5001 --bytes 20000
	client "$n" c udp-range udp-client --host $PUBLIC --port 6003 --sport 5002 --count 5
	client "$n" c tcp-offset tcp-client --host $PUBLIC --port 8005 --sport 5003 --bytes 20000
	client "$n" c tcp-kept tcp-client --host $PUBLIC --port 443 --sport 5004 --bytes 20000
	client "$n" s masq-tcp tcp-client --host $INET --port 7000 --sport 5005 --bytes 20000
	client "$n" s masq-udp udp-client --host $INET --port 7001 --sport 5006 --count 5
	client "$n" s snat-tcp tcp-client --bind 10.0.3.12 --host $INET --port 7000 --sport 5007 --bytes 20000
	client "$n" s ports-tcp tcp-client --bind 10.0.1.12 --host $INET --port 7000 --sport 5008 --bytes 20000
	client "$n" s ports-udp udp-client --bind 10.0.1.12 --host $INET --port 7001 --sport 5009 --count 5
	client "$n" s excluded tcp-client --host 10.9.0.2 --port 7000 --sport 5010 --bytes 20000
	# A port no rule forwards is the gateway's own, where nothing listens.
	if in_ns "${TAG}c$n" $PEER tcp-client --host $PUBLIC --port 22013 --timeout 3 >/dev/null 2>&1; then
		fail "network $n: $PUBLIC:22013 answered, but no rule forwards it"
	fi
}

# What the endpoints of network N saw, one "SERVER PEER_ADDR PEER_PORT" line per peer. A port
# of the --to-ports range is written as the range: each side picks its own.
observed() {
	local n=$1 name
	for name in fwd22 fwd6003 fwd9005 fwd443 masq7000 masq7001; do
		sed -n "s/^\(accepted\|datagram from\) \([0-9.]* [0-9]*\)$/$name \2/p" "$WORK/$name-$n.log"
	done | awk '$2 == "198.51.100.1" && $3 >= 20000 && $3 <= 29999 { $3 = "20000-29999" } { print }' | sort
}

build 1
build 2
G1=${TAG}g1
G2=${TAG}g2
PIN2=$BPFFS/g2

log "== network 1: iptables-restore of the fixtures, inside its gateway namespace"
in_ns "$G1" iptables-restore <"$FIXTURES/port-forward.rules"
in_ns "$G1" iptables-restore --noflush <"$FIXTURES/masquerade.rules"
in_ns "$G1" iptables-restore --noflush <"$FIXTURES/masquerade-ports.rules"
[ "$(in_ns "$G1" iptables-save -t nat | grep -c '^-A')" -eq 8 ] ||
	fail "iptables-restore did not install the fixtures' 8 rules in $G1"

log "== network 2: xnat-import of the same rules, then xnat-load"
rc=0
cat "$FIXTURES/port-forward.rules" "$FIXTURES/masquerade.rules" "$FIXTURES/masquerade-ports.rules" |
	"$XNAT_IMPORT" -o "$WORK/imported.json" 2>"$WORK/import.report" || rc=$?
[ "$rc" -eq 0 ] || fail "xnat-import exited $rc: $(cat "$WORK/import.report")"
grep -q "8 translated, 12 without effect, 0 unsupported" "$WORK/import.report" ||
	fail "unexpected import report: $(cat "$WORK/import.report")"
grep -q "load with: xnat-load eth0 LAN_IF" "$WORK/import.report" ||
	fail "the report does not name eth0 as the WAN: $(cat "$WORK/import.report")"
"$XNAT_LOAD" --check "$WORK/imported.json" >/dev/null || fail "xnat-load --check refuses the imported config"
gw_load "$G2" "$PIN2" --mode auto eth0 eth1 "$WORK/imported.json" >/dev/null
assert_no_netfilter_rules_in "$G2"
on_fail() { gw_report "$G2" "$PIN2"; }

start_servers 1
start_servers 2
log "== the same connections through both"
push_traffic 1
push_traffic 2

observed 1 >"$WORK/observed-iptables"
observed 2 >"$WORK/observed-xnat"
log "observed through iptables:"
sed 's/^/    /' "$WORK/observed-iptables"
[ "$(wc -l <"$WORK/observed-iptables")" -eq 10 ] || fail "expected 10 observed peers through iptables"
diff -u "$WORK/observed-iptables" "$WORK/observed-xnat" >"$WORK/observed.diff" ||
	fail "xnat's endpoints saw other tuples than iptables': $(cat "$WORK/observed.diff")"
# Not a tautology of the diff: the tuples are what the rules say.
grep -qx "fwd22 $INET 5001" "$WORK/observed-xnat" || fail "port forward: the server did not see $INET:5001"
grep -qx "masq7000 198.51.100.1 5005" "$WORK/observed-xnat" ||
	fail "masquerade: the internet host did not see 198.51.100.1:5005"
for want in "masq7000 203.0.113.9 5007" "masq7000 198.51.100.1 20000-29999" "masq7001 198.51.100.1 20000-29999" \
	"masq7000 10.0.0.12 5010"; do
	grep -qx "$want" "$WORK/observed-xnat" || fail "expected '$want' through xnat; saw: $(cat "$WORK/observed-xnat")"
done
log "both networks saw the same 10 peers"

log "== a LAN source port inside ip_local_port_range: iptables keeps it, xnat picks another"
read -r LOCAL_LO LOCAL_HI < <(in_ns "$G2" cat /proc/sys/net/ipv4/ip_local_port_range)
EPH=$((LOCAL_LO + 1000))
# Only what the server logs from here on: the earlier peers are in the same log.
seen1=$(wc -l <"$WORK/masq7001-1.log")
seen2=$(wc -l <"$WORK/masq7001-2.log")
for n in 1 2; do client "$n" s masq-eph udp-client --host $INET --port 7001 --sport $EPH --count 2; done
peer1=$(tail -n +$((seen1 + 1)) "$WORK/masq7001-1.log" | sed -n "s/^datagram from 198.51.100.1 \([0-9]*\)$/\1/p")
peer2=$(tail -n +$((seen2 + 1)) "$WORK/masq7001-2.log" | sed -n "s/^datagram from 198.51.100.1 \([0-9]*\)$/\1/p")
[ "$peer1" = "$EPH" ] || fail "iptables: expected source port $EPH kept, saw '$peer1'"
[ -n "$peer2" ] && [ "$peer2" != "$EPH" ] && { [ "$peer2" -lt "$LOCAL_LO" ] || [ "$peer2" -gt "$LOCAL_HI" ]; } ||
	fail "xnat: expected a source port outside $LOCAL_LO-$LOCAL_HI, saw '$peer2'"
log "iptables kept $EPH; xnat used $peer2, outside the gateway's own $LOCAL_LO-$LOCAL_HI"
log "PASS"
