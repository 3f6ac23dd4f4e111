#!/bin/bash
# Metrics end to end: known traffic through a port forward and a masquerade, then the figures
# xnat-exporter serves (scraped over HTTP inside the gateway namespace), plain and with
# --per-state, and `xnat-map stats --prometheus` prints must be exactly that traffic. The
# connection count a plain scrape takes from the counters must equal what a walk of the table
# finds (conns, the per-state series). Also the conns filters and
# the conntrack-form output against the same live connections, and the exporter's errors:
# address in use, no instance, instance gone (503), and a clean stop on SIGTERM.
#
#   client ns 198.51.100.2 --- gw wan0 198.51.100.1 (+203.0.113.1)  lan0 10.0.0.1 --- server 10.0.0.12
source "$(dirname "$0")/lib.sh" "$1"
XNAT_EXPORTER=$BUILD_DIR/xnat-exporter
LISTEN=127.0.0.1:9469
LISTEN_PS=127.0.0.1:9470 # a second exporter, with --per-state
N_TCP=4      # TCP connections held open through the forward
K_UDP=3      # UDP flows through the forward, from three source ports
M_UDP=7      # datagrams per UDP flow, each echoed
P_UNMAPPED=5 # datagrams to a public port no rule maps
PINGS=3      # echo requests from the server, masqueraded
on_fail() {
	[ -s "$WORK/expect.err" ] && { echo "    last expect_fail stderr:"; sed "s/^/      /" "$WORK/expect.err"; }
	[ -e "$PIN" ] && gw_report "$NS_G" "$PIN"
	[ -s "$WORK/scrape.txt" ] && { echo "    last scrape:"; sed 's/^/      /' "$WORK/scrape.txt"; }
}

build_topology
CONFIG=$(write_config metrics.json <<'JSON'
{ "port_forwards": [
    { "proto": "tcp", "from": "203.0.113.1:22012", "to": "10.0.0.12:22" },
    { "proto": "udp", "from": "203.0.113.1:6000-6009", "to": "10.0.0.12:6000" } ],
  "masquerade": [ { "source": "10.0.0.0/24", "to_source": "198.51.100.1" } ],
  "limits": { "connections": 1024 } }
JSON
)
TCP_RULE='rule="0",proto="tcp",on="wan",from="203.0.113.1:22012",to="10.0.0.12:22"'
UDP_RULE='rule="1",proto="udp",on="wan",from="203.0.113.1:6000-6009",to="10.0.0.12:6000-6009"'
MASQ_RULE='rule="0",source="10.0.0.0/24"'

serve tcpsrv "$NS_S" tcp 22 udpsrv "$NS_S" udp 6003

log "an exporter without an instance refuses to start"
expect_fail 1 "no xnat instance" in_ns "$NS_G" "$XNAT_EXPORTER" --listen $LISTEN --pin-dir "$PIN"
expect_fail 2 "--listen" in_ns "$NS_G" "$XNAT_EXPORTER" --listen 127.0.0.1:99999 --pin-dir "$PIN"

gw_load "$NS_G" "$PIN" --mode auto wan0 lan0 "$CONFIG" >/dev/null
resolve_neighbour "$NS_G" 198.51.100.2 10.0.0.12

# Not through in_ns: the pid must be the exporter itself, which ip netns exec becomes.
spawn exporter ip netns exec "$NS_G" "$XNAT_EXPORTER" --listen $LISTEN --pin-dir "$PIN"
EXPORTER_PID=$LAST_PID
wait_log exporter "serving http://$LISTEN/metrics"
spawn exporter_ps ip netns exec "$NS_G" "$XNAT_EXPORTER" --listen $LISTEN_PS --pin-dir "$PIN" --per-state
EXPORTER_PS_PID=$LAST_PID
wait_log exporter_ps "serving http://$LISTEN_PS/metrics"

log "a second exporter on the same address says so"
expect_fail 1 "cannot listen on $LISTEN: Address already in use" \
	in_ns "$NS_G" "$XNAT_EXPORTER" --listen $LISTEN --pin-dir "$PIN"

# prom_check FILE: parsed by the Prometheus client library (tests/e2e/prom_check.py): no parse
# error, no series twice, HELP and TYPE on every family, the SNAT pool joinable with its use.
prom_check() {
	/usr/bin/python3 "$E2E_DIR/prom_check.py" "$1" >"$WORK/prom_check.out" 2>&1 ||
		fail "$1 is not valid exposition text: $(cat "$WORK/prom_check.out")"
}
# scrape [PATH]: GET into scrape.txt, the HTTP status into $code; every 200 of /metrics is parsed.
# From the plain exporter, or from the --per-state one with SCRAPE_AT=$LISTEN_PS.
scrape() {
	code=$(in_ns "$NS_G" curl -sS --max-time 5 -o "$WORK/scrape.txt" -D "$WORK/scrape.hdr" -w '%{http_code}' \
		"http://${SCRAPE_AT:-$LISTEN}${1:-/metrics}")
	if [ "$code" = 200 ] && [ "${1:-/metrics}" = /metrics ]; then
		prom_check "$WORK/scrape.txt"
		SCRAPES_PARSED=$((SCRAPES_PARSED + 1))
	fi
}
SCRAPES_PARSED=0
# metric 'NAME{LABELS}': the value of that exact series in the last scrape (empty if absent).
metric() {
	awk -v k="$1" '$1 == k { print $2 }' "$WORK/scrape.txt"
}
expect_metric() {
	local series=$1 want=$2 got
	got=$(metric "$series")
	[ "$got" = "$want" ] || fail "$series is '${got}', expected $want"
}
# Sum of the packet outcomes a translated packet can end in.
translated() {
	local s=0 r v
	for r in redirected redirected_neigh pass_no_neigh; do
		v=$(metric "xnat_packets_total{reason=\"$r\"}")
		s=$((s + v))
	done
	echo "$s"
}

log "baseline scrape: format, content type, fresh rule counters"
scrape
[ "$code" = 200 ] || fail "GET /metrics answered $code"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$WORK/scrape.hdr" ||
	fail "content type is not the 0.0.4 text format: $(cat "$WORK/scrape.hdr")"
for fam in "xnat_packets_total counter" "xnat_events_total counter" "xnat_connections_tracked gauge" \
	"xnat_connections_max gauge" "xnat_table_entries gauge" "xnat_table_max_entries gauge" \
	"xnat_snat_ports_in_use gauge" "xnat_snat_port_pool_size gauge" \
	"xnat_forward_rule_flows_total counter" "xnat_masquerade_rule_flows_total counter" \
	"xnat_sweeps_total counter"; do
	name=${fam%% *}
	grep -q "^# HELP $name [^ ]" "$WORK/scrape.txt" || fail "no HELP for $name"
	grep -qx "# TYPE $fam" "$WORK/scrape.txt" || fail "no '# TYPE $fam'"
done
expect_metric "xnat_forward_rule_flows_total{$TCP_RULE}" 0
expect_metric "xnat_forward_rule_flows_total{$UDP_RULE}" 0
expect_metric "xnat_connections_max" 1024
expect_metric 'xnat_table_max_entries{table="xnat_ct"}' 2048
read -r LOCAL_LO LOCAL_HI < <(in_ns "$NS_G" cat /proc/sys/net/ipv4/ip_local_port_range)
for proto in icmp tcp udp; do
	expect_metric "xnat_snat_port_pool_size{address=\"198.51.100.1\",proto=\"$proto\"}" \
		$((64512 - (LOCAL_HI - LOCAL_LO + 1)))
done
grep -q 'to_source=' "$WORK/scrape.txt" && fail "a series still has the to_source label"
grep -q '^# TYPE xnat_connections gauge' "$WORK/scrape.txt" && fail "a plain scrape serves the per-state series"
SCRAPE_AT=$LISTEN_PS scrape
grep -qx '# TYPE xnat_connections gauge' "$WORK/scrape.txt" || fail "the --per-state scrape has no per-state series"
expect_metric 'xnat_connections{proto="tcp",state="ESTABLISHED"}' 0
scrape /other
[ "$code" = 404 ] || fail "GET /other answered $code, expected 404"
scrape
base_translated=$(translated)
base_no_match=$(metric 'xnat_packets_total{reason="pass_no_match"}')
base_new_flow=$(metric 'xnat_events_total{event="new_flow"}')

log "UDP: $K_UDP flows of $M_UDP echoed datagrams through the forward"
for i in $(seq "$K_UDP"); do
	in_ns "$NS_C" $PEER udp-client --host 203.0.113.1 --port 6003 --sport $((5000 + i)) --count "$M_UDP" \
		--bytes 100 >/dev/null || fail "UDP flow $i failed"
done
scrape
got=$(($(translated) - base_translated))
[ "$got" -eq $((2 * K_UDP * M_UDP)) ] || fail "translated packets rose by $got, expected $((2 * K_UDP * M_UDP))"
expect_metric "xnat_forward_rule_flows_total{$UDP_RULE}" "$K_UDP"
expect_metric xnat_connections_tracked "$K_UDP"
SCRAPE_AT=$LISTEN_PS scrape
expect_metric 'xnat_connections{proto="udp",state="REPLIED"}' "$K_UDP"

log "$P_UNMAPPED datagrams to an unmapped public port pass untouched"
in_ns "$NS_C" bash -c "for i in \$(seq $P_UNMAPPED); do echo x >/dev/udp/203.0.113.1/7777; done"
sleep 0.3
scrape
got=$(($(metric 'xnat_packets_total{reason="pass_no_match"}') - base_no_match))
[ "$got" -eq "$P_UNMAPPED" ] || fail "pass_no_match rose by $got, expected $P_UNMAPPED"

log "TCP: $N_TCP connections held open through the forward"
tcp_ports=()
for i in $(seq "$N_TCP"); do
	# --timeout bounds the hold too (10 s by default): the checks below, made while these are
	# held, can take longer than that on a loaded machine.
	spawn "tcpcli$i" in_ns "$NS_C" $PEER tcp-client --host 203.0.113.1 --port 22012 --bytes 20000 --hold "$WORK/release" \
		--timeout 120
	wait_log "tcpcli$i" "^holding" 200
	tcp_ports+=("$(client_port "tcpcli$i")")
done

log "ICMP: $PINGS echo requests from the server, masqueraded"
in_ns "$NS_S" ping -c "$PINGS" -i 0.2 -W 2 198.51.100.2 >/dev/null || fail "the server's ping got no answer"

scrape
expect_metric "xnat_forward_rule_flows_total{$TCP_RULE}" "$N_TCP"
expect_metric "xnat_forward_rule_flows_total{$UDP_RULE}" "$K_UDP"
expect_metric "xnat_masquerade_rule_flows_total{$MASQ_RULE}" 1
expect_metric 'xnat_events_total{event="new_flow"}' $((base_new_flow + N_TCP + K_UDP + 1))
FLOWS=$((N_TCP + K_UDP + 1))
expect_metric xnat_connections_tracked "$FLOWS"
expect_metric 'xnat_table_entries{table="xnat_ct"}' $((2 * FLOWS))
expect_metric 'xnat_table_entries{table="xnat_snat"}' 1
expect_metric 'xnat_snat_ports_in_use{address="198.51.100.1",proto="icmp"}' 1
expect_metric 'xnat_snat_ports_in_use{address="198.51.100.1",proto="tcp"}' 0
log "exporter: $(grep -c '^xnat_' "$WORK/scrape.txt") series, $FLOWS connections, rule hits $N_TCP/$K_UDP/1"
# With --per-state the table is read: its states and entries must agree with the counters' count.
SCRAPE_AT=$LISTEN_PS scrape
expect_metric xnat_connections_tracked "$FLOWS"
expect_metric 'xnat_connections{proto="tcp",state="ESTABLISHED"}' "$N_TCP"
expect_metric 'xnat_connections{proto="udp",state="REPLIED"}' "$K_UDP"
expect_metric 'xnat_connections{proto="icmp",state="REPLIED"}' 1
expect_metric 'xnat_connections{proto="tcp",state="SYN_SENT"}' 0
expect_metric 'xnat_table_entries{table="xnat_ct"}' $((2 * FLOWS))
per_state=$(awk 'index($1, "xnat_connections{") == 1 { n += $2 } END { print n + 0 }' "$WORK/scrape.txt")
[ "$per_state" -eq "$FLOWS" ] || fail "the per-state series sum to $per_state, expected $FLOWS"
log "exporter --per-state: $(grep -c '^xnat_' "$WORK/scrape.txt") series"
assert_conn_count "$NS_G" "$PIN" "with the test's connections open"
[ "$CONN_COUNT" -eq "$FLOWS" ] || fail "conns lists $CONN_COUNT connections, expected $FLOWS"

log "xnat-map stats --prometheus prints the same figures, with and without --per-state"
# The sweeper's figures move on their own every 2 s; everything else is quiet now.
same_as_scrape() {
	if ! diff <(grep -v '^xnat_sweep' "$1") <(grep -v '^xnat_sweep' "$WORK/scrape.txt") >"$WORK/diff.txt"; then
		fail "$2 and the exporter differ: $(cat "$WORK/diff.txt")"
	fi
}
gw_map "$NS_G" "$PIN" stats --prometheus >"$WORK/cli.txt"
prom_check "$WORK/cli.txt"
scrape
same_as_scrape "$WORK/cli.txt" "stats --prometheus"
gw_map "$NS_G" "$PIN" stats --prometheus --per-state >"$WORK/cli_ps.txt"
prom_check "$WORK/cli_ps.txt"
SCRAPE_AT=$LISTEN_PS scrape
same_as_scrape "$WORK/cli_ps.txt" "stats --prometheus --per-state"
expect_fail 2 "--per-state requires --prometheus" gw_map "$NS_G" "$PIN" stats --per-state

log "conns filters select the live connections"
count() { gw_map "$NS_G" "$PIN" conns "$@" | grep -c . || true; }
[ "$(count)" -eq "$FLOWS" ] || fail "conns lists $(count) connections, expected $FLOWS"
[ "$(count --proto tcp)" -eq "$N_TCP" ] || fail "--proto tcp: $(count --proto tcp)"
[ "$(count --proto udp)" -eq "$K_UDP" ] || fail "--proto udp: $(count --proto udp)"
[ "$(count --proto icmp)" -eq 1 ] || fail "--proto icmp: $(count --proto icmp)"
[ "$(count --state established)" -eq "$N_TCP" ] || fail "--state established: $(count --state established)"
[ "$(count --addr 10.0.0.12)" -eq "$FLOWS" ] || fail "--addr 10.0.0.12: $(count --addr 10.0.0.12)"
[ "$(count --addr 198.51.100.1)" -eq 1 ] || fail "--addr 198.51.100.1 (the ping's reply tuple only)"
[ "$(count --port 22)" -eq "$N_TCP" ] || fail "--port 22: $(count --port 22)"
[ "$(count --port 5002)" -eq 1 ] || fail "--port 5002: $(count --port 5002)"
[ "$(count --proto udp --port 22)" -eq 0 ] || fail "--proto udp --port 22 matched"
[ "$(count --proto tcp --addr 198.51.100.2 --port "${tcp_ports[0]}" --state ESTABLISHED)" -eq 1 ] ||
	fail "combined filter did not find the first TCP connection"
[ "$(count --proto icmp --state UNREPLIED)" -eq 0 ] || fail "--proto icmp --state UNREPLIED matched"
expect_fail 2 "--proto: 'sctp' is not tcp, udp or icmp" gw_map "$NS_G" "$PIN" conns --proto sctp
expect_fail 2 "--addr" gw_map "$NS_G" "$PIN" conns --addr 10.0.0.256
expect_fail 2 "--port: '70000' is not a port number" gw_map "$NS_G" "$PIN" conns --port 70000
expect_fail 2 "--state: 'OPEN' is not a connection state" gw_map "$NS_G" "$PIN" conns --state OPEN
expect_fail 2 "conntrack" gw_map "$NS_G" "$PIN" conns -o xml

log "conns -o conntrack prints conntrack -L's lines (accounting off, Debian's default)"
gw_map "$NS_G" "$PIN" conns -o conntrack >"$WORK/ct.txt"
sed 's/^/    /' "$WORK/ct.txt"
[ "$(grep -c . "$WORK/ct.txt")" -eq "$FLOWS" ] || fail "-o conntrack printed $(grep -c . "$WORK/ct.txt") lines"
grep -q 'packets=\|bytes=' "$WORK/ct.txt" && fail "-o conntrack prints counters, conntrack -L does not by default"
p=${tcp_ports[0]}
grep -Eq "^tcp      6 7[0-9]{3} ESTABLISHED src=198\.51\.100\.2 dst=203\.0\.113\.1 sport=$p dport=22012 src=10\.0\.0\.12 dst=198\.51\.100\.2 sport=22 dport=$p \[ASSURED\] mark=0 use=1$" "$WORK/ct.txt" ||
	fail "no conntrack-form line for TCP connection $p"
grep -Eq "^udp      17 (2[5-9][0-9]|300) src=198\.51\.100\.2 dst=203\.0\.113\.1 sport=5002 dport=6003 src=10\.0\.0\.12 dst=198\.51\.100\.2 sport=6003 dport=5002 \[ASSURED\] mark=0 use=1$" "$WORK/ct.txt" ||
	fail "no conntrack-form line for UDP flow 5002"
grep -Eq "^icmp     1 (5[0-9]|60) src=10\.0\.0\.12 dst=198\.51\.100\.2 type=8 code=0 id=[0-9]+ src=198\.51\.100\.2 dst=198\.51\.100\.1 type=0 code=0 id=[0-9]+ \[ASSURED\] mark=0 use=1$" "$WORK/ct.txt" ||
	fail "no conntrack-form line for the ping"

log "conns -o conntrack-acct adds the counts, as with nf_conntrack_acct=1"
gw_map "$NS_G" "$PIN" conns -o conntrack-acct >"$WORK/ct_acct.txt"
[ "$(grep -c . "$WORK/ct_acct.txt")" -eq "$FLOWS" ] || fail "-o conntrack-acct printed $(grep -c . "$WORK/ct_acct.txt") lines"
grep -Eq "^tcp      6 7[0-9]{3} ESTABLISHED src=198\.51\.100\.2 dst=203\.0\.113\.1 sport=$p dport=22012 packets=[1-9][0-9]* bytes=[1-9][0-9]* src=10\.0\.0\.12 dst=198\.51\.100\.2 sport=22 dport=$p packets=[1-9][0-9]* bytes=[1-9][0-9]* \[ASSURED\] mark=0 use=1$" "$WORK/ct_acct.txt" ||
	fail "no conntrack-acct line for TCP connection $p"
# 100-byte payloads: 128 bytes per IP packet.
grep -Eq "^udp      17 (2[5-9][0-9]|300) src=198\.51\.100\.2 dst=203\.0\.113\.1 sport=5002 dport=6003 packets=$M_UDP bytes=$((128 * M_UDP)) src=10\.0\.0\.12 dst=198\.51\.100\.2 sport=6003 dport=5002 packets=$M_UDP bytes=$((128 * M_UDP)) \[ASSURED\] mark=0 use=1$" "$WORK/ct_acct.txt" ||
	fail "no conntrack-acct line for UDP flow 5002"
grep -Eq "^icmp     1 (5[0-9]|60) src=10\.0\.0\.12 dst=198\.51\.100\.2 type=8 code=0 id=[0-9]+ packets=$PINGS bytes=$((84 * PINGS)) src=198\.51\.100\.2 dst=198\.51\.100\.1 type=0 code=0 id=[0-9]+ packets=$PINGS bytes=$((84 * PINGS)) \[ASSURED\] mark=0 use=1$" "$WORK/ct_acct.txt" ||
	fail "no conntrack-acct line for the ping"
[ "$(gw_map "$NS_G" "$PIN" conns -o conntrack --proto udp --port 5003 | grep -c '^udp      17 ')" -eq 1 ] ||
	fail "-o conntrack with filters"

log "[ASSURED] stays on a TCP connection reset after its handshake, not on a refused one"
# SO_LINGER 0: close() sends a RST right after the handshake (SYN, SYN-ACK, ACK, RST).
rst_port=$(in_ns "$NS_C" python3 -c '
import socket, struct
s = socket.create_connection(("203.0.113.1", 22012), timeout=5)
print(s.getsockname()[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()')
# Nothing listens on port 9 of the client: the SYN is answered by a RST.
in_ns "$NS_S" python3 -c '
import socket
s = socket.socket()
s.bind(("10.0.0.12", 41000))
s.settimeout(5)
try:
    s.connect(("198.51.100.2", 9))
except ConnectionRefusedError:
    pass
else:
    raise SystemExit("port 9 accepted")'
sleep 0.3
gw_map "$NS_G" "$PIN" conns -o conntrack --proto tcp --state CLOSE >"$WORK/ct_close.txt"
sed 's/^/    /' "$WORK/ct_close.txt"
grep -Eq "^tcp      6 [0-9]+ CLOSE src=198\.51\.100\.2 dst=203\.0\.113\.1 sport=$rst_port dport=22012 src=10\.0\.0\.12 dst=198\.51\.100\.2 sport=22 dport=$rst_port \[ASSURED\] mark=0 use=1$" "$WORK/ct_close.txt" ||
	fail "the connection reset after its handshake is not CLOSE [ASSURED]"
grep -Eq "^tcp      6 [0-9]+ CLOSE src=10\.0\.0\.12 dst=198\.51\.100\.2 sport=41000 dport=9 src=198\.51\.100\.2 dst=198\.51\.100\.1 sport=9 dport=[0-9]+ mark=0 use=1$" "$WORK/ct_close.txt" ||
	fail "the refused connection is not CLOSE without [ASSURED]"

touch "$WORK/release"
for i in $(seq "$N_TCP"); do wait_log "tcpcli$i" "ok tcp after hold"; done

log "after unload a scrape answers 503 and says why"
in_ns "$NS_G" "$XNAT_LOAD" --unload --pin-dir "$PIN" >/dev/null
scrape
[ "$code" = 503 ] || fail "GET /metrics answered $code after unload, expected 503"
grep -q "^xnat-exporter: .*$PIN" "$WORK/scrape.txt" || fail "503 without a reason: $(cat "$WORK/scrape.txt")"

log "SIGTERM stops the exporter cleanly"
kill -TERM "$EXPORTER_PID"
for _ in $(seq 50); do kill -0 "$EXPORTER_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$EXPORTER_PID" 2>/dev/null && fail "exporter still running 5 s after SIGTERM"
wait "$EXPORTER_PID" || fail "exporter exited $? on SIGTERM"
kill -TERM "$EXPORTER_PS_PID"
wait "$EXPORTER_PS_PID" || fail "the --per-state exporter exited $? on SIGTERM"
in_ns "$NS_G" curl -s --max-time 2 "http://$LISTEN/metrics" >/dev/null && fail "something still answers on $LISTEN"

assert_no_netfilter_rules_in "$NS_G"
log "$SCRAPES_PARSED scrapes and the stats --prometheus output parsed by prometheus_client"
log "PASS metrics"
