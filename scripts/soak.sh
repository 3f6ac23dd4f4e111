#!/bin/bash
# Soak: mixed traffic through xnat for a while, then a report and a verdict.
#
#   sudo scripts/soak.sh --minutes N [--build DIR]      (or --seconds N; default build dir: build)
#
# Builds the end-to-end tests' namespaces (client 198.51.100.2, gateway, server 10.0.0.12 behind
# port forwards and masquerade; tests/e2e/lib.sh), then runs for the whole time, in both
# directions (DNAT client->server, masquerade server->client):
#   - short TCP connections, each echoing a random payload that is compared byte for byte;
#   - one long paced TCP flow each way, whose receiver checks the sha256 of every byte;
#   - a numbered UDP stream each way (500 datagrams/s), checked for loss and reordering;
#   - ping (5/s) through masquerade.
# It samples the connection count about 5 times a second and prints: connections made, bytes verified,
# drops by reason, the table's high-water mark, and PASS ("nothing lost": every payload
# identical, no UDP datagram or ping lost, no drop counter outside EXPECTED_DROPS, the table
# consistent at the end) or FAIL. Exit status 0 on PASS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_TOTAL=""
BUILD=$ROOT/build
usage() { echo "usage: $0 --minutes N | --seconds N [--build DIR]" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--minutes) [ $# -ge 2 ] || usage; SECONDS_TOTAL=$(awk -v m="$2" 'BEGIN { if (m !~ /^[0-9]*\.?[0-9]+$/ || m <= 0) exit 1; printf "%d", m * 60 + 0.5 }') || usage; shift 2 ;;
	--seconds) [ $# -ge 2 ] || usage; [[ $2 =~ ^[1-9][0-9]*$ ]] || usage; SECONDS_TOTAL=$2; shift 2 ;;
	--build) [ $# -ge 2 ] || usage; BUILD=$2; shift 2 ;;
	*) usage ;;
	esac
done
[ -n "$SECONDS_TOTAL" ] && [ "$SECONDS_TOTAL" -ge 5 ] || usage
[ -x "$BUILD/xnat-load" ] || { echo "soak: no $BUILD/xnat-load; build first (scripts/build.sh)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "soak: needs root (namespaces, BPF); run: sudo $0 ..." >&2; exit 1; }

# Drop reasons that do not count as loss in this traffic mix: none. Every flow here is wanted.
EXPECTED_DROPS=""

source "$ROOT/tests/e2e/lib.sh" "$BUILD"
STREAM="python3 $E2E_DIR/stream.py"
on_fail() { gw_report "$NS_G" "$PIN"; tail -n 3 "$WORK"/*.log; }

build_topology
CONFIG=$(write_config soak.json <<'JSON'
{ "port_forwards": [
    { "proto": "tcp", "from": "203.0.113.1:8000-8001", "to": "10.0.0.12:8000" },
    { "proto": "udp", "from": "203.0.113.1:7000", "to": "10.0.0.12:7000" } ],
  "masquerade": [ { "source": "10.0.0.0/24" } ],
  "limits": { "connections": 65536 } }
JSON
)
gw_load "$NS_G" "$PIN" wan0 lan0 "$CONFIG" | sed 's/^/  /'
echo "soak: ${SECONDS_TOTAL}s of mixed traffic through xnat"

secs=$SECONDS_TOTAL
long_bytes=$((secs * 2000000)) # 2 MB/s per long flow
# Servers: echo and sink on both sides, UDP receivers on both sides.
spawn echo_s in_ns "$NS_S" $PEER tcp-server --port 8000
spawn sink_s in_ns "$NS_S" $STREAM tcp-sink --port 8001
spawn udprecv_s in_ns "$NS_S" $STREAM udp-seq-recv --port 7000 --timeout $((secs + 60))
spawn echo_c in_ns "$NS_C" $PEER tcp-server --port 8100
spawn sink_c in_ns "$NS_C" $STREAM tcp-sink --port 8101
spawn udprecv_c in_ns "$NS_C" $STREAM udp-seq-recv --port 7100 --timeout $((secs + 60))
for s in echo_s sink_s udprecv_s echo_c sink_c udprecv_c; do wait_log $s listening; done

# Clients. Short connections stop a little early so the last ones finish inside the time.
declare -A PID
start=$(date +%s)
spawn churn_fwd in_ns "$NS_C" $STREAM tcp-churn --host 203.0.113.1 --port 8000 --bytes 16384 --pause 0.01 --seconds $((secs - 2)) --seed 11
PID[churn_fwd]=$LAST_PID
spawn churn_masq in_ns "$NS_S" $STREAM tcp-churn --host 198.51.100.2 --port 8100 --bytes 16384 --pause 0.01 --seconds $((secs - 2)) --seed 12
PID[churn_masq]=$LAST_PID
spawn long_fwd in_ns "$NS_C" $STREAM tcp-send --host 203.0.113.1 --port 8001 --bytes $long_bytes --seconds $((secs - 2)) --seed 21
PID[long_fwd]=$LAST_PID
spawn long_masq in_ns "$NS_S" $STREAM tcp-send --host 198.51.100.2 --port 8101 --bytes $long_bytes --seconds $((secs - 2)) --seed 22
PID[long_masq]=$LAST_PID
spawn udp_fwd in_ns "$NS_C" $STREAM udp-seq-send --host 203.0.113.1 --port 7000 --rate 500 --seconds $((secs - 2))
PID[udp_fwd]=$LAST_PID
spawn udp_masq in_ns "$NS_S" $STREAM udp-seq-send --host 198.51.100.2 --port 7100 --rate 500 --seconds $((secs - 2))
PID[udp_masq]=$LAST_PID
spawn ping in_ns "$NS_S" ping -q -i 0.2 -c $(((secs - 2) * 5)) -W 2 198.51.100.2
PID[ping]=$LAST_PID

# The high-water mark: xnat-map stats counts the ct map's entries (two per connection); read
# with sed rather than a python per sample, so a sample costs a few ms and they come often. The
# count at the end joins the samples below: closed flows linger, so the table is often fullest
# then.
high=0
samples=0
while [ $(($(date +%s) - start)) -lt "$secs" ]; do
	n=$(gw_map "$NS_G" "$PIN" stats --json | sed -n 's/.*"connections": *\([0-9]*\).*/\1/p')
	[ -n "$n" ] || { echo "soak: xnat-map stats --json has no connections field" >&2; exit 1; }
	[ "$n" -gt "$high" ] && high=$n
	samples=$((samples + 1))
	sleep 0.2
done

failed=()
for name in churn_fwd churn_masq long_fwd long_masq udp_fwd udp_masq ping; do
	wait "${PID[$name]}" || failed+=("$name")
done
for r in udprecv_s udprecv_c; do wait_log $r '"sent"' 100; done

gw_map "$NS_G" "$PIN" stats --json >"$WORK/stats.json"
final=$(sed -n 's/.*"connections": *\([0-9]*\).*/\1/p' "$WORK/stats.json")
[ "$final" -gt "$high" ] && high=$final
# The sweeper may end flows while the map is read, which makes a lone half look orphaned for one
# reading; a real inconsistency persists, so it fails every reading.
for try in 1 2 3 4 5; do
	gw_map "$NS_G" "$PIN" conns --json >"$WORK/conns.json"
	bpftool map dump pinned "$PIN/xnat_ct" -j >"$WORK/ct.json"
	consistency=$(python3 "$E2E_DIR/ct_check.py" "$WORK/ct.json" "$WORK/conns.json" 2>&1) && break
	[ "$try" -lt 5 ] || failed+=("table consistency")
	sleep 1
done

python3 - "$WORK" "$secs" "$high" "$samples" "$EXPECTED_DROPS" "$consistency" "${failed[*]:-}" <<'PY'
import json, os, re, sys
work, secs, high, samples, expected, consistency, failed = sys.argv[1:8]
expected = set(expected.split())
failed = failed.split() if failed else []
def lines(name):
    try:
        return open(os.path.join(work, name + ".log")).read().splitlines()
    except OSError:
        return []
def last_json(name):
    for line in reversed(lines(name)):
        if line.startswith("{"):
            return json.loads(line)
    return None
verdict = []
made = verified = 0
print(f"\nsoak report ({secs}s, {samples} samples)")
for name in ("churn_fwd", "churn_masq"):
    r = last_json(name)
    if r is None:
        verdict.append(f"{name}: no result"); continue
    made += r["connections"]; verified += r["bytes_verified"]
    print(f"  short TCP {name:<10} {r['connections']:>7} connections, {r['bytes_verified']:>11} bytes echoed identical")
for name in ("long_fwd", "long_masq"):
    m = [re.match(r"ok stream (\d+) bytes sha256=(\w+)", l) for l in lines(name)]
    m = [x for x in m if x]
    if not m:
        verdict.append(f"{name}: stream not verified"); continue
    made += 1; verified += int(m[-1].group(1))
    print(f"  long TCP  {name:<10} {int(m[-1].group(1)):>11} bytes, sha256 identical ({m[-1].group(2)[:16]}...)")
for name, recv in (("udp_fwd", "udprecv_s"), ("udp_masq", "udprecv_c")):
    r = last_json(recv)
    if r is None:
        verdict.append(f"{name}: receiver has no result"); continue
    made += 1
    print(f"  UDP       {name:<10} sent {r['sent']}, received {r['received']}, lost {r['lost']}, "
          f"reordered {r['reordered']}, duplicated {r['duplicated']}")
    if r["lost"] or r["reordered"] or r["duplicated"] or r["sent"] == 0:
        verdict.append(f"{name}: datagrams lost or out of order")
ping = [l for l in lines("ping") if "packets transmitted" in l]
if ping:
    made += 1
    print(f"  ICMP      ping       {ping[-1].strip()}")
    if not re.search(r" 0% packet loss", ping[-1]):
        verdict.append("ping: replies lost")
else:
    verdict.append("ping: no summary")
stats = json.load(open(os.path.join(work, "stats.json")))
c = stats["counters"]
print(f"  connections made: {made} (gateway counted {c['new_flow']} new flows, {c['flow_ended']} ended: expired, or closed tuples reopened by a new SYN)")
print(f"  bytes verified end to end: {verified}")
print(f"  table high-water mark: {high} of {stats['max_connections']} connections (max of {samples} "
      f"samples of xnat-map stats, one per {float(secs) / max(int(samples), 1):.2f}s, and the count at the end)")
drops = {k: v for k, v in c.items() if k.startswith("drop_") and v}
passes = {k: v for k, v in c.items() if k.startswith("pass_") and v}
print("  drops by reason: " + (", ".join(f"{k}={v}" for k, v in sorted(drops.items())) or "none"))
print("  passed to the kernel: " + (", ".join(f"{k}={v}" for k, v in sorted(passes.items())) or "none"))
print(f"  fast path: redirected={c['redirected']} redirected_neigh={c['redirected_neigh']}")
print(f"  table at the end: {consistency}")
for k in drops:
    if k not in expected:
        verdict.append(f"unexpected drops: {k}={drops[k]}")
for f in failed:
    verdict.append(f"{f} failed")
print("\nverdict: " + ("PASS (nothing lost)" if not verdict else "FAIL: " + "; ".join(verdict)))
sys.exit(1 if verdict else 0)
PY
