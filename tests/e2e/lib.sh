# Shared by the end-to-end tests and the demo: a throwaway network of namespaces.
#
#   client ns             gateway ns                       server ns
#   eth0 198.51.100.2 --- wan0 198.51.100.1             
#                         (203.0.113.1/32, the public address)
#                         lan0 10.0.0.1 ------------------ eth0 10.0.0.12
#
# Everything lives in namespaces this file creates and removes on exit (trap), with pins on a
# bpffs mounted under a private temp directory, so a test never touches the host's interfaces.
# shellcheck shell=bash

set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD_DIR=$(cd "${1:-$E2E_DIR/../../build}" && pwd)
XNAT_LOAD=$BUILD_DIR/xnat-load
XNAT_MAP=$BUILD_DIR/xnat-map
PEER="python3 $E2E_DIR/peer.py"

# The separator keeps one test's names from being a prefix of another's (x123- vs x1234-), so
# cleanup's prefix match removes only this test's namespaces.
TAG=x$$-
NS_C=${TAG}cli
NS_G=${TAG}gw
NS_S=${TAG}srv
WORK=$(mktemp -d /tmp/xnat-e2e.XXXXXX)
BPFFS=$WORK/bpffs
PIN=$BPFFS/xnat
BG_PIDS=()
XNAT_INSTANCES=() # further xnat instances ("NS PIN"), loaded with gw_load; unloaded on exit

log() { printf '  %s\n' "$*"; }
fail() {
	printf 'FAIL: %s\n' "$*" >&2
	# A test may define on_fail to print evidence (conns, counters) before it exits.
	if declare -F on_fail >/dev/null; then on_fail >&2 || true; fi
	exit 1
}

cleanup() {
	local rc=$?
	set +e
	# A spawned shell function (in_s ...) runs in a subshell whose child is the real process:
	# killing the subshell alone would leave that child running forever.
	for pid in "${BG_PIDS[@]}"; do
		pkill -P "$pid" 2>/dev/null
		kill "$pid" 2>/dev/null
	done
	wait 2>/dev/null
	if ip netns list | grep -q "^$NS_G"; then
		ip netns exec "$NS_G" "$XNAT_LOAD" --unload --pin-dir "$PIN" >/dev/null 2>&1
	fi
	for inst in "${XNAT_INSTANCES[@]}"; do
		read -r ns pin <<<"$inst"
		ip netns exec "$ns" "$XNAT_LOAD" --unload --pin-dir "$pin" >/dev/null 2>&1
	done
	for ns in $(ip netns list | awk '{print $1}' | grep "^$TAG"); do ip netns del "$ns"; done
	while umount "$BPFFS" 2>/dev/null; do :; done
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT INT TERM

in_c() { ip netns exec "$NS_C" "$@"; }
in_g() { ip netns exec "$NS_G" "$@"; }
in_s() { ip netns exec "$NS_S" "$@"; }

xnat_load() { in_g "$XNAT_LOAD" --pin-dir "$PIN" "$@"; }
xnat_map() { in_g "$XNAT_MAP" --pin-dir "$PIN" "$@"; }

# A bpffs every process of the test sees: `ip netns exec` remounts /sys, hiding /sys/fs/bpf.
mount_bpffs() {
	mkdir -p "$BPFFS"
	mount -t bpf bpf "$BPFFS"
}

# Runs a command in the background, remembering it for cleanup; output to $WORK/NAME.log.
# Its pid is left in LAST_PID.
spawn() {
	local name=$1
	shift
	"$@" >"$WORK/$name.log" 2>&1 &
	LAST_PID=$!
	BG_PIDS+=("$LAST_PID")
}

# Waits for a spawned command and fails the test unless it succeeded.
reap() {
	local name=$1 pid=$2
	if ! wait "$pid"; then
		cat "$WORK/$name.log" >&2
		fail "$name failed"
	fi
}

# expect_fail CODE PATTERN CMD...: CMD must exit with CODE and print PATTERN on stderr.
expect_fail() {
	local code=$1 pattern=$2 rc=0
	shift 2
	"$@" >"$WORK/expect.out" 2>"$WORK/expect.err" || rc=$?
	[ "$rc" -eq "$code" ] || fail "'$*' exited $rc, expected $code: $(cat "$WORK/expect.err")"
	grep -qF -- "$pattern" "$WORK/expect.err" ||
		fail "'$*' said '$(cat "$WORK/expect.err")', expected '$pattern'"
	[ "$(wc -l <"$WORK/expect.err")" -eq 1 ] || fail "'$*' printed more than one error line"
}

# Waits until a log file contains a line matching a pattern.
wait_log() {
	local name=$1 pattern=$2 tries=${3:-100}
	for _ in $(seq "$tries"); do
		grep -q -- "$pattern" "$WORK/$name.log" 2>/dev/null && return 0
		sleep 0.1
	done
	cat "$WORK/$name.log" >&2 2>/dev/null || true
	fail "$name never logged '$pattern'"
}

# veth pair between two namespaces.
link_ns() {
	local ns_a=$1 if_a=$2 ns_b=$3 if_b=$4
	ip link add "$if_a" netns "$ns_a" type veth peer name "$if_b" netns "$ns_b"
	ip -n "$ns_a" link set "$if_a" up
	ip -n "$ns_b" link set "$if_b" up
}

# TX checksum offload on the hosts' ends: "on" (veth's default: local packets leave with only
# the pseudo-header sum) or "off" (full checksums in every packet).
set_offload() {
	local state=$1
	in_c ethtool -K eth0 tx "$state" >/dev/null
	in_s ethtool -K eth0 tx "$state" >/dev/null
}

build_topology() {
	mount_bpffs
	for ns in "$NS_C" "$NS_G" "$NS_S"; do
		ip netns add "$ns"
		ip -n "$ns" link set lo up
	done
	link_ns "$NS_G" wan0 "$NS_C" eth0
	link_ns "$NS_G" lan0 "$NS_S" eth0
	ip -n "$NS_C" addr add 198.51.100.2/24 dev eth0
	ip -n "$NS_C" route add 203.0.113.0/24 via 198.51.100.1
	ip -n "$NS_G" addr add 198.51.100.1/24 dev wan0
	ip -n "$NS_G" addr add 203.0.113.1/32 dev wan0
	ip -n "$NS_G" addr add 10.0.0.1/24 dev lan0
	in_g sysctl -qw net.ipv4.ip_forward=1
	ip -n "$NS_S" addr add 10.0.0.12/24 dev eth0
	ip -n "$NS_S" route add default via 10.0.0.1
	# XDP frames redirected into a veth are delivered only if the peer runs XDP or GRO.
	in_c ethtool -K eth0 gro on >/dev/null
	in_s ethtool -K eth0 gro on >/dev/null
}

# The gateway must do its job with xnat alone.
assert_no_netfilter_rules() {
	local rules
	rules=$(in_g sh -c 'iptables-save 2>/dev/null | grep -E "^-A" ; nft list ruleset 2>/dev/null | grep -E "dnat|snat|masquerade"' || true)
	[ -z "$rules" ] || fail "gateway namespace has netfilter rules: $rules"
}

# write_config NAME <<EOF ... EOF: a config file under the test's directory; prints its path.
write_config() {
	local path=$WORK/$1
	cat >"$path"
	echo "$path"
}

# The local port a tcp-client reported ("ok tcp N bytes local=ADDR:PORT").
client_port() {
	sed -n 's/.*local=[0-9.]*:\([0-9]*\).*/\1/p' "$WORK/$1.log" | head -n1
}

counter() {
	xnat_map stats --json | python3 -c "import json,sys; print(json.load(sys.stdin)['counters']['$1'])"
}

# The number of connections, counted without and with a walk of the table, which must agree
# while no flow is being made or ended. Without a walk (O(1)): `stats --json` and the
# `xnat_connections_tracked` series of `stats --prometheus` (the exporter's scrape), both
# new_flow - flow_ended from the counters (every flow counted once made and once ended,
# whichever path ends it: sweeper, lookup, early drop, flush). With a walk: the flows
# `conns --json` lists, the per-state series of `stats --prometheus --per-state` summed, and the
# table's entries that scrape counts (two a flow). Leaves the count in CONN_COUNT (not printed:
# a failure inside $(...) would not end the test).
assert_conn_count() {
	local label=$1 stats created ended listed tracked per_state entries
	read -r stats created ended < <(xnat_map stats --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(s["connections"], s["counters"]["new_flow"], s["counters"]["flow_ended"])')
	listed=$(xnat_map conns --json | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")
	tracked=$(xnat_map stats --prometheus | awk '$1 == "xnat_connections_tracked" { print $2 }')
	read -r per_state entries < <(xnat_map stats --prometheus --per-state | awk '
		index($1, "xnat_connections{") == 1 { n += $2 }
		$1 == "xnat_table_entries{table=\"xnat_ct\"}" { e = $2 }
		END { print n + 0, e + 0 }')
	[ "$stats" -eq "$listed" ] || fail "$label: stats counts $stats connections, conns lists $listed"
	[ $((created - ended)) -eq "$listed" ] ||
		fail "$label: new_flow $created - flow_ended $ended = $((created - ended)), but conns lists $listed"
	[ "$tracked" = "$listed" ] || fail "$label: xnat_connections_tracked is '$tracked', conns lists $listed"
	[ "$per_state" -eq "$listed" ] || fail "$label: the per-state series sum to $per_state, conns lists $listed"
	[ "$entries" -eq $((2 * listed)) ] ||
		fail "$label: the table holds $entries entries, not two for each of the $listed connections listed"
	CONN_COUNT=$listed
}

# ---------------------------------------------------------------------------------------------
# Bigger topologies, built from parts: any number of namespaces (named $TAG..., so cleanup
# removes them), veth links, a bridge as a LAN switch, and several xnat instances.

in_ns() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# A bpffs for the pins, mounted once however many builders ask for it.
ensure_bpffs() {
	mountpoint -q "$BPFFS" 2>/dev/null || mount_bpffs
}

# ns_create NS...: fresh namespaces with loopback up.
ns_create() {
	local ns
	for ns; do
		ip netns add "$ns"
		ip -n "$ns" link set lo up
	done
}

# ns_forwarding NS...: let the namespaces route (gateways, routers).
ns_forwarding() {
	local ns
	for ns; do in_ns "$ns" sysctl -qw net.ipv4.ip_forward=1; done
}

# veth_link NS_A IF_A CIDR_A NS_B IF_B CIDR_B [MTU]: a veth pair, addressed ("-": no address),
# both ends at MTU when given.
veth_link() {
	local ns_a=$1 if_a=$2 addr_a=$3 ns_b=$4 if_b=$5 addr_b=$6 mtu=${7:-}
	link_ns "$ns_a" "$if_a" "$ns_b" "$if_b"
	if [ -n "$mtu" ]; then
		ip -n "$ns_a" link set "$if_a" mtu "$mtu"
		ip -n "$ns_b" link set "$if_b" mtu "$mtu"
	fi
	[ "$addr_a" = - ] || ip -n "$ns_a" addr add "$addr_a" dev "$if_a"
	[ "$addr_b" = - ] || ip -n "$ns_b" addr add "$addr_b" dev "$if_b"
}

# switch_create SW: a namespace holding one bridge, br0, standing for a LAN switch.
switch_create() {
	local sw=$1
	ns_create "$sw"
	ip -n "$sw" link add br0 type bridge
	ip -n "$sw" link set br0 up
}

# switch_plug SW PORT NS IF CIDR [MTU]: plugs NS's interface IF into the switch as port PORT.
# A port facing an XDP gateway needs GRO (gro_on) and, for XDP, TX checksum offload off
# (offload_in): the bridge hands it the hosts' packets, which it would otherwise pass on with
# partial checksums.
switch_plug() {
	local sw=$1 port=$2 ns=$3 ifname=$4 addr=$5 mtu=${6:-}
	veth_link "$sw" "$port" - "$ns" "$ifname" "$addr" "$mtu"
	ip -n "$sw" link set "$port" master br0
}

# lan_host NS SW PORT CIDR GATEWAY: a host namespace on the switch, default route via GATEWAY.
lan_host() {
	local ns=$1 sw=$2 port=$3 addr=$4 gw=$5
	ns_create "$ns"
	switch_plug "$sw" "$port" "$ns" eth0 "$addr"
	ip -n "$ns" route add default via "$gw"
}

# offload_in STATE NS:IF...: TX checksum offload on the named interfaces (see set_offload).
offload_in() {
	local state=$1 spec
	shift
	for spec; do in_ns "${spec%%:*}" ethtool -K "${spec#*:}" tx "$state" >/dev/null; done
}

# gro_on NS:IF...: GRO on the named interfaces (the peers of interfaces XDP redirects into).
gro_on() {
	local spec
	for spec; do in_ns "${spec%%:*}" ethtool -K "${spec#*:}" gro on >/dev/null; done
}

# gw_load NS PIN XNAT_LOAD_ARGS...: xnat-load in a gateway namespace; unloaded on exit.
gw_load() {
	local ns=$1 pin=$2
	shift 2
	local inst="$ns $pin" seen=0 i
	for i in "${XNAT_INSTANCES[@]}"; do [ "$i" = "$inst" ] && seen=1; done
	[ "$seen" = 1 ] || XNAT_INSTANCES+=("$inst")
	in_ns "$ns" "$XNAT_LOAD" --pin-dir "$pin" "$@"
}

# gw_map NS PIN XNAT_MAP_ARGS...: xnat-map on that gateway's instance.
gw_map() {
	local ns=$1 pin=$2
	shift 2
	in_ns "$ns" "$XNAT_MAP" --pin-dir "$pin" "$@"
}

# gw_counter NS PIN NAME: one of that instance's counters.
gw_counter() {
	gw_map "$1" "$2" stats --json | python3 -c "import json,sys; print(json.load(sys.stdin)['counters']['$3'])"
}

# gw_report NS PIN: conns and non-zero counters, for a failure's evidence.
gw_report() {
	printf '    conns of %s:\n' "$1" >&2
	gw_map "$1" "$2" conns 2>&1 | sed 's/^/      /' >&2 || true
	printf '    non-zero counters of %s:\n' "$1" >&2
	gw_map "$1" "$2" stats 2>&1 | awk '$2 != 0' | sed 's/^/      /' >&2 || true
}

# assert_no_netfilter_rules_in NS...: like assert_no_netfilter_rules, for any gateway.
assert_no_netfilter_rules_in() {
	local ns rules
	for ns; do
		rules=$(in_ns "$ns" sh -c 'iptables-save 2>/dev/null | grep -E "^-A" ; nft list ruleset 2>/dev/null | grep -E "dnat|snat|masquerade"' || true)
		[ -z "$rules" ] || fail "namespace $ns has netfilter rules: $rules"
	done
}

# The peer a server logged last ("accepted ADDR PORT" / "datagram from ADDR PORT"), as
# "ADDR PORT"; empty if none.
last_peer() {
	sed -n 's/^\(accepted\|datagram from\) \([0-9.]* [0-9]*\)$/\2/p' "$WORK/$1.log" | tail -n1
}

# Prints the first line of conns (of NS PIN) containing every given fragment.
conn_line() {
	local ns=$1 pin=$2
	shift 2
	local line frag ok
	while IFS= read -r line; do
		ok=1
		for frag; do
			case "$line" in *"$frag"*) ;; *) ok=0 ;; esac
		done
		[ "$ok" = 1 ] && {
			printf '%s\n' "$line"
			return 0
		}
	done < <(gw_map "$ns" "$pin" conns)
	return 1
}

# ---------------------------------------------------------------------------------------------
# The seed setup (docs/ARCHITECTURE.md, "The two-gateway setup"), documentation addresses for
# the public ones:
#
#   a12 10.0.0.12 ─┐
#   a13 10.0.0.13 ─┤ swa      gwa                 rtr                    gwb              b13
#        ...      ─┴─ br0 ── lan0 10.0.0.1    ra 203.0.113.254     wan0 198.51.100.1   10.0.1.13
#                          wan0 203.0.113.1 ──    rb 198.51.100.254 ──  lan0 10.0.1.1 ── eth0
#
# build_site_a [OCTET...]: LAN A (a switch with one host 10.0.0.OCTET per argument, default
# 12), gateway A, and the internet router with its 203.0.113.0/24 side. build_site_b: gateway
# B with LAN B host 10.0.1.13, on the router's 198.51.100.0/24 side. A test may plug something
# else into the router's rb side instead (ns_a, NS_R).
NS_GA=${TAG}gwa
NS_GB=${TAG}gwb
NS_R=${TAG}rtr
NS_SWA=${TAG}swa
NS_B13=${TAG}b13
PIN_A=$BPFFS/gwa
PIN_B=$BPFFS/gwb

# The namespace of LAN A host 10.0.0.OCTET.
ns_a() { echo "${TAG}a$1"; }

build_site_a() {
	local octet
	[ $# -gt 0 ] || set -- 12
	ensure_bpffs
	ns_create "$NS_GA" "$NS_R"
	ns_forwarding "$NS_GA" "$NS_R"
	switch_create "$NS_SWA"
	switch_plug "$NS_SWA" pgw "$NS_GA" lan0 10.0.0.1/24
	for octet; do
		lan_host "$(ns_a "$octet")" "$NS_SWA" "p$octet" "10.0.0.$octet/24" 10.0.0.1
	done
	veth_link "$NS_GA" wan0 203.0.113.1/24 "$NS_R" ra 203.0.113.254/24
	ip -n "$NS_GA" route add default via 203.0.113.254
}

build_site_b() {
	ensure_bpffs
	ns_create "$NS_GB" "$NS_B13"
	ns_forwarding "$NS_GB"
	veth_link "$NS_R" rb 198.51.100.254/24 "$NS_GB" wan0 198.51.100.1/24
	ip -n "$NS_GB" route add default via 198.51.100.254
	veth_link "$NS_GB" lan0 10.0.1.1/24 "$NS_B13" eth0 10.0.1.13/24
	ip -n "$NS_B13" route add default via 10.0.1.1
}

# build_seed_topology [OCTET...]: both sites and the router between them.
build_seed_topology() {
	build_site_a "$@"
	build_site_b
}

# resolve_neighbour NS ADDR...: NS learns the link-layer address of each ADDR (one ping).
# A gateway's next hop is normally known; tests whose subject is something else start so.
resolve_neighbour() {
	local ns=$1 addr
	shift
	for addr; do
		in_ns "$ns" ping -c 1 -W 2 "$addr" >/dev/null || fail "$ns cannot reach its neighbour $addr"
	done
}

# The gateway's everyday work on one topology, through whatever interfaces the test built:
# internet host 198.51.100.2 in NS_C, LAN server 10.0.0.12 in NS_S, gateway WAN address
# 198.51.100.1, forwards 203.0.113.1:8080 -> :7000 (tcp) and 203.0.113.1:5353 -> :7001 (udp),
# masquerade of 10.0.0.0/24. Starts the servers (tcpsrv, udpsrv in NS_S; itcp, iudp in NS_C,
# left running for the test), then checks TCP and UDP through the forwards (the server sees the
# client's own address), TCP, UDP and ping through masquerade (seen from the WAN address), both
# TCP flows in `xnat-map conns`, and the connection counts. LABEL names the link in messages.
check_forward_and_masquerade() {
	local label=$1 s
	spawn tcpsrv in_s $PEER tcp-server --port 7000
	spawn udpsrv in_s $PEER udp-server --port 7001
	spawn itcp in_c $PEER tcp-server --port 7100
	spawn iudp in_c $PEER udp-server --port 7101
	for s in tcpsrv udpsrv itcp iudp; do wait_log $s listening; done

	log "port forward over $label: TCP and UDP, the server sees the client's own address"
	in_c $PEER tcp-client --host 203.0.113.1 --port 8080 --bytes 200000 >"$WORK/fwd-tcp.log" 2>&1 ||
		fail "TCP through the forward: $(cat "$WORK/fwd-tcp.log")"
	[ "$(last_peer tcpsrv | cut -d' ' -f1)" = 198.51.100.2 ] || fail "server saw '$(last_peer tcpsrv)', not 198.51.100.2"
	in_c $PEER udp-client --host 203.0.113.1 --port 5353 --count 5 >"$WORK/fwd-udp.log" 2>&1 ||
		fail "UDP through the forward: $(cat "$WORK/fwd-udp.log")"

	log "masquerade over $label: TCP, UDP and ping leave from the WAN address"
	in_s $PEER tcp-client --host 198.51.100.2 --port 7100 --bytes 200000 >"$WORK/masq-tcp.log" 2>&1 ||
		fail "TCP masqueraded: $(cat "$WORK/masq-tcp.log")"
	[ "$(last_peer itcp | cut -d' ' -f1)" = 198.51.100.1 ] || fail "internet host saw '$(last_peer itcp)'"
	in_s $PEER udp-client --host 198.51.100.2 --port 7101 --count 5 >"$WORK/masq-udp.log" 2>&1 ||
		fail "UDP masqueraded: $(cat "$WORK/masq-udp.log")"
	in_s ping -c 2 -W 2 198.51.100.2 >/dev/null || fail "ping from the LAN to the internet over $label"

	log "xnat-map conns lists the flows with their tuples"
	conn_line "$NS_G" "$PIN" "src=198.51.100.2 dst=203.0.113.1" "dport=8080 src=10.0.0.12 dst=198.51.100.2 sport=7000" >/dev/null ||
		fail "no connection line for the TCP forward"
	conn_line "$NS_G" "$PIN" "src=10.0.0.12 dst=198.51.100.2" "dport=7100 src=198.51.100.2 dst=198.51.100.1 sport=7100" >/dev/null ||
		fail "no connection line for the masqueraded TCP flow"
	assert_conn_count "after the flows over $label"
}
