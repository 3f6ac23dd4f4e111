#!/bin/bash
# The demo: installs dependencies, builds, then builds a throwaway network of namespaces
# (client - gateway - server), lets xnat forward real TCP and UDP traffic through the gateway,
# and shows what xnat-map sees. Everything is removed at the end.   usage: sudo scripts/demo.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
	echo "demo.sh: namespaces and BPF need root; run: sudo $0" >&2
	exit 1
fi
"$ROOT/scripts/install-deps.sh"
"$ROOT/scripts/build.sh" >/dev/null
echo "built $ROOT/build/xnat-load and xnat-map"

source "$ROOT/tests/e2e/lib.sh" "$ROOT/build"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# show "what the operator would type" command...
show() {
	printf '$ %s\n' "$1"
	shift
	"$@" | sed 's/^/  /'
}

echo "(the demo's pins live in a private bpffs, hence --pin-dir in the real commands)"
step "network: client 198.51.100.2 -- gateway 203.0.113.1 (wan0) / 10.0.0.1 (lan0) -- server 10.0.0.12"
build_topology
serve tcpsrv "$NS_S" tcp 22 udpsrv "$NS_S" udp 6003 inetsrv "$NS_C" udp 7000

step "load xnat on the gateway (configs/demo.json)"
cat "$ROOT/configs/demo.json"
show "xnat-load wan0 lan0 configs/demo.json" in_ns "$NS_G" "$XNAT_LOAD" --pin-dir "$PIN" wan0 lan0 "$ROOT/configs/demo.json"

step "client: TCP to 203.0.113.1:22012 (forwarded to 10.0.0.12:22), kept open"
spawn tcpcli in_ns "$NS_C" $PEER tcp-client --host 203.0.113.1 --port 22012 --bytes 1000000 --hold "$WORK/release"
cli=$LAST_PID
wait_log tcpcli "^holding" 200
sed 's/^/  client: /' "$WORK/tcpcli.log" | grep -v holding
sed 's/^/  server: /' "$WORK/tcpsrv.log"

step "client: UDP to 203.0.113.1:6003 (range 6000-6009 -> 10.0.0.12:6000-6009)"
in_ns "$NS_C" $PEER udp-client --host 203.0.113.1 --port 6003 --count 10 | sed 's/^/  client: /'
sed 's/^/  server: /' "$WORK/udpsrv.log"

step "server: UDP out to the internet host 198.51.100.2:7000 (masquerade to 203.0.113.1)"
in_ns "$NS_S" $PEER udp-client --host 198.51.100.2 --port 7000 --count 10 | sed 's/^/  server: /'
sed 's/^/  internet host: /' "$WORK/inetsrv.log"

step "connections, as conntrack would show them: original tuple, then reply tuple"
show "xnat-map conns" gw_map "$NS_G" "$PIN" conns
step "counters"
show "xnat-map stats" gw_map "$NS_G" "$PIN" stats
step "rules, and one added live"
show "xnat-map add tcp 203.0.113.1:2222 10.0.0.12:22" gw_map "$NS_G" "$PIN" add tcp 203.0.113.1:2222 10.0.0.12:22
show "xnat-map list" gw_map "$NS_G" "$PIN" list

touch "$WORK/release"
reap tcpcli "$cli"
step "unload; the namespaces go too"
show "xnat-load --unload" in_ns "$NS_G" "$XNAT_LOAD" --unload --pin-dir "$PIN"
