#!/bin/bash
# 802.1Q sub-interfaces as WAN and LAN: the gateway's WAN is wan0.7 (VLAN 7 on a veth) and its
# LAN lan0.9 (VLAN 9). The hosts sit on tagged interfaces too, so every frame on the veths
# carries a tag. Port forwards (TCP, UDP), masquerade (TCP, UDP, ping) and `xnat-map conns`.
# Then xnat on a parent (lan0, untagged) whose VLAN 9 is not xnat's: the tagged traffic is left to
# the kernel untranslated, although tc on the parent sees it with the tag already taken off.
# Then xnat in XDP mode on both parents, with a QinQ VLAN too. Needs the 8021q module, which this
# machine's own kernel lacks: the kernel matrix runs it on Debian's kernels (tests/kernels/suites.sh), not ctest on the host.
#
#   cli eth0.7 198.51.100.2 ── wan0.7 198.51.100.1, 203.0.113.1/32  gw  lan0.9 10.0.0.1 ── eth0.9 10.0.0.12 srv
source "$(dirname "$0")/lib.sh" "$1"

INET=198.51.100.2
PUB=203.0.113.1
on_fail() { [ -e "$PIN" ] && gw_report "$NS_G" "$PIN"; }

build_preset_namespaces
veth_link "$NS_G" wan0 - "$NS_C" eth0 -
veth_link "$NS_G" lan0 - "$NS_S" eth0 -
# vlan_if NS PARENT ID CIDR: a tagged sub-interface PARENT.ID, addressed and up.
vlan_if() {
	ip -n "$1" link add link "$2" name "$2.$3" type vlan id "$3" ||
		fail "cannot create VLAN $3 on $2: no 802.1Q support in this kernel (modprobe 8021q)"
	ip -n "$1" addr add "$4" dev "$2.$3"
	ip -n "$1" link set "$2.$3" up
}
vlan_if "$NS_C" eth0 7 $INET/24
vlan_if "$NS_G" wan0 7 198.51.100.1/24
vlan_if "$NS_G" lan0 9 10.0.0.1/24
vlan_if "$NS_S" eth0 9 10.0.0.12/24
ip -n "$NS_G" addr add $PUB/32 dev wan0.7
ip -n "$NS_C" route add $PUB/32 via 198.51.100.1
ip -n "$NS_S" route add default via 10.0.0.1

CFG=$(fwd_masq_config vlan.json $PUB 10.0.0.12)

log "--mode auto on VLAN sub-interfaces picks tc"
report=$(gw_load "$NS_G" "$PIN" --mode auto wan0.7 lan0.9 "$CFG")
grep -q "wan0.7.*tc" <<<"$report" || fail "load report does not say tc for wan0.7: $report"
grep -q "lan0.9.*tc" <<<"$report" || fail "load report does not say tc for lan0.9: $report"

check_forward_and_masquerade "VLANs 7 and 9"
[ "$(gw_counter "$NS_G" "$PIN" redirected)" -gt 0 ] || fail "nothing was redirected by xnat"
[ "$(gw_counter "$NS_G" "$PIN" pass_malformed)" -eq 0 ] || fail "pass_malformed is $(gw_counter "$NS_G" "$PIN" pass_malformed)"
assert_no_netfilter_rules_in "$NS_G"

log "xnat on the untagged parent lan0: VLAN 9's traffic on it is not xnat's and is not translated"
gw_load "$NS_G" "$PIN" --unload >/dev/null
ip -n "$NS_G" addr add 10.1.0.1/24 dev lan0
ip -n "$NS_C" route add 10.0.0.0/24 via 198.51.100.1 # VLAN 9 is routed, not masqueraded, now
gw_load "$NS_G" "$PIN" --mode tc wan0.7 lan0 "$CFG" >/dev/null
passed=$(gw_counter "$NS_G" "$PIN" pass_not_ipv4)
in_ns "$NS_S" $PEER tcp-client --host $INET --port 7100 --bytes 100000 >"$WORK/parent.log" 2>&1 ||
	fail "TCP from VLAN 9, routed by the kernel: $(cat "$WORK/parent.log")"
[ "$(last_peer itcp | cut -d' ' -f1)" = 10.0.0.12 ] ||
	fail "internet host saw '$(last_peer itcp)': the parent's program translated VLAN 9's flow"
tracked=$(gw_map "$NS_G" "$PIN" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["connections"])')
[ "$tracked" -eq 0 ] || fail "xnat tracks $tracked flows of VLAN 9"
[ "$(gw_counter "$NS_G" "$PIN" pass_not_ipv4)" -gt "$passed" ] || fail "the tagged frames were not counted pass_not_ipv4"

log "XDP on the parents wan0 and lan0: their own untagged traffic is translated; VLAN 7 and 9"
log "(802.1Q) and a QinQ VLAN (802.1ad 100 carrying 802.1Q 10) are left to the kernel untouched"
gw_load "$NS_G" "$PIN" --unload >/dev/null
# Untagged on the parents: a WAN address for the masquerade and a LAN host that xnat translates.
ip -n "$NS_G" addr add 192.0.2.1/24 dev wan0
ip -n "$NS_C" addr add 192.0.2.2/24 dev eth0
ip -n "$NS_S" addr add 10.1.0.12/24 dev eth0
ip -n "$NS_S" route add 192.0.2.0/24 via 10.1.0.1 dev eth0
# qinq_if NS PARENT CIDR: PARENT.100 (802.1ad) and, on it, PARENT.100.10 (802.1Q), addressed.
qinq_if() {
	ip -n "$1" link add link "$2" name "$2.100" type vlan proto 802.1ad id 100 ||
		fail "cannot create an 802.1ad VLAN on $2"
	ip -n "$1" link add link "$2.100" name "$2.100.10" type vlan id 10
	ip -n "$1" addr add "$3" dev "$2.100.10"
	ip -n "$1" link set "$2.100" up
	ip -n "$1" link set "$2.100.10" up
}
qinq_if "$NS_G" lan0 10.2.0.1/24
qinq_if "$NS_S" eth0 10.2.0.12/24
ip -n "$NS_S" route add $INET/32 via 10.2.0.1 dev eth0.100.10 src 10.2.0.12
ip -n "$NS_C" route add 10.2.0.0/24 via 198.51.100.1
gro_on "$NS_C:eth0" "$NS_S:eth0"
offload_in off "$NS_C:eth0" "$NS_S:eth0"
# Every LAN subnet is one xnat would masquerade, so a tagged flow it mistook for its own would
# reach the internet host from 192.0.2.1 instead of from its own address.
CFG8=$(write_config vlan-parent.json <<JSON
{ "masquerade": [ { "source": "10.0.0.0/8" } ] }
JSON
)
gw_load "$NS_G" "$PIN" --mode xdp wan0 lan0 "$CFG8" >/dev/null
untagged_before=$(gw_counter "$NS_G" "$PIN" redirected)
in_ns "$NS_S" $PEER tcp-client --bind 10.1.0.12 --host 192.0.2.2 --port 7100 --bytes 100000 >"$WORK/xdp-untagged.log" 2>&1 ||
	fail "TCP from the parent's untagged LAN: $(cat "$WORK/xdp-untagged.log")"
[ "$(last_peer itcp | cut -d' ' -f1)" = 192.0.2.1 ] ||
	fail "internet host saw '$(last_peer itcp)' for the untagged flow, not the masquerade address 192.0.2.1"
[ "$(gw_counter "$NS_G" "$PIN" redirected)" -gt "$untagged_before" ] || fail "XDP did not redirect the untagged flow"
for src in 10.0.0.12 10.2.0.12; do
	in_ns "$NS_S" $PEER tcp-client --bind $src --host $INET --port 7100 --bytes 100000 >"$WORK/xdp-tagged.log" 2>&1 ||
		fail "TCP from $src over its VLAN, routed by the kernel: $(cat "$WORK/xdp-tagged.log")"
	[ "$(last_peer itcp | cut -d' ' -f1)" = $src ] ||
		fail "internet host saw '$(last_peer itcp)', not $src: XDP on the parent translated a tagged flow"
	! conn_line "$NS_G" "$PIN" "src=$src" >/dev/null || fail "xnat tracks a flow of the VLAN holding $src"
done
[ "$(gw_counter "$NS_G" "$PIN" pass_malformed)" -eq 0 ] || fail "pass_malformed is $(gw_counter "$NS_G" "$PIN" pass_malformed)"

log "PASS vlan"
