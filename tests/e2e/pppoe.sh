#!/bin/bash
# A real PPPoE session as the WAN: an ISP namespace runs Debian's pppoe-server, the gateway dials
# it with pppd's rp-pppoe plugin over a veth, and xnat runs on the resulting ppp0 (link type ppp,
# no Ethernet header, MTU 1492) under `xnat-load --follow-wan`, with wan:PORT forwards. --mode
# xdp is refused on ppp0, --mode auto picks tc. Port forwards (TCP, UDP) and masquerade (TCP,
# UDP, ping) carry real sockets over the session, a 1 MB transfer each way crosses the 1492
# link, and 4000-byte datagrams and pings cross it in fragments. Then a redial as an ISP does
# it: pppd ends, ppp0 is deleted (the watcher exits 3, as the systemd unit expects), the server
# hands out another address, pppd dials again and the watcher, started again as the unit's
# restart would, puts the wan: forwards and masquerade on the new address: new connections use
# it. Then pppd in demand mode, which keeps ppp0 across a redial: the address changes in place,
# and the same watcher moves masquerade and the wan: forwards to the third address, ending the
# old address's flows. Last, the ISP filters "fragmentation needed": 1 MB stalls without MSS
# clamping and crosses with "mss_clamp": "pmtu". Needs ppp_generic, ppp_async, pppox and pppoe,
# which this machine's own kernel lacks: the kernel matrix runs it on Debian's kernels
# (tests/kernels).
#
#   cli eth0 198.51.100.2 ── eth1 198.51.100.254  isp  (pppoe-server on eth0, ppp 203.0.113.254)
#                                                 eth0 ══ PPPoE ══ wan0 (no address)
#                                     gw ppp0 203.0.113.1 (then .7, then .9), over wan0
#                                        lan0 10.0.0.1 ── eth0 10.0.0.12 srv
source "$(dirname "$0")/lib.sh" "$1"

NS_I=${TAG}isp
INET=198.51.100.2
ISP_PPP=203.0.113.254
FIRST=203.0.113.1
SECOND=203.0.113.7
THIRD=203.0.113.9
SRV=10.0.0.12
on_fail() {
	[ -e "$PIN/xnat_config" ] && gw_report "$NS_G" "$PIN"
	for f in follow follow2 follow3 pppd-gw pppd-isp; do
		[ -e "$WORK/$f.log" ] && echo "    $f.log:" && tail -n 20 "$WORK/$f.log" | sed 's/^/      /'
	done
}

# pppoe-server daemonizes and starts a pppd (and a pppoe helper) per session, none of them a
# child of this shell: everything running in the test's namespaces is ended before lib.sh's
# cleanup deletes them, or it would outlive the test.
end_ns_processes() {
	local ns pids
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		pids=""
		for ns in $(ip netns list | awk '{print $1}' | grep "^$TAG"); do pids+=" $(ip netns pids "$ns")"; done
		[ -n "${pids// /}" ] || return 0
		# shellcheck disable=SC2086
		kill $pids 2>/dev/null
		sleep 0.3
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null
	return 0
}
ppp_cleanup() {
	local rc=$?
	set +e
	end_ns_processes
	(exit $rc)
	cleanup
}
trap ppp_cleanup EXIT INT TERM

# The kernel would load these on first use too, but a missing one is clearer named up front. The
# guests have busybox's modprobe, not always kmod's.
for m in ppp_generic ppp_async pppox pppoe; do
	modprobe "$m" 2>/dev/null || busybox modprobe "$m" 2>/dev/null ||
		fail "cannot load kernel module $m (this test runs in the kernel matrix's guests)"
done
command -v pppoe-server >/dev/null && command -v pppd >/dev/null ||
	fail "needs pppoe-server and pppd (Debian packages pppoe and ppp)"
PLUGIN=$(ls /usr/lib/pppd/*/rp-pppoe.so 2>/dev/null | head -n1)
[ -n "$PLUGIN" ] || fail "pppd's rp-pppoe.so plugin is missing (package ppp)"

ensure_bpffs
ns_create "$NS_C" "$NS_I" "$NS_G" "$NS_S"
ns_forwarding "$NS_I" "$NS_G"
veth_link "$NS_I" eth1 198.51.100.254/24 "$NS_C" eth0 $INET/24
ip -n "$NS_C" route add default via 198.51.100.254
# PPPoE discovery and sessions are Ethernet frames of their own types: no IP on this link.
veth_link "$NS_I" eth0 - "$NS_G" wan0 -
veth_link "$NS_G" lan0 10.0.0.1/24 "$NS_S" eth0 $SRV/24
ip -n "$NS_S" route add default via 10.0.0.1

# Debian's /etc/ppp/options says "auth"; this ISP asks for no credentials.
cat >"$WORK/isp-options" <<EOF
noauth
mru 1492
mtu 1492
logfile $WORK/pppd-isp.log
EOF

# isp_start ADDRESS: a pppoe-server whose one session gets ADDRESS.
isp_start() {
	ip netns exec "$NS_I" pppoe-server -I eth0 -L $ISP_PPP -R "$1" -N 1 \
		-O "$WORK/isp-options" -X "$WORK/pppoe-server.pid" ||
		fail "pppoe-server did not start"
}

# isp_stop: the server and whatever sessions it left.
isp_stop() {
	local pids
	for _ in $(seq 50); do
		pids=$(ip netns pids "$NS_I")
		[ -n "$pids" ] || return 0
		# shellcheck disable=SC2086
		kill $pids 2>/dev/null
		sleep 0.2
	done
	fail "the ISP's processes do not end: $(ip netns pids "$NS_I")"
}

# dial ADDRESS: pppd on the gateway until ppp0 is up with ADDRESS; pppd's pid in DIAL_PID.
dial() {
	local want=$1 got=""
	# Directly, not through a shell function, so that the pid is pppd's own.
	spawn pppd-gw-out ip netns exec "$NS_G" pppd plugin "$PLUGIN" nic-wan0 ifname ppp0 \
		noauth noipdefault defaultroute nodetach maxfail 1 novj noccp \
		lcp-echo-interval 1 lcp-echo-failure 10 logfile "$WORK/pppd-gw.log"
	DIAL_PID=$LAST_PID
	for _ in $(seq 300); do
		got=$(ip -n "$NS_G" -4 -o addr show dev ppp0 2>/dev/null | awk '{print $4}') || got=""
		[ "$got" = "$want" ] && return 0
		kill -0 "$DIAL_PID" 2>/dev/null || break
		sleep 0.2
	done
	cat "$WORK/pppd-gw.log" "$WORK/pppd-gw-out.log" >&2 2>/dev/null
	fail "ppp0 did not come up with $want (has '$got')"
}

CFG=$(fwd_masq_config pppoe.json wan $SRV)

log "pppd dials the ISP over wan0: ppp0 comes up with $FIRST, MTU 1492"
isp_start $FIRST
dial $FIRST
mtu=$(ip -n "$NS_G" -o link show dev ppp0 | sed -n 's/.* mtu \([0-9]*\) .*/\1/p')
[ "$mtu" = 1492 ] || fail "ppp0 has MTU '$mtu', expected PPPoE's 1492"
ip -n "$NS_G" -d link show dev ppp0 | grep -q "link/ppp" || fail "ppp0 is not a ppp link: $(ip -n "$NS_G" -d link show dev ppp0)"

log "--mode xdp on ppp0 is refused and loads nothing"
expect_fail 2 "--mode xdp: WAN_IF ppp0 (link type ppp) carries bare IP packets" \
	gw_load "$NS_G" "$PIN" --mode xdp ppp0 lan0 "$CFG"
[ ! -e "$PIN/xnat_config" ] || fail "a refused load left pins behind"

log "xnat-load --follow-wan ppp0 (mode auto): tc, the wan: forwards on $FIRST"
spawn follow ip netns exec "$NS_G" "$XNAT_LOAD" --pin-dir "$PIN" --follow-wan ppp0 lan0 "$CFG"
WATCHER=$LAST_PID
wait_log follow "^following ppp0: address $FIRST, " 300
grep -q "ppp0.*tc.*bare IP" "$WORK/follow.log" || fail "load report does not say tc for ppp0: $(cat "$WORK/follow.log")"
list=$(gw_map "$NS_G" "$PIN" list)
grep -q "tcp wan:8080 ($FIRST) -> $SRV:7000 on wan" <<<"$list" || fail "xnat-map list: $list"
grep -q "masquerade 10.0.0.0/24 -> $FIRST (WAN address)" <<<"$list" || fail "xnat-map list: $list"
assert_no_netfilter_rules_in "$NS_G"

serve tcpsrv "$NS_S" tcp 7000 udpsrv "$NS_S" udp 7001 itcp "$NS_C" tcp 7100 iudp "$NS_C" udp 7101

# over_ppp ADDRESS: forwards and masquerade through the session whose address ADDRESS is.
over_ppp() {
	local pub=$1 n
	log "port forward to $pub over PPPoE: TCP and UDP, the server sees the client's own address"
	in_ns "$NS_C" $PEER tcp-client --host "$pub" --port 8080 --bytes 200000 --timeout 20 >"$WORK/fwd-tcp.log" 2>&1 ||
		fail "TCP through wan:8080 on $pub: $(cat "$WORK/fwd-tcp.log")"
	[ "$(last_peer tcpsrv | cut -d' ' -f1)" = $INET ] || fail "server saw '$(last_peer tcpsrv)', not $INET"
	n=$(grep -c "^datagram from $INET " "$WORK/udpsrv.log" || true)
	in_ns "$NS_C" $PEER udp-client --host "$pub" --port 5353 --count 5 >"$WORK/fwd-udp.log" 2>&1 ||
		fail "UDP through wan:5353 on $pub: $(cat "$WORK/fwd-udp.log")"
	[ "$(grep -c "^datagram from $INET " "$WORK/udpsrv.log")" -gt "$n" ] || fail "UDP server never saw $INET"

	log "masquerade over PPPoE: TCP, UDP and ping leave from $pub"
	in_ns "$NS_S" $PEER tcp-client --host $INET --port 7100 --bytes 200000 --timeout 20 >"$WORK/masq-tcp.log" 2>&1 ||
		fail "TCP masqueraded: $(cat "$WORK/masq-tcp.log")"
	[ "$(last_peer itcp | cut -d' ' -f1)" = "$pub" ] || fail "internet host saw '$(last_peer itcp)', not $pub"
	n=$(grep -c "^datagram from $pub " "$WORK/iudp.log" || true)
	in_ns "$NS_S" $PEER udp-client --host $INET --port 7101 --count 5 >"$WORK/masq-udp.log" 2>&1 ||
		fail "UDP masqueraded: $(cat "$WORK/masq-udp.log")"
	[ "$(grep -c "^datagram from $pub " "$WORK/iudp.log")" -gt "$n" ] || fail "internet UDP server never saw $pub"
	in_ns "$NS_S" ping -c 2 -W 2 $INET >/dev/null || fail "ping from the LAN to the internet over PPPoE"

	log "xnat-map conns lists both TCP flows on $pub"
	assert_fwd_and_masq_conns "$NS_G" "$PIN" $INET "$pub" $SRV "$pub"
	assert_conn_count "$NS_G" "$PIN" "after the flows over PPPoE on $pub"
	[ "$(gw_counter "$NS_G" "$PIN" pass_malformed)" -eq 0 ] || fail "pass_malformed is $(gw_counter "$NS_G" "$PIN" pass_malformed)"
}
over_ppp $FIRST

# 1500-byte LAN and internet links on both sides of a 1492 session, with no MSS clamping
# anywhere (pppoe-server runs without -m): 1460-byte segments meet the 1492 link in both
# directions, so the transfers complete only if path-MTU discovery works across the NAT.
log "1 MB each way across the 1492 link, no MSS clamping: masquerade and the forward"
in_ns "$NS_S" $PEER tcp-client --host $INET --port 7100 --bytes 1000000 --timeout 60 --report-mtu >"$WORK/bulk-masq.log" 2>&1 ||
	fail "1 MB through masquerade over ppp0: $(cat "$WORK/bulk-masq.log")"
log "LAN host: $(tr '\n' ' ' <"$WORK/bulk-masq.log")"
grep -q "^mtu 1492$" "$WORK/bulk-masq.log" || fail "the LAN host did not learn path MTU 1492: $(cat "$WORK/bulk-masq.log")"
in_ns "$NS_C" $PEER tcp-client --host $FIRST --port 8080 --bytes 1000000 --timeout 60 --report-mtu >"$WORK/bulk-fwd.log" 2>&1 ||
	fail "1 MB through wan:8080 over ppp0: $(cat "$WORK/bulk-fwd.log")"
log "internet client: $(tr '\n' ' ' <"$WORK/bulk-fwd.log")"

# 4000-byte datagrams leave the internet host in three fragments of up to 1500 bytes, which the
# ISP cuts again for the 1492 session; the LAN host, which learnt path MTU 1492 above, cuts its
# own at 1492 (a 1500-byte fragment without DF it would lose: docs/LIMITS.md). Every piece must
# find its first fragment's translation.
log "fragments over PPPoE: 4000-byte UDP through wan:5353 and the masquerade, ping -s 4000"
tracked=$(gw_counter "$NS_G" "$PIN" frag_tracked)
in_ns "$NS_C" $PEER udp-client --host $FIRST --port 5353 --bytes 4000 --count 5 --timeout 5 >"$WORK/frag-fwd.log" 2>&1 ||
	fail "4000-byte datagrams through wan:5353 did not come back whole: $(cat "$WORK/frag-fwd.log")"
n=$(grep -c "^datagram from $FIRST " "$WORK/iudp.log" || true)
in_ns "$NS_S" $PEER udp-client --host $INET --port 7101 --bytes 4000 --count 5 --timeout 5 >"$WORK/frag-masq.log" 2>&1 ||
	fail "4000-byte datagrams through the masquerade did not come back whole: $(cat "$WORK/frag-masq.log")"
[ "$(grep -c "^datagram from $FIRST " "$WORK/iudp.log")" -gt "$n" ] ||
	fail "the internet host did not see the 4000-byte datagrams come from $FIRST"
in_ns "$NS_S" ping -c 3 -i 0.2 -W 2 -s 4000 -M dont $INET >"$WORK/frag-ping.log" 2>&1 ||
	fail "ping -s 4000 over PPPoE: $(cat "$WORK/frag-ping.log")"
grep -q "4008 bytes from $INET" "$WORK/frag-ping.log" || fail "no 4008-byte echo reply: $(cat "$WORK/frag-ping.log")"
# 5 + 5 datagrams and 3 pings, each there and back: 26 first fragments.
tracked=$(($(gw_counter "$NS_G" "$PIN" frag_tracked) - tracked))
log "frag_tracked +$tracked, drop_frag_no_first $(gw_counter "$NS_G" "$PIN" drop_frag_no_first)"
[ "$tracked" -ge 26 ] || fail "only $tracked first fragments were tracked, expected 26"
[ "$(gw_counter "$NS_G" "$PIN" drop_frag_no_first)" -eq 0 ] || fail "later fragments were dropped without their first"

log "redial: pppd ends, ppp0 is deleted, the watcher exits 3"
ppp0_index=$(ip -n "$NS_G" -o link show dev ppp0 | cut -d: -f1)
kill -TERM "$DIAL_PID"
wait "$DIAL_PID" || true
expect_watcher_exit "$WATCHER" 3 20 "ppp0 went away"
grep -q "^the WAN interface ppp0 (ifindex $ppp0_index) is gone" "$WORK/follow.log" ||
	fail "no gone line: $(cat "$WORK/follow.log")"
# The unit's ExecStopPost on exit 3: the programs went with ppp0, the pins are left.
gw_load "$NS_G" "$PIN" --unload >/dev/null || fail "unload after the redial"

log "the ISP hands out $SECOND this time; pppd dials again"
isp_stop
isp_start $SECOND
dial $SECOND

log "the watcher, started again as Restart= does, puts masquerade and wan: on $SECOND"
spawn follow2 ip netns exec "$NS_G" "$XNAT_LOAD" --pin-dir "$PIN" --follow-wan ppp0 lan0 "$CFG"
WATCHER=$LAST_PID
wait_log follow2 "^following ppp0: address $SECOND, " 300
log "$(grep "^following" "$WORK/follow2.log")"
list=$(gw_map "$NS_G" "$PIN" list)
grep -q "tcp wan:8080 ($SECOND) -> $SRV:7000 on wan" <<<"$list" || fail "xnat-map list after the redial: $list"
grep -q "udp wan:5353 ($SECOND) -> $SRV:7001 on wan" <<<"$list" || fail "xnat-map list after the redial: $list"
grep -q "masquerade 10.0.0.0/24 -> $SECOND (WAN address)" <<<"$list" || fail "xnat-map list after the redial: $list"
if gw_map "$NS_G" "$PIN" conns | grep -q "$FIRST"; then fail "flows of $FIRST survived the redial: $(gw_map "$NS_G" "$PIN" conns)"; fi

over_ppp $SECOND

log "SIGTERM: the watcher stops, xnat stays loaded"
kill -TERM "$WATCHER"
expect_watcher_exit "$WATCHER" 0 60 SIGTERM
in_ns "$NS_C" $PEER tcp-client --host $SECOND --port 8080 --timeout 20 >/dev/null || fail "wan:8080 after the watcher stopped"

# pppd's demand mode keeps ppp0 between sessions (dialling when traffic comes), so at a redial
# the address changes on the same interface and the watcher moves the rules in place.
log "pppd with demand persist: a redial to $THIRD keeps ppp0, the watcher moves the rules in place"
kill -TERM "$DIAL_PID"
wait "$DIAL_PID" || true
gw_load "$NS_G" "$PIN" --unload >/dev/null || fail "unload before the demand-mode session"
isp_stop
isp_start $SECOND
# The expected address as the demand-mode placeholder, taken over by whatever the ISP hands out.
spawn pppd-gw-demand ip netns exec "$NS_G" pppd plugin "$PLUGIN" nic-wan0 ifname ppp0 \
	noauth noipv6 demand persist holdoff 1 maxfail 0 idle 0 $SECOND:$ISP_PPP \
	ipcp-accept-local ipcp-accept-remote defaultroute nodetach novj noccp \
	lcp-echo-interval 1 lcp-echo-failure 10 logfile "$WORK/pppd-gw.log"
DIAL_PID=$LAST_PID
for _ in $(seq 100); do
	ip -n "$NS_G" -4 -o addr show dev ppp0 2>/dev/null | grep -q "inet $SECOND " && break
	sleep 0.2
done
ppp0_index=$(ip -n "$NS_G" -o link show dev ppp0 | cut -d: -f1) || fail "demand-mode pppd made no ppp0"
spawn follow3 ip netns exec "$NS_G" "$XNAT_LOAD" --pin-dir "$PIN" --follow-wan ppp0 lan0 "$CFG"
WATCHER=$LAST_PID
wait_log follow3 "^following ppp0: address $SECOND, " 300

# up_with ADDRESS: traffic until the session is up with ADDRESS (the first packets only dial).
up_with() {
	for _ in $(seq 30); do
		in_ns "$NS_G" ping -c 1 -W 2 $ISP_PPP >/dev/null 2>&1 &&
			ip -n "$NS_G" -4 -o addr show dev ppp0 | grep -q "inet $1 peer" && return 0
		sleep 1
	done
	cat "$WORK/pppd-gw.log" >&2
	fail "the demand-mode session did not come up with $1"
}
up_with $SECOND
in_ns "$NS_C" $PEER tcp-client --host $SECOND --port 8080 --timeout 20 >/dev/null || fail "wan:8080 on $SECOND over the demand-mode session"
spawn held in_ns "$NS_S" $PEER tcp-client --host $INET --port 7100 --timeout 60 --hold "$WORK/release"
wait_log held "^holding" 300
conn_line "$NS_G" "$PIN" "tcp ESTABLISHED src=$SRV dst=$INET" "dst=$SECOND" >/dev/null || fail "no held flow of $SECOND"

log "the ISP ends the session and hands out $THIRD; traffic redials"
isp_stop
isp_start $THIRD
up_with $THIRD
wait_log follow3 "^ppp0: address $SECOND -> $THIRD; 1 masquerade rule and 2 port forwards moved; [0-9]* connections* of $SECOND ended$" 300
log "$(grep -- "-> $THIRD" "$WORK/follow3.log")"
[ "$(ip -n "$NS_G" -o link show dev ppp0 | cut -d: -f1)" = "$ppp0_index" ] || fail "ppp0 was recreated"
kill -0 "$WATCHER" 2>/dev/null || fail "the watcher exited although ppp0 stayed: $(cat "$WORK/follow3.log")"
if gw_map "$NS_G" "$PIN" conns | grep -q "$SECOND "; then fail "flows of $SECOND survived the move: $(gw_map "$NS_G" "$PIN" conns)"; fi
list=$(gw_map "$NS_G" "$PIN" list)
grep -q "tcp wan:8080 ($THIRD) -> $SRV:7000 on wan" <<<"$list" || fail "xnat-map list after the move: $list"
grep -q "masquerade 10.0.0.0/24 -> $THIRD (WAN address)" <<<"$list" || fail "xnat-map list after the move: $list"
touch "$WORK/release"
over_ppp $THIRD

# MSS clamping against the PPPoE black hole: the ISP stops sending "fragmentation needed" (its
# ICMP filtered, as on many real paths), so the internet host's 1460-byte segments towards the
# session are lost without a word. Path MTUs learnt above are forgotten first.
log "the ISP filters fragmentation-needed: without clamping, 1 MB through masquerade stalls"
kill -TERM "$WATCHER"
wait "$WATCHER" || true
in_ns "$NS_I" iptables -A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP
for ns in "$NS_C" "$NS_S"; do ip -n "$ns" route flush cache; done
gw_load "$NS_G" "$PIN" ppp0 lan0 "$CFG" >/dev/null || fail "load on ppp0 without clamping"
in_ns "$NS_S" $PEER tcp-client --host $INET --port 7100 --bytes 1000000 --timeout 10 >"$WORK/hole.log" 2>&1 &&
	fail "1 MB crossed the black hole without clamping: the test proves nothing"

log "with mss_clamp pmtu (1492 - 40 = 1452), 1 MB each way with DF completes: masquerade and wan:8080"
CLAMP=$(write_config clamp.json < <(sed 's/^{/{ "mss_clamp": "pmtu",/' "$CFG"))
for ns in "$NS_C" "$NS_S"; do ip -n "$ns" route flush cache; done
gw_load "$NS_G" "$PIN" ppp0 lan0 "$CLAMP" >/dev/null || fail "load on ppp0 with mss_clamp"
in_ns "$NS_S" $PEER tcp-client --host $INET --port 7100 --bytes 1000000 --timeout 60 >"$WORK/clamp-masq.log" 2>&1 ||
	fail "1 MB through masquerade with clamping: $(cat "$WORK/clamp-masq.log")"
[ "$(gw_counter "$NS_G" "$PIN" mss_clamped)" -ge 1 ] || fail "no SYN was clamped"
clamped=$(gw_counter "$NS_G" "$PIN" mss_clamped)
in_ns "$NS_C" $PEER tcp-client --host $THIRD --port 8080 --bytes 1000000 --timeout 60 >"$WORK/clamp-fwd.log" 2>&1 ||
	fail "1 MB through wan:8080 with clamping: $(cat "$WORK/clamp-fwd.log")"
[ "$(gw_counter "$NS_G" "$PIN" mss_clamped)" -gt "$clamped" ] || fail "the forwarded flow's SYN was not clamped"
log "mss_clamped $(gw_counter "$NS_G" "$PIN" mss_clamped)"
assert_no_netfilter_rules_in "$NS_G"
log "PASS pppoe"
