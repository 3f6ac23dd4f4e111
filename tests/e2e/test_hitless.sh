#!/bin/bash
# Changes to a running instance are hitless: while an iperf3 TCP stream and a numbered UDP
# stream (2000 datagrams/s) cross a port forward, (a) xnat-load applies a changed config,
# (b) xnat-load replaces the programs with another build of the object (--object), and (c) a
# rule is added and deleted 100 times. iperf3 must finish cleanly, the UDP receiver must see
# every datagram once and in order, and the cycled rule must never be seen half-applied.
source "$(dirname "$0")/lib.sh" "$1"

STREAM="python3 $E2E_DIR/stream.py"
command -v iperf3 >/dev/null || fail "iperf3 missing (scripts/install-deps.sh installs it)"
build_topology
BASE='{ "proto": "tcp", "from": "203.0.113.1:5201", "to": "10.0.0.12:5201" },
    { "proto": "udp", "from": "203.0.113.1:7000", "to": "10.0.0.12:7000" }'
CONFIG1=$(write_config one.json <<JSON
{ "port_forwards": [ $BASE ] }
JSON
)
CONFIG2=$(write_config two.json <<JSON
{ "port_forwards": [ $BASE,
    { "proto": "tcp", "from": "203.0.113.1:2222", "to": "10.0.0.12:22" } ] }
JSON
)
xnat_load --mode tc wan0 lan0 "$CONFIG1" >/dev/null
on_fail() { gw_report "$NS_G" "$PIN"; tail -n 5 "$WORK"/*.log; }

spawn iperfsrv in_s iperf3 -s -1 -p 5201
spawn udprecv in_s $STREAM udp-seq-recv --port 7000 --timeout 60
spawn tag in_s $STREAM udp-tag --port 7100 --count 10
wait_log udprecv listening
wait_log tag listening
sleep 0.5 # iperf3 -s prints nothing until a client comes
# A rate cap leaves CPU for the UDP stream on this 2-core machine: the point is continuity.
spawn iperf in_c iperf3 -c 203.0.113.1 -p 5201 -t 25 -b 2G -J
iperf_pid=$LAST_PID
spawn udpsend in_c $STREAM udp-seq-send --host 203.0.113.1 --port 7000 --rate 2000 --seconds 0 --stop "$WORK/stop"
udp_pid=$LAST_PID
wait_log udpsend sending
sleep 2

log "(a) reload with a changed config (one more, unrelated rule)"
out=$(xnat_load --mode tc wan0 lan0 "$CONFIG2")
grep -qF "reloaded $PIN: 3 rules" <<<"$out" || fail "reload said: $out"
sleep 2

log "(b) replace the programs with another build of the object"
cp "$BUILD_DIR/xnat_bpf.bpf.o" "$WORK/rebuilt.bpf.o"
prog_before=$(tc -n "$NS_G" filter show dev wan0 ingress | grep -o 'id [0-9]*')
out=$(xnat_load --mode tc --object "$WORK/rebuilt.bpf.o" wan0 lan0 "$CONFIG2")
grep -qF "reloaded $PIN: 3 rules" <<<"$out" || fail "reload with --object said: $out"
prog_after=$(tc -n "$NS_G" filter show dev wan0 ingress | grep -o 'id [0-9]*')
[ "$prog_before" != "$prog_after" ] || fail "the programs were not replaced ($prog_after)"
log "wan0 ingress program $prog_before -> $prog_after"
expect_fail 2 "--object: cannot read $WORK/none.bpf.o" xnat_load --object "$WORK/none.bpf.o" wan0 lan0 "$CONFIG2"
expect_fail 2 "is not an xnat BPF object" xnat_load --object "$BUILD_DIR/bench_gen.bpf.o" wan0 lan0 "$CONFIG2"
sleep 2

log "(c) 100 add/del cycles of a UDP range rule, probed by new flows and by list"
spawn probe in_c $STREAM udp-probe --host 203.0.113.1 --port 3000 --count 10 --backend 7100 --pause 0.005 --stop "$WORK/stop_probe"
probe_pid=$LAST_PID
base_list=$(xnat_map list --json)
for i in $(seq 100); do
	xnat_map add udp 203.0.113.1:3000-3009 10.0.0.12:7100 >/dev/null
	with=$(xnat_map list --json)
	python3 - "$base_list" "$with" <<'PY' || fail "cycle $i: rule half-applied: $with"
import json, sys
base, now = json.loads(sys.argv[1])["port_forwards"], json.loads(sys.argv[2])["port_forwards"]
added = [r for r in now if r not in base]
assert all(r in now for r in base) and added == [
    {"proto": "udp", "from": "203.0.113.1:3000-3009", "to": "10.0.0.12:7100-7109", "on": "wan"}], added
PY
	xnat_map del udp 203.0.113.1:3000-3009 >/dev/null
	[ "$(xnat_map list --json)" = "$base_list" ] || fail "cycle $i: del left $(xnat_map list --json)"
done
touch "$WORK/stop_probe"
reap probe "$probe_pid"
log "probe: $(cat "$WORK/probe.log")"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(not (r['answered'] > 0 and r['unanswered'] > 0))" \
	"$WORK/probe.log" || fail "the probe never saw both states of the rule: $(cat "$WORK/probe.log")"

log "the streams finish undisturbed"
reap iperf "$iperf_pid"
python3 - "$WORK/iperf.log" <<'PY' >"$WORK/iperf.summary" || fail "iperf3: $(cat "$WORK/iperf.summary")"
import json, sys
r = json.load(open(sys.argv[1]))
if "error" in r:
    print(r["error"]); sys.exit(1)
sent, recv = r["end"]["sum_sent"], r["end"]["sum_received"]
print(f"iperf3 {recv['bytes']} bytes received in {recv['seconds']:.1f}s, "
      f"{recv['bits_per_second'] / 1e9:.2f} Gbit/s, {sent.get('retransmits', 0)} retransmits")
sys.exit(0 if recv["bytes"] > 0 and recv["seconds"] > 20 else 1)
PY
log "$(cat "$WORK/iperf.summary")"
touch "$WORK/stop"
reap udpsend "$udp_pid"
wait_log udprecv '"sent"' 50
recv=$(grep '"sent"' "$WORK/udprecv.log")
log "udp: $recv"
python3 -c "import json,sys; r=json.loads(sys.argv[1]); sys.exit(r['lost'] or r['reordered'] or r['duplicated'] or r['sent'] < 10000)" \
	"$recv" || fail "the UDP stream was disturbed: $recv"
assert_no_netfilter_rules
log "PASS hitless"
