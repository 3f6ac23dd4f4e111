#!/bin/bash
# Re-running xnat-load on the same pin dir applies a new config and new programs in place: an
# open TCP connection keeps working through a config change and a switch from tc to XDP, a bad
# reload changes nothing, and --unload leaves nothing behind.
source "$(dirname "$0")/lib.sh" "$1"

build_topology
offload_in off "$NS_C:eth0" "$NS_S:eth0" # the XDP leg needs whole checksums from the hosts
CONFIG1=$(write_config one.json <<'JSON'
{ "port_forwards": [ { "proto": "tcp", "from": "203.0.113.1:22012", "to": "10.0.0.12:22" } ] }
JSON
)
CONFIG2=$(write_config two.json <<'JSON'
{ "port_forwards": [
    { "proto": "tcp", "from": "203.0.113.1:22012", "to": "10.0.0.12:22" },
    { "proto": "tcp", "from": "203.0.113.1:2222", "to": "10.0.0.12:22" } ],
  "timeouts": { "udp": 120 } }
JSON
)
BAD=$(write_config bad.json <<'JSON'
{ "port_forwards": [ { "proto": "tcp", "from": "203.0.113.1:22012", "to": "10.0.0.12:70000" } ] }
JSON
)
serve tcpsrv "$NS_S" tcp 22
gw_load "$NS_G" "$PIN" --mode tc wan0 lan0 "$CONFIG1" >/dev/null

spawn hold in_ns "$NS_C" $PEER tcp-client --host 203.0.113.1 --port 22012 --bytes 500000 --hold "$WORK/release" --timeout 60
hold_pid=$LAST_PID
wait_log hold "^holding"
flow_before=$(gw_map "$NS_G" "$PIN" conns | cut -d' ' -f1-10)

log "reload with a changed config"
out=$(gw_load "$NS_G" "$PIN" --mode tc wan0 lan0 "$CONFIG2")
printf '%s\n' "$out" | sed 's/^/    /'
grep -qF "reloaded $PIN: 2 rules, 1 connections kept" <<<"$out" || fail "reload report: $out"
[ "$(gw_map "$NS_G" "$PIN" conns | cut -d' ' -f1-10)" = "$flow_before" ] || fail "the connection changed across reload"
in_ns "$NS_C" $PEER tcp-client --host 203.0.113.1 --port 2222 >/dev/null || fail "new rule missing after reload"

# xnat_mapped (the mapped-port reverse map) came after instances were running: one pinned
# without it must still open for xnat-map and reload in place, and the reload pins it.
log "an instance pinned before xnat_mapped existed still opens, and a reload adds the map"
rm "$PIN/xnat_mapped"
gw_map "$NS_G" "$PIN" add tcp 203.0.113.1:2223 10.0.0.12:22 >/dev/null || fail "xnat-map add without xnat_mapped"
gw_map "$NS_G" "$PIN" del tcp 203.0.113.1:2223 >/dev/null || fail "xnat-map del without xnat_mapped"
out=$(gw_load "$NS_G" "$PIN" --mode tc wan0 lan0 "$CONFIG2")
grep -qF "reloaded $PIN: 2 rules," <<<"$out" || fail "reload without xnat_mapped: $out"
[ -e "$PIN/xnat_mapped" ] || fail "the reload left xnat_mapped unpinned"

log "reload switching both interfaces from tc to XDP"
out=$(gw_load "$NS_G" "$PIN" --mode xdp wan0 lan0 "$CONFIG2")
grep -q "^wan wan0: xdp" <<<"$out" || fail "not switched to xdp: $out"
ip -n "$NS_G" link show wan0 | grep -q "xdp" || fail "no XDP program on wan0"
# tc ingress stays as XDP's companion: it finishes what XDP hands over (unresolved next hops).
tc -n "$NS_G" filter show dev wan0 ingress | grep -q "xnat_tc_wan" || fail "tc companion missing on wan0"
redirected=$(gw_counter "$NS_G" "$PIN" redirected)

log "a bad reload is refused and changes nothing"
rules_before=$(gw_map "$NS_G" "$PIN" list)
expect_fail 2 "port_forwards[0].to: port 70000 out of range (1-65535)" gw_load "$NS_G" "$PIN" wan0 lan0 "$BAD"
expect_fail 2 "the instance at $PIN runs on WAN wan0 and LAN lan0" gw_load "$NS_G" "$PIN" lan0 wan0 "$CONFIG2"
LIMITS=$(write_config limits.json <<'JSON'
{ "limits": { "connections": 1000 } }
JSON
)
expect_fail 2 "limits.connections: the running instance was sized for 262144 connections" \
	gw_load "$NS_G" "$PIN" wan0 lan0 "$LIMITS"
MASQ=$(write_config masq.json <<'JSON'
{ "masquerade": [ { "source": "10.0.0.0/24" } ] }
JSON
)
expect_fail 2 "masquerade: the running instance was loaded without masquerade rules" \
	gw_load "$NS_G" "$PIN" wan0 lan0 "$MASQ"
[ "$(gw_map "$NS_G" "$PIN" list)" = "$rules_before" ] || fail "a refused reload altered the rules"
ip -n "$NS_G" link show wan0 | grep -q "xdp" || fail "a refused reload detached XDP"

log "the held connection still carries data, now through XDP"
touch "$WORK/release"
reap hold "$hold_pid"
[ "$(gw_counter "$NS_G" "$PIN" redirected)" -gt "$redirected" ] || fail "XDP did not carry the held connection"

log "unload leaves no program, filter, qdisc or pin behind"
out=$(in_ns "$NS_G" "$XNAT_LOAD" --unload --pin-dir "$PIN")
[ "$out" = "unloaded xnat from wan0 and lan0; removed $PIN" ] || fail "unload said: $out"
[ ! -e "$PIN" ] || fail "pin dir left: $(ls "$PIN")"
# maps.debug and progs.debug are the kernel's own (bpf_preload), present on every new bpffs.
left=$(ls -A "$BPFFS" | grep -vxE 'maps\.debug|progs\.debug' || true)
[ -z "$left" ] || fail "pins left on the bpffs: $left"
for dev in wan0 lan0; do
	ip -n "$NS_G" link show "$dev" | grep -q "xdp" && fail "XDP left on $dev"
	tc -n "$NS_G" qdisc show dev "$dev" | grep -q clsact && fail "clsact left on $dev"
done
if in_ns "$NS_C" $PEER tcp-client --host 203.0.113.1 --port 22012 --timeout 2 >/dev/null 2>&1; then
	fail "forwarding still works after unload"
fi
expect_fail 1 "no xnat instance at $PIN" gw_map "$NS_G" "$PIN" conns
log "PASS reload"
