# Shared by the end-to-end tests and the scripts: throwaway networks of namespaces, built from
# parts (ns_create, veth_link, switch_create, ...), with presets for the common shapes
# (build_topology, build_seed_topology).
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
WORK=$(mktemp -d /tmp/xnat-e2e.XXXXXX)
BPFFS=$WORK/bpffs
BG_PIDS=()

# The three-namespace preset (build_topology); tests of one gateway build their own shapes
# around its NS_G and PIN too.
NS_C=${TAG}cli
NS_G=${TAG}gw
NS_S=${TAG}srv
PIN=$BPFFS/xnat
# xnat instances ("NS PIN") unloaded on exit: those gw_load loaded, and NS_G's at PIN whoever
# loaded it (xnat-load --follow-wan, the systemd unit's commands).
XNAT_INSTANCES=("$NS_G $PIN")

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
	# A spawned shell function (in_ns ...) runs in a subshell whose child is the real process:
	# killing the subshell alone would leave that child running forever.
	for pid in "${BG_PIDS[@]}"; do
		pkill -P "$pid" 2>/dev/null
		kill "$pid" 2>/dev/null
	done
	wait 2>/dev/null
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

# serve NAME NS tcp|udp PORT [NAME NS tcp|udp PORT]...: peer servers, each spawned as NAME;
# returns once every one listens.
serve() {
	local names=() name
	while [ $# -gt 0 ]; do
		spawn "$1" in_ns "$2" $PEER "$3-server" --port "$4"
		names+=("$1")
		shift 4
	done
	for name in "${names[@]}"; do wait_log "$name" listening; done
}

# expect_watcher_exit PID CODE SECONDS WHY: the spawned xnat-load --follow-wan PID must end within
# SECONDS with status CODE; WHY (what ended it) for the messages.
expect_watcher_exit() {
	local pid=$1 code=$2 seconds=$3 why=$4 rc=0
	timeout "$seconds" tail --pid="$pid" -f /dev/null || fail "the watcher still runs after $why"
	wait "$pid" || rc=$?
	[ "$rc" -eq "$code" ] || fail "watcher exited $rc after $why, expected $code"
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

# hold_tcp NAME TRIES NS TCP_CLIENT_ARGS...: a peer tcp-client, spawned as NAME in NS, that holds
# its connection open (--hold FILE among the arguments: until FILE exists); returns once it
# holds, having waited up to TRIES tenths of a second. Its pid is left in LAST_PID, its local
# port in HELD_PORT.
hold_tcp() {
	local name=$1 tries=$2 ns=$3
	shift 3
	spawn "$name" in_ns "$ns" $PEER tcp-client "$@"
	wait_log "$name" "^holding" "$tries"
	HELD_PORT=$(client_port "$name")
}

# assert_conn_count NS PIN LABEL: the number of connections of that instance, counted without
# and with a walk of the table, which must agree while no flow is being made or ended. Without a
# walk (O(1)): `stats --json` and the `xnat_connections_tracked` series of `stats --prometheus`
# (the exporter's scrape), both new_flow - flow_ended from the counters (every flow counted once
# made and once ended, whichever path ends it: sweeper, lookup, early drop, flush). With a walk:
# the flows `conns --json` lists, the per-state series of `stats --prometheus --per-state`
# summed, and the table's entries that scrape counts (two a flow). Leaves the count in
# CONN_COUNT (not printed: a failure inside $(...) would not end the test).
assert_conn_count() {
	local ns=$1 pin=$2 label=$3 stats created ended listed tracked per_state entries
	read -r stats created ended < <(gw_map "$ns" "$pin" stats --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(s["connections"], s["counters"]["new_flow"], s["counters"]["flow_ended"])')
	listed=$(gw_map "$ns" "$pin" conns --json | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")
	tracked=$(gw_map "$ns" "$pin" stats --prometheus | awk '$1 == "xnat_connections_tracked" { print $2 }')
	read -r per_state entries < <(gw_map "$ns" "$pin" stats --prometheus --per-state | awk '
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
# The parts: any number of namespaces (named $TAG..., so cleanup removes them), veth links, a
# bridge as a LAN switch, and any number of xnat instances.

in_ns() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# A bpffs for the pins, which every process of the test sees (`ip netns exec` remounts /sys,
# hiding /sys/fs/bpf); mounted once however many builders ask for it.
ensure_bpffs() {
	mountpoint -q "$BPFFS" 2>/dev/null && return 0
	mkdir -p "$BPFFS"
	mount -t bpf bpf "$BPFFS"
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
	ip link add "$if_a" netns "$ns_a" type veth peer name "$if_b" netns "$ns_b"
	ip -n "$ns_a" link set "$if_a" up
	ip -n "$ns_b" link set "$if_b" up
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

# offload_in STATE NS:IF...: TX checksum offload on the named interfaces: "on" (veth's default:
# local packets leave with only the pseudo-header sum) or "off" (full checksums in every packet).
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

# load_in_mode NS PIN MODE CONFIG SIDE...: xnat-load --mode MODE wan0 lan0 CONFIG in gateway NS,
# whose report must say each SIDE (wan, lan) runs MODE, or tc for auto (veth: locally made
# traffic needs the tc path). The report is left in LOADED.
load_in_mode() {
	local ns=$1 pin=$2 mode=$3 config=$4 want=$3 side
	shift 4
	[ "$mode" = auto ] && want=tc
	# Not in $(...): gw_load must remember the instance in this shell, for cleanup.
	gw_load "$ns" "$pin" --mode "$mode" wan0 lan0 "$config" >"$WORK/loaded"
	LOADED=$(cat "$WORK/loaded")
	for side; do
		grep -q "^$side ${side}0: $want (" <<<"$LOADED" || fail "$side mode is not $want: $LOADED"
	done
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

# assert_no_netfilter_rules_in NS...: the gateways must do their job with xnat alone.
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
# The three-namespace preset:
#
#   client ns             gateway ns                       server ns
#   eth0 198.51.100.2 --- wan0 198.51.100.1
#                         (203.0.113.1/32, the public address)
#                         lan0 10.0.0.1 ------------------ eth0 10.0.0.12
#
# The gateway's instance, if the test loads one, is at PIN.
build_topology() {
	build_preset_namespaces
	veth_link "$NS_G" wan0 198.51.100.1/24 "$NS_C" eth0 198.51.100.2/24
	veth_link "$NS_G" lan0 10.0.0.1/24 "$NS_S" eth0 10.0.0.12/24
	ip -n "$NS_G" addr add 203.0.113.1/32 dev wan0
	ip -n "$NS_C" route add 203.0.113.0/24 via 198.51.100.1
	ip -n "$NS_S" route add default via 10.0.0.1
	# XDP frames redirected into a veth are delivered only if the peer runs XDP or GRO.
	gro_on "$NS_C:eth0" "$NS_S:eth0"
}

# The preset's namespaces, not linked yet: for tests that join them their own way (a tun, VLANs).
build_preset_namespaces() {
	ensure_bpffs
	ns_create "$NS_C" "$NS_G" "$NS_S"
	ns_forwarding "$NS_G"
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

# fwd_masq_config NAME FROM SERVER [MASQ_MEMBERS]: writes the config check_forward_and_masquerade
# expects and prints its path: forwards FROM:8080 -> SERVER:7000 (tcp) and FROM:5353 ->
# SERVER:7001 (udp), masquerade of 10.0.0.0/24 (MASQ_MEMBERS: more JSON members for it).
fwd_masq_config() {
	local name=$1 from=$2 server=$3 more=${4:+, $4}
	write_config "$name" <<JSON
{ "port_forwards": [ { "proto": "tcp", "from": "$from:8080", "to": "$server:7000" },
                     { "proto": "udp", "from": "$from:5353", "to": "$server:7001" } ],
  "masquerade": [ { "source": "10.0.0.0/24"$more } ] }
JSON
}

# through TAG WHAT NS HOST TCP_PORT UDP_PORT SERVER SEEN: from NS, 200000 bytes of TCP to
# HOST:TCP_PORT and 5 UDP datagrams to HOST:UDP_PORT must get through, and the TCP server spawned
# as SERVER must have seen the connection come from SEEN. WHAT says how in messages ("TCP WHAT");
# TAG names the clients' logs.
through() {
	local tag=$1 what=$2 ns=$3 host=$4 tcp_port=$5 udp_port=$6 server=$7 seen=$8
	in_ns "$ns" $PEER tcp-client --host "$host" --port "$tcp_port" --bytes 200000 >"$WORK/$tag-tcp.log" 2>&1 ||
		fail "TCP $what: $(cat "$WORK/$tag-tcp.log")"
	[ "$(last_peer "$server" | cut -d' ' -f1)" = "$seen" ] || fail "$server saw '$(last_peer "$server")', not $seen"
	in_ns "$ns" $PEER udp-client --host "$host" --port "$udp_port" --count 5 >"$WORK/$tag-udp.log" 2>&1 ||
		fail "UDP $what: $(cat "$WORK/$tag-udp.log")"
}

# assert_fwd_and_masq_conns NS PIN CLIENT PUBLIC SERVER WAN: conns lists the TCP forward (CLIENT
# to PUBLIC:8080, on to SERVER:7000) and the masqueraded TCP flow (SERVER to CLIENT:7100,
# leaving from WAN), the two of check_forward_and_masquerade's layout.
assert_fwd_and_masq_conns() {
	local ns=$1 pin=$2 client=$3 public=$4 server=$5 wan=$6
	conn_line "$ns" "$pin" "src=$client dst=$public" "dport=8080 src=$server dst=$client sport=7000" >/dev/null ||
		fail "no connection line for the TCP forward to $public:8080"
	conn_line "$ns" "$pin" "src=$server dst=$client" "dport=7100 src=$client dst=$wan sport=7100" >/dev/null ||
		fail "no connection line for the masqueraded TCP flow from $wan"
}

# The gateway's everyday work on the preset's addresses, through whatever interfaces the test
# built: internet host 198.51.100.2 in NS_C, LAN server 10.0.0.12 in NS_S, gateway NS_G (its
# instance at PIN) with WAN address 198.51.100.1, forwards 203.0.113.1:8080 -> :7000 (tcp) and
# 203.0.113.1:5353 -> :7001 (udp), masquerade of 10.0.0.0/24. Starts the servers (tcpsrv, udpsrv
# in NS_S; itcp, iudp in NS_C, left running for the test), then checks TCP and UDP through the
# forwards (the server sees the client's own address), TCP, UDP and ping through masquerade
# (seen from the WAN address), both TCP flows in `xnat-map conns`, and the connection counts.
# LABEL names the link in messages.
check_forward_and_masquerade() {
	local label=$1
	serve tcpsrv "$NS_S" tcp 7000 udpsrv "$NS_S" udp 7001 itcp "$NS_C" tcp 7100 iudp "$NS_C" udp 7101

	log "port forward over $label: TCP and UDP, the server sees the client's own address"
	through fwd "through the forward" "$NS_C" 203.0.113.1 8080 5353 tcpsrv 198.51.100.2

	log "masquerade over $label: TCP, UDP and ping leave from the WAN address"
	through masq masqueraded "$NS_S" 198.51.100.2 7100 7101 itcp 198.51.100.1
	in_ns "$NS_S" ping -c 2 -W 2 198.51.100.2 >/dev/null || fail "ping from the LAN to the internet over $label"

	log "xnat-map conns lists the flows with their tuples"
	assert_fwd_and_masq_conns "$NS_G" "$PIN" 198.51.100.2 203.0.113.1 10.0.0.12 198.51.100.1
	assert_conn_count "$NS_G" "$PIN" "after the flows over $label"
}
