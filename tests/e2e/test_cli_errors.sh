#!/bin/bash
# Bad arguments, bad configs, missing interfaces, a missing instance and missing privilege:
# one clear line naming the culprit, the documented exit code, and nothing created.
source "$(dirname "$0")/lib.sh" "$1"

build_topology
chmod 755 "$WORK"
GOOD=$(write_config good.json <<'JSON'
{ "port_forwards": [ { "proto": "tcp", "from": "203.0.113.1:22012", "to": "10.0.0.12:22" } ] }
JSON
)
chmod 644 "$GOOD"
cfg() { write_config "$1" >/dev/null; echo "$WORK/$1"; }

log "configs"
expect_fail 2 "port_forwards[0].from: port 70000 out of range (1-65535)" gw_load "$NS_G" "$PIN" wan0 lan0 "$(cfg a.json <<<'{"port_forwards":[{"proto":"tcp","from":"203.0.113.1:70000","to":"10.0.0.12:22"}]}')"
expect_fail 2 "parse error at line 1" gw_load "$NS_G" "$PIN" wan0 lan0 "$(cfg b.json <<<'{"port_forwards": [ }')"
expect_fail 2 'unknown key "port_forward"' gw_load "$NS_G" "$PIN" wan0 lan0 "$(cfg c.json <<<'{"port_forward": []}')"
expect_fail 2 'port_forwards[0].proto: expected a string, got a number' gw_load "$NS_G" "$PIN" wan0 lan0 "$(cfg d.json <<<'{"port_forwards":[{"proto":6,"from":"203.0.113.1:1","to":"10.0.0.12:1"}]}')"
expect_fail 2 "port_forwards[1]: overlaps port_forwards[0] at tcp 203.0.113.1:22012 on wan" gw_load "$NS_G" "$PIN" wan0 lan0 "$(cfg e.json <<<'{"port_forwards":[{"proto":"tcp","from":"203.0.113.1:22000-22100","to":"10.0.0.12:22000"},{"proto":"tcp","from":"203.0.113.1:22012","to":"10.0.0.13:22"}]}')"
expect_fail 2 "port_forwards[0].from names 10 address:port pairs but port_forwards[0].to names 3" gw_load "$NS_G" "$PIN" wan0 lan0 "$(cfg f.json <<<'{"port_forwards":[{"proto":"udp","from":"203.0.113.1:6000-6009","to":"10.0.0.12:1-3"}]}')"
expect_fail 2 'duplicate key "to"' gw_load "$NS_G" "$PIN" wan0 lan0 "$(cfg g.json <<<'{"port_forwards":[{"proto":"tcp","from":"203.0.113.1:1","to":"10.0.0.12:1","to":"10.0.0.13:1"}]}')"
expect_fail 2 "timeouts.udp: expected a whole number of at least 1, got a negative number" gw_load "$NS_G" "$PIN" wan0 lan0 "$(cfg h.json <<<'{"timeouts":{"udp":-5}}')"
expect_fail 2 "cannot open $WORK/missing.json" gw_load "$NS_G" "$PIN" wan0 lan0 "$WORK/missing.json"
[ ! -e "$PIN" ] || fail "a refused load created $PIN"

log "interfaces and arguments"
expect_fail 2 'WAN_IF: no interface named "nope0" in this network namespace' gw_load "$NS_G" "$PIN" nope0 lan0 "$GOOD"
expect_fail 2 'LAN_IF: no interface named "nope1" in this network namespace' gw_load "$NS_G" "$PIN" wan0 nope1 "$GOOD"
expect_fail 2 "WAN_IF and LAN_IF must be two different interfaces" gw_load "$NS_G" "$PIN" wan0 wan0 "$GOOD"
expect_fail 2 '--mode: must be auto, xdp or tc, got "fast"' gw_load "$NS_G" "$PIN" --mode fast wan0 lan0 "$GOOD"
expect_fail 2 "expected WAN_IF LAN_IF CONFIG.json" gw_load "$NS_G" "$PIN" wan0
expect_fail 2 "--pin-dir must be an absolute path" in_ns "$NS_G" "$XNAT_LOAD" --pin-dir rel/dir wan0 lan0 "$GOOD"
expect_fail 2 "is not on a bpffs" in_ns "$NS_G" "$XNAT_LOAD" --pin-dir "$WORK" wan0 lan0 "$GOOD"
expect_fail 2 "ip netns exec remounts /sys" in_ns "$NS_G" "$XNAT_LOAD" wan0 lan0 "$GOOD"
expect_fail 2 "A subcommand is required" gw_map "$NS_G" "$PIN"
expect_fail 2 "see xnat-map --help" gw_map "$NS_G" "$PIN" conns --bogus
[ ! -e "$PIN" ] || fail "a refused load created $PIN"

log "--check validates without touching the kernel"
[ "$(gw_load "$NS_G" "$PIN" --check "$GOOD")" = "$GOOD: ok (1 port forwards)" ] || fail "--check of a good config"
expect_fail 2 "port_forwards[0].from: port 70000" gw_load "$NS_G" "$PIN" --check "$WORK/a.json"
"$XNAT_LOAD" --help | grep -q -- "--unload" || fail "--help lacks --unload"
"$XNAT_MAP" --help | grep -q "conns" || fail "xnat-map --help lacks conns"
"$XNAT_LOAD" --version | grep -qE "^[0-9]+\.[0-9]+\.[0-9]+$" || fail "--version"

log "no instance, and no privilege"
expect_fail 1 "no xnat instance at $PIN (start one with xnat-load)" gw_map "$NS_G" "$PIN" conns
expect_fail 1 "no xnat instance at $PIN" in_ns "$NS_G" "$XNAT_LOAD" --unload --pin-dir "$PIN"
nobody() { in_ns "$NS_G" setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
expect_fail 1 "must be run as root to load xnat" nobody "$XNAT_LOAD" --pin-dir "$PIN" wan0 lan0 "$GOOD"
gw_load "$NS_G" "$PIN" wan0 lan0 "$GOOD" >/dev/null
expect_fail 1 "must be run as root to use xnat-map" nobody "$XNAT_MAP" --pin-dir "$PIN" conns
expect_fail 1 "must be run as root to change rules" nobody "$XNAT_MAP" --pin-dir "$PIN" add tcp 203.0.113.1:1 10.0.0.12:1
expect_fail 1 "must be run as root to unload xnat" nobody "$XNAT_LOAD" --unload --pin-dir "$PIN"
[ "$(stat -c %a "$PIN")" = 700 ] || fail "pin dir is not root-only"
[ "$(stat -c %a "$PIN/xnat_ct")" = 600 ] || fail "pinned maps are not root-only"
log "PASS cli errors"
