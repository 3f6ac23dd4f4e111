#!/bin/bash
# Times the control plane against a big connection table (issue 12): fills a gateway's table
# with N flows through the real datapath, then times `xnat-map conns --json`, `xnat-map stats
# --json`, `xnat-map stats --prometheus` (what xnat-exporter does per scrape), the same with
# --per-state (xnat-exporter --per-state) and, last, `xnat-map flush`.
#
#   scripts/ctl-scale.sh [--build DIR] [--compare DIR] [--connections N] [--table N]
#
# --build: the build whose xnat-load and xnat-map are measured (default build/). --compare: a
# second build whose xnat-map (same map layout) is timed on the same table, e.g. an older
# commit's. The flows are TCP SYNs from spoofed sources to a port forward, sent by
# tests/e2e/syn_flood.py, so new_flow and the table agree as they do in production. Needs
# root; everything lives in namespaces and a bpffs that lib.sh removes on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
COMPARE=
CONNS=600000
TABLE=1048576
while [ $# -gt 0 ]; do
	case $1 in
	--build) BUILD=$2; shift 2 ;;
	--compare) COMPARE=$2; shift 2 ;;
	--connections) CONNS=$2; shift 2 ;;
	--table) TABLE=$2; shift 2 ;;
	*) echo "usage: $0 [--build DIR] [--compare DIR] [--connections N] [--table N]" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "ctl-scale: needs root (namespaces, BPF)" >&2; exit 2; }
[ "$CONNS" -le "$TABLE" ] || { echo "ctl-scale: $CONNS connections do not fit a table of $TABLE" >&2; exit 2; }
# lib.sh builds the namespaces and sets the trap that removes them, the instance and the bpffs.
# shellcheck source=../tests/e2e/lib.sh
source "$ROOT/tests/e2e/lib.sh" "$BUILD"

build_topology
# Nothing listens on the server's port 9: each SYN is answered by an RST, which closes its flow,
# and the timeouts keep closed flows for the whole run. (A forward to an address nobody owns
# is no faster: the gateway holds every packet in its ARP queue and the flood stalls.)
CONFIG=$(write_config scale.json <<JSON
{ "port_forwards": [ { "proto": "tcp", "from": "203.0.113.1:9000", "to": "10.0.0.12:9" } ],
  "timeouts": { "tcp_established": 3600, "tcp_transitory": 3600, "tcp_close": 3600,
                "tcp_syn_sent": 3600, "tcp_syn_recv": 3600 },
  "limits": { "connections": $TABLE } }
JSON
)
gw_load "$NS_G" "$PIN" --mode tc wan0 lan0 "$CONFIG" >/dev/null

# Source ports 1024-65535 of as many spoofed addresses as N needs.
sources=$(((CONNS + 64511) / 64512))
client_mac=$(in_ns "$NS_C" cat /sys/class/net/eth0/address)
wan_mac=$(in_ns "$NS_G" cat /sys/class/net/wan0/address)
echo "filling: $CONNS SYNs from $sources sources into a table of $TABLE connections"
in_ns "$NS_C" python3 "$E2E_DIR/syn_flood.py" eth0 "$client_mac" "$wan_mac" 198.51.100.100 203.0.113.1 9000 \
	1024 "$CONNS" --sources "$sources" | grep "^sent"

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
now() { date +%s.%N; }
held=$(gw_map "$NS_G" "$PIN" stats --json | json_field "['connections']")
entries=$((2 * held))
echo "table holds $held connections ($entries entries)"

# time_it LABEL CMD...: runs CMD (output discarded) and prints its wall time and entries/s.
time_it() {
	local label=$1 start end
	shift
	start=$(now)
	"$@" >/dev/null
	end=$(now)
	python3 -c "import sys; t = $end - $start; print(f'  {sys.argv[1]:<46} {t:7.3f} s  {$entries / t / 1e3:8.0f}k entries/s')" "$label"
}

measure() {
	local map=$1 name=$2
	echo "$name ($map)"
	time_it "conns --json" in_ns "$NS_G" "$map" --pin-dir "$PIN" conns --json
	time_it "conns" in_ns "$NS_G" "$map" --pin-dir "$PIN" conns
	time_it "stats --json" in_ns "$NS_G" "$map" --pin-dir "$PIN" stats --json
	time_it "stats --prometheus (an exporter scrape)" in_ns "$NS_G" "$map" --pin-dir "$PIN" stats --prometheus
	# Builds from before the connection count came from the counters have no --per-state: their
	# plain scrape read the whole table, as --per-state does now.
	if "$map" stats --help 2>/dev/null | grep -q -- --per-state; then
		time_it "stats --prometheus --per-state" in_ns "$NS_G" "$map" --pin-dir "$PIN" stats --prometheus --per-state
	fi
}

[ -z "$COMPARE" ] || measure "$(cd "$COMPARE" && pwd)/xnat-map" compare
measure "$XNAT_MAP" build
time_it "flush" gw_map "$NS_G" "$PIN" flush
left=$(gw_map "$NS_G" "$PIN" stats --json | json_field "['connections']")
echo "after flush: $left connections"
