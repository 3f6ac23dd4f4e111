#!/bin/bash
# Misuse of a running or broken instance: no instance, a half-removed pin directory, an
# instance whose interfaces are gone, a user without privilege, and bad configs thrown at a
# running instance. Each gets one clear line and a non-zero exit, changes nothing, and what is
# left can always be unloaded. Pins stay root-only whatever the umask or a pre-made directory.
source "$(dirname "$0")/lib.sh" "$1"

build_topology
chmod 755 "$WORK"
GOOD=$(write_config good.json <<'JSON'
{ "port_forwards": [ { "proto": "tcp", "from": "203.0.113.1:22012", "to": "10.0.0.12:22" } ] }
JSON
)
chmod 644 "$GOOD"
nobody() { in_ns "$NS_G" setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
attached() { # prints what xnat has on the gateway's interfaces
	in_ns "$NS_G" sh -c 'for d in wan0 lan0; do tc filter show dev $d ingress; tc filter show dev $d egress; ip -d link show $d | grep -o "prog/xdp"; done' 2>/dev/null || true
}

log "every subcommand against a missing instance"
for cmd in conns stats list flush "del tcp 203.0.113.1:22012" "add tcp 203.0.113.1:1 10.0.0.12:1"; do
	# shellcheck disable=SC2086
	expect_fail 1 "no xnat instance at $PIN (start one with xnat-load)" gw_map "$NS_G" "$PIN" $cmd
done
[ ! -e "$PIN" ] || fail "xnat-map created $PIN"

log "pins are root-only, whatever the umask, even in a directory made beforehand"
mkdir -m 755 "$PIN"
(umask 000 && gw_load "$NS_G" "$PIN" wan0 lan0 "$GOOD" >/dev/null)
[ "$(stat -c %a "$PIN")" = 700 ] || fail "pin dir is $(stat -c %a "$PIN"), not 700"
for f in "$PIN"/*; do
	[ "$(stat -c %a "$f")" = 600 ] || fail "pin $f is $(stat -c %a "$f"), not 600"
	[ "$(stat -c %u "$f")" = 0 ] || fail "pin $f is not root's"
done
[ "$(find "$PIN" -mindepth 1 | wc -l)" -ge 12 ] || fail "fewer pins than expected: $(ls "$PIN")"

log "no privilege: every command names it, --check needs none"
expect_fail 1 "must be run as root to use xnat-map" nobody "$XNAT_MAP" --pin-dir "$PIN" stats
expect_fail 1 "must be run as root to use xnat-map" nobody "$XNAT_MAP" --pin-dir "$PIN" list
expect_fail 1 "must be run as root to change rules" nobody "$XNAT_MAP" --pin-dir "$PIN" del tcp 203.0.113.1:22012
expect_fail 1 "(xnat needs CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN)" nobody "$XNAT_MAP" --pin-dir "$PIN" flush
expect_fail 1 "must be run as root to load xnat" nobody "$XNAT_LOAD" --pin-dir "$PIN" wan0 lan0 "$GOOD"
[ "$(nobody "$XNAT_LOAD" --check "$GOOD")" = "$GOOD: ok (1 port forwards)" ] || fail "--check as nobody"
# Root-only pins: nobody cannot even see them.
nobody ls "$PIN" >/dev/null 2>&1 && fail "nobody can list the pin dir"
nobody cat "$PIN/xnat_config" >/dev/null 2>&1 && fail "nobody can open a pin"

log "bad configs against the running instance change nothing"
before_rules=$(gw_map "$NS_G" "$PIN" list --json)
before_cfg=$(gw_map "$NS_G" "$PIN" stats --json | python3 -c 'import json,sys; d=json.load(sys.stdin); d.pop("counters",None); print(sorted(d))')
giant=$WORK/giant.json
printf '{"port_forwards":[' >"$giant" && truncate -s 50M "$giant"
deep=$WORK/deep.json
python3 -c 'print("[" * 100000)' >"$deep"
many=$WORK/many.json
python3 -c 'print("{\"port_forwards\":[" + ",".join(["{}"] * 2000000) + "]}")' >"$many"
newline=$WORK/newline.json
printf '{"port_forwards":[{"proto":"tcp\\nrm -rf /","from":"203.0.113.1:1","to":"10.0.0.12:1"}]}' >"$newline"
expect_fail 2 "$giant: larger than 16 MiB" gw_load "$NS_G" "$PIN" wan0 lan0 "$giant"
expect_fail 2 "nested deeper than 32 levels" gw_load "$NS_G" "$PIN" wan0 lan0 "$deep"
expect_fail 2 "port_forwards: 2000000 rules, at most 4096" timeout 20 "$XNAT_LOAD" --check "$many"
expect_fail 2 'got "tcp\nrm -rf /"' gw_load "$NS_G" "$PIN" wan0 lan0 "$newline"
expect_fail 2 'port_forwards[0].to: bad port "-1"' gw_load "$NS_G" "$PIN" wan0 lan0 "$(write_config neg.json <<<'{"port_forwards":[{"proto":"tcp","from":"203.0.113.1:1","to":"10.0.0.12:-1"}]}')"
[ "$(gw_map "$NS_G" "$PIN" list --json)" = "$before_rules" ] || fail "a refused config changed the rules"
[ "$(gw_map "$NS_G" "$PIN" stats --json | python3 -c 'import json,sys; d=json.load(sys.stdin); d.pop("counters",None); print(sorted(d))')" = "$before_cfg" ] ||
	fail "a refused config changed the instance"

log "a half-removed pin dir: explained, and still unloadable"
rm "$PIN/xnat_ct"
expect_fail 1 "instance at $PIN is incomplete or stale" gw_map "$NS_G" "$PIN" conns
expect_fail 1 "instance at $PIN is incomplete or stale" gw_map "$NS_G" "$PIN" add tcp 203.0.113.1:2 10.0.0.12:2
gw_load "$NS_G" "$PIN" --unload >/dev/null || fail "a half-removed instance could not be unloaded"
[ ! -e "$PIN" ] || fail "unload left $PIN: $(ls "$PIN")"
[ -z "$(attached)" ] || fail "unload left programs attached: $(attached)"

log "pins without their config: explained, and never taken up by a new load"
gw_load "$NS_G" "$PIN" wan0 lan0 "$GOOD" >/dev/null
rm "$PIN/xnat_config"
expect_fail 1 "pins of an xnat instance but not its xnat_config" gw_map "$NS_G" "$PIN" conns
expect_fail 1 "rm -r $PIN" in_ns "$NS_G" "$XNAT_LOAD" --unload --pin-dir "$PIN"
expect_fail 1 "pins of an xnat instance but not its xnat_config" gw_load "$NS_G" "$PIN" wan0 lan0 "$GOOD"
# What the message says to do works.
rm -r "$PIN"
for d in wan0 lan0; do
	for point in ingress egress; do in_ns "$NS_G" tc filter del dev $d $point pref 672 2>/dev/null || true; done
done
[ -z "$(attached)" ] || fail "the advice left programs attached: $(attached)"
gw_load "$NS_G" "$PIN" wan0 lan0 "$GOOD" >/dev/null || fail "no fresh load after cleaning up"
gw_map "$NS_G" "$PIN" list | grep -q "203.0.113.1:22012" || fail "fresh load lacks its rule"

log "an instance whose interface is gone: explained, and unloadable"
ip -n "$NS_G" link del lan0
expect_fail 1 "instance at $PIN is stale: its LAN interface lan0 no longer exists" gw_map "$NS_G" "$PIN" stats
expect_fail 1 "xnat-load --unload --pin-dir $PIN" gw_map "$NS_G" "$PIN" add tcp 203.0.113.1:3 10.0.0.12:3
gw_load "$NS_G" "$PIN" --unload >/dev/null || fail "a stale instance could not be unloaded"
[ ! -e "$PIN" ] || fail "unload left $PIN"
expect_fail 1 "no xnat instance at $PIN" gw_map "$NS_G" "$PIN" conns
log "PASS misuse"
