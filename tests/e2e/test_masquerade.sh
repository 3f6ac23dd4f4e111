#!/bin/bash
# Masquerade (source NAT) end to end: two LAN hosts behind a switch reach an internet host
# through a gateway running xnat alone. TCP, UDP and ping work and are seen coming from the
# gateway's WAN address; the same source port on two hosts gets two external ports; an excluded
# destination is left untranslated; and only endpoint-independent filtering lets a stranger
# reach a mapping. Run in --mode auto (tc on veth) with TX checksum offload on and off, and in
# --mode xdp with offload off. Before that, two checks on new mappings: the very first flow,
# with the gateway's next hop not resolved yet, and flows from the hosts' ephemeral ports.
#
#   h12 10.0.0.12 ─┐ sw       gw                     cli
#   h13 10.0.0.13 ─┴─ br0 ── lan0 10.0.0.1           eth0 198.51.100.2, .3 (a second host)
#                          wan0 198.51.100.1 ───────      10.9.0.2 (an "excluded" private host)
source "$(dirname "$0")/lib.sh" "$1"

NS_SW=${TAG}sw
NS_H12=${TAG}h12
NS_H13=${TAG}h13
WAN=198.51.100.1
INET=198.51.100.2
STRANGER=198.51.100.3
EXCLUDED=10.9.0.2
on_fail() { [ -e "$PIN" ] && gw_report "$NS_G" "$PIN"; }

ensure_bpffs
ns_create "$NS_G" "$NS_C"
ns_forwarding "$NS_G"
veth_link "$NS_G" wan0 $WAN/24 "$NS_C" eth0 $INET/24
ip -n "$NS_C" addr add $STRANGER/24 dev eth0
ip -n "$NS_C" addr add $EXCLUDED/24 dev eth0
ip -n "$NS_C" route add 10.0.0.0/24 via $WAN
ip -n "$NS_G" route add 10.9.0.0/24 via $INET
switch_create "$NS_SW"
switch_plug "$NS_SW" pgw "$NS_G" lan0 10.0.0.1/24
lan_host "$NS_H12" "$NS_SW" p12 10.0.0.12/24 10.0.0.1
lan_host "$NS_H13" "$NS_SW" p13 10.0.0.13/24 10.0.0.1
gro_on "$NS_C:eth0" "$NS_SW:pgw" # the peers of wan0 and lan0, which XDP redirects into
read -r LOCAL_LO LOCAL_HI < <(in_ns "$NS_G" cat /proc/sys/net/ipv4/ip_local_port_range)

APD=$(write_config masq.json <<'JSON'
{ "masquerade": [ { "source": "10.0.0.0/24", "not_destination": ["10.0.0.0/8"] } ] }
JSON
)
EIF=$(write_config masq-eif.json <<'JSON'
{ "masquerade": [ { "source": "10.0.0.0/24", "not_destination": ["10.0.0.0/8"],
                    "filtering": "endpoint_independent" } ] }
JSON
)

serve tcpsrv "$NS_C" tcp 7000 udpsrv "$NS_C" udp 7001

# Unlike the other tests, this one starts with the gateway's next hop (the internet host)
# unresolved: the first flow must get through anyway.
log "== --mode auto: the first flow, with the gateway's next hop not resolved yet, gets through"
gw_load "$NS_G" "$PIN" --mode auto wan0 lan0 "$APD" >/dev/null
in_ns "$NS_H12" $PEER udp-client --host $INET --port 7001 --sport 5400 --count 1 --timeout 3 >/dev/null 2>&1 ||
	fail "UDP to $INET with its neighbour unresolved on the gateway got no answer"

log "new mappings from ephemeral source ports work at once"
# The hosts' ephemeral ports are the gateway's too (same default ip_local_port_range), so each
# of these mappings needs a port other than the host's; none may be refused.
exhausted=$(gw_counter "$NS_G" "$PIN" drop_ports_exhausted)
failed=0
for _ in $(seq 10); do
	in_ns "$NS_H12" $PEER udp-client --host $INET --port 7001 --count 1 --timeout 1 >/dev/null 2>&1 ||
		failed=$((failed + 1))
done
[ "$failed" -eq 0 ] ||
	fail "$failed of 10 new UDP flows got no answer; drop_ports_exhausted rose by $(($(gw_counter "$NS_G" "$PIN" drop_ports_exhausted) - exhausted))"

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# The external port of the live UDP mapping of a LAN endpoint talking to INET:7001.
udp_ext_port() {
	local line
	line=$(conn_line "$NS_G" "$PIN" "src=$1 dst=$INET sport=$2 dport=7001 src=$INET dst=$WAN sport=7001 ") ||
		fail "no UDP connection line for $1:$2"
	sed -n 's/.* dport=7001 src=[0-9.]* dst=[0-9.]* sport=7001 dport=\([0-9]*\) .*/\1/p' <<<"$line"
}

run_variant() {
	local mode=$1 offload=$2 v=$3 cport peer ext line s1 s2 p12 p13 opener

	log "== --mode $mode, tx checksum offload $offload"
	local redirected_before
	redirected_before=$(gw_counter "$NS_G" "$PIN" redirected)
	offload_in "$offload" "$NS_H12:eth0" "$NS_H13:eth0" "$NS_C:eth0" "$NS_SW:pgw"
	load_in_mode "$NS_G" "$PIN" "$mode" "$APD" wan lan
	gw_map "$NS_G" "$PIN" flush >/dev/null

	log "TCP: 300 kB echoed intact; the internet host sees the WAN address"
	hold_tcp tcpcli 100 "$NS_H12" --host $INET --port 7000 --bytes 300000 --hold "$WORK/release$v"
	local cli_pid=$LAST_PID
	cport=$HELD_PORT
	peer=$(last_peer tcpsrv)
	[ "${peer% *}" = $WAN ] || fail "internet host saw '$peer', expected $WAN"
	ext=${peer#* }
	log "conns: 10.0.0.12:$cport went out as $WAN:$ext"
	line=$(conn_line "$NS_G" "$PIN" "tcp ESTABLISHED src=10.0.0.12 dst=$INET sport=$cport dport=7000 src=$INET dst=$WAN sport=7000 dport=$ext timeout=") ||
		fail "no seed-form line for the held connection"
	printf '    %s\n' "$line"
	if [ "$ext" -ge "$LOCAL_LO" ] && [ "$ext" -le "$LOCAL_HI" ]; then
		fail "external port $ext lies in the gateway's ip_local_port_range $LOCAL_LO-$LOCAL_HI"
	fi
	touch "$WORK/release$v"
	reap tcpcli "$cli_pid"
	grep -q "ok tcp after hold" "$WORK/tcpcli.log" || fail "held connection did not carry data again"

	log "UDP: the same source port on two hosts gets two external ports, both working"
	s1=$((5000 + v))
	in_ns "$NS_H12" $PEER udp-client --host $INET --port 7001 --sport $s1 --count 20 >/dev/null ||
		fail "UDP from 10.0.0.12:$s1 failed"
	in_ns "$NS_H13" $PEER udp-client --host $INET --port 7001 --sport $s1 --count 20 >/dev/null ||
		fail "UDP from 10.0.0.13:$s1 failed"
	p12=$(udp_ext_port 10.0.0.12 $s1)
	p13=$(udp_ext_port 10.0.0.13 $s1)
	[ "$p12" = "$s1" ] || fail "10.0.0.12:$s1 did not keep its free port: external $p12"
	[ "$p13" != "$p12" ] || fail "both hosts got external port $p12"
	grep -q "^datagram from $WAN $p12$" "$WORK/udpsrv.log" || fail "internet host did not see $WAN:$p12"
	grep -q "^datagram from $WAN $p13$" "$WORK/udpsrv.log" || fail "internet host did not see $WAN:$p13"

	log "TCP: the same source port on two hosts, both working"
	s2=$((5100 + v))
	in_ns "$NS_H12" $PEER tcp-client --host $INET --port 7000 --sport $s2 >/dev/null || fail "TCP from 10.0.0.12:$s2 failed"
	peer=$(last_peer tcpsrv)
	[ "$peer" = "$WAN $s2" ] || fail "10.0.0.12:$s2 was seen as '$peer', expected '$WAN $s2'"
	in_ns "$NS_H13" $PEER tcp-client --host $INET --port 7000 --sport $s2 >/dev/null || fail "TCP from 10.0.0.13:$s2 failed"
	peer=$(last_peer tcpsrv)
	[ "${peer% *}" = $WAN ] && [ "${peer#* }" != "$s2" ] ||
		fail "10.0.0.13:$s2 was seen as '$peer', expected $WAN and a port other than $s2"

	log "ping by echo identifier"
	in_ns "$NS_H12" ping -c 3 -i 0.2 -W 2 $INET >"$WORK/ping.log" 2>&1 || { cat "$WORK/ping.log" >&2; fail "ping failed"; }
	conn_line "$NS_G" "$PIN" "icmp " "src=10.0.0.12 dst=$INET " "src=$INET dst=$WAN " >/dev/null ||
		fail "no ICMP connection line"

	log "not_destination: 10.9.0.2 (in 10.0.0.0/8) sees the LAN host's own address"
	spawn excl in_ns "$NS_H12" $PEER tcp-client --host $EXCLUDED --port 7000
	reap excl "$LAST_PID"
	cport=$(client_port excl)
	[ "$(last_peer tcpsrv)" = "10.0.0.12 $cport" ] ||
		fail "excluded destination saw '$(last_peer tcpsrv)', expected '10.0.0.12 $cport'"
	in_ns "$NS_H12" ping -c 1 -W 2 $EXCLUDED >/dev/null || fail "ping to the excluded destination failed"
	if gw_map "$NS_G" "$PIN" conns | grep -qF "dst=$EXCLUDED "; then
		fail "a flow to the excluded destination was tracked: $(gw_map "$NS_G" "$PIN" conns | grep -F "dst=$EXCLUDED ")"
	fi

	log "default filtering: only the contacted remote endpoint may answer"
	opener=$((5200 + v))
	spawn open in_ns "$NS_H12" $PEER udp-open --host $INET --port 7001 --sport $opener --timeout 20
	local open_pid=$LAST_PID
	wait_log open "^opened"
	ext=$(udp_ext_port 10.0.0.12 $opener)
	if in_ns "$NS_C" $PEER udp-client --bind $STRANGER --host $WAN --port "$ext" --count 1 --timeout 1 >/dev/null 2>&1; then
		fail "another host reached the mapping $WAN:$ext under address_port_dependent filtering"
	fi
	if in_ns "$NS_C" $PEER udp-client --bind $INET --sport 7002 --host $WAN --port "$ext" --count 1 --timeout 1 >/dev/null 2>&1; then
		fail "another port of the contacted host reached $WAN:$ext under address_port_dependent filtering"
	fi
	stop "$open_pid"
	if grep -q "^datagram from" "$WORK/open.log"; then
		fail "the LAN host received: $(grep '^datagram' "$WORK/open.log")"
	fi

	log "endpoint_independent filtering: any remote reaches a live mapping"
	gw_load "$NS_G" "$PIN" --mode "$mode" wan0 lan0 "$EIF" >/dev/null
	opener=$((5300 + v))
	spawn open in_ns "$NS_H12" $PEER udp-open --host $INET --port 7001 --sport $opener --timeout 20
	open_pid=$LAST_PID
	wait_log open "^opened"
	ext=$(udp_ext_port 10.0.0.12 $opener)
	in_ns "$NS_C" $PEER udp-client --bind $STRANGER --sport 7003 --host $WAN --port "$ext" --count 5 --timeout 3 >/dev/null ||
		fail "$STRANGER could not reach the mapping $WAN:$ext"
	grep -q "^datagram from $STRANGER 7003$" "$WORK/open.log" || fail "the LAN host did not see $STRANGER:7003"
	conn_line "$NS_G" "$PIN" "udp REPLIED src=$STRANGER dst=$WAN sport=7003 dport=$ext src=10.0.0.12 dst=$STRANGER sport=$opener dport=7003 " >/dev/null ||
		fail "no inbound connection line"
	stop "$open_pid"
	local redirected=$(($(gw_counter "$NS_G" "$PIN" redirected) - redirected_before))
	log "fast path redirected $redirected packets"
	[ "$redirected" -gt 100 ] || fail "the fast path redirected only $redirected packets"
}

run_variant auto on 1
run_variant auto off 2
run_variant xdp off 3

assert_no_netfilter_rules_in "$NS_G"
log "PASS masquerade"
