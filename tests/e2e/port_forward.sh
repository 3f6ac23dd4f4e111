#!/bin/bash
# Port forwarding end to end: real TCP and UDP sockets from a client namespace, through a
# gateway namespace running xnat alone, to a server namespace.
#   usage: port_forward.sh BUILD_DIR MODE(auto|xdp|tc) OFFLOAD(on|off)
source "$(dirname "$0")/lib.sh" "$1"
MODE=$2
OFFLOAD=$3

build_topology
offload_in "$OFFLOAD" "$NS_C:eth0" "$NS_S:eth0"
CONFIG=$(write_config fwd.json <<'JSON'
{ "port_forwards": [
    { "proto": "tcp", "from": "203.0.113.1:22012", "to": "10.0.0.12:22" },
    { "proto": "udp", "from": "203.0.113.1:6000-6009", "to": "10.0.0.12:6000" } ] }
JSON
)
serve tcpsrv "$NS_S" tcp 22 udpsrv "$NS_S" udp 6003

log "without xnat the public port is the gateway's own, and closed"
if in_ns "$NS_C" $PEER tcp-client --host 203.0.113.1 --port 22012 --timeout 2 >/dev/null 2>&1; then
	fail "reached the server before xnat was loaded"
fi

log "xnat-load --mode $MODE (tx checksum offload $OFFLOAD)"
load_in_mode "$NS_G" "$PIN" "$MODE" "$CONFIG" wan lan
printf '%s\n' "$LOADED" | sed 's/^/    /'

log "TCP: 2 MB echoed intact, connection held open"
hold_tcp tcpcli 200 "$NS_C" --host 203.0.113.1 --port 22012 --bytes 2000000 --hold "$WORK/release"
cli_pid=$LAST_PID
cport=$HELD_PORT
[ -n "$cport" ] || fail "client port unknown"
grep -q "^accepted 198.51.100.2 $cport$" "$WORK/tcpsrv.log" ||
	fail "server did not see the client's real address 198.51.100.2:$cport: $(cat "$WORK/tcpsrv.log")"

log "xnat-map conns shows the flow in conntrack's original/reply form"
conns=$(gw_map "$NS_G" "$PIN" conns)
printf '%s\n' "$conns" | sed 's/^/    /'
seed="tcp ESTABLISHED src=198.51.100.2 dst=203.0.113.1 sport=$cport dport=22012 src=10.0.0.12 dst=198.51.100.2 sport=22 dport=$cport timeout="
grep -qF "$seed" <<<"$conns" || fail "no seed-form line for the held connection"
touch "$WORK/release"
reap tcpcli "$cli_pid"
grep -q "ok tcp after hold" "$WORK/tcpcli.log" || fail "held connection did not carry data again"

log "UDP: 50 datagrams through a port range"
in_ns "$NS_C" $PEER udp-client --host 203.0.113.1 --port 6003 --count 50 >"$WORK/udpcli.log"
uport=$(sed -n 's/.*local=[0-9.]*:\([0-9]*\).*/\1/p' "$WORK/udpcli.log")
grep -q "^datagram from 198.51.100.2 $uport$" "$WORK/udpsrv.log" || fail "UDP server did not see the client"
gw_map "$NS_G" "$PIN" conns | grep -qF "udp REPLIED src=198.51.100.2 dst=203.0.113.1 sport=$uport dport=6003 src=10.0.0.12 dst=198.51.100.2 sport=6003 dport=$uport" ||
	fail "no UDP connection line"

redirected=$(gw_counter "$NS_G" "$PIN" redirected)
log "fast path redirected $redirected packets"
[ "$redirected" -gt 100 ] || fail "the fast path redirected only $redirected packets"
assert_no_netfilter_rules_in "$NS_G"
log "PASS port_forward $MODE offload=$OFFLOAD"
