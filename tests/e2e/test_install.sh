#!/bin/bash
# `cmake --install` into a scratch prefix: the tools in sbin (the BPF object in lib/xnat) and their man pages in
# share/man/man8, the example configs and the env file in etc/xnat, the systemd unit in
# lib/systemd/system, with their modes; a reinstall keeps an edited env file; the unit passes
# `systemd-analyze verify`. Then the unit's own command lines, parsed from it with its
# environment substituted, run against a namespace gateway:
# ExecStart loads (and sends READY=1 to NOTIFY_SOCKET) and forwards traffic, ExecReload
# reloads in place keeping a connection, ExecStopPost leaves xnat loaded when the watcher
# crashed and unloads it once the watcher exited 0 on the SIGTERM of a stop.
source "$(dirname "$0")/lib.sh" "$1"

ROOT=$WORK/root
on_fail() { [ -e "$PIN" ] && gw_report "$NS_G" "$PIN"; }

log "cmake --install --prefix $ROOT"
cmake --install "$BUILD_DIR" --prefix "$ROOT" >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; fail "install failed"; }

mode_is() { # PATH MODE
	[ -f "$1" ] || fail "not installed: ${1#"$ROOT"/}"
	[ "$(stat -c %a "$1")" = "$2" ] || fail "${1#"$ROOT"/} has mode $(stat -c %a "$1"), expected $2"
}
tools=0
for tool in "$BUILD_DIR"/xnat-*; do # every tool built at the top level (the bench tools are elsewhere)
	[ -f "$tool" ] && [ -x "$tool" ] || continue
	mode_is "$ROOT/sbin/$(basename "$tool")" 755
	mode_is "$ROOT/share/man/man8/$(basename "$tool").8.gz" 644
	tools=$((tools + 1))
done
[ "$tools" -ge 2 ] || fail "only $tools tools built?"
zcat "$ROOT/share/man/man8/xnat-load.8.gz" | cmp -s - "$(dirname "$0")/../../loader/xnat-load.8" ||
	fail "the installed xnat-load.8.gz is not loader/xnat-load.8"
mode_is "$ROOT/sbin/xnat-load" 755
mode_is "$ROOT/sbin/xnat-map" 755
mode_is "$ROOT/lib/xnat/xnat.bpf.o" 644
cmp -s "$ROOT/lib/xnat/xnat.bpf.o" "$BUILD_DIR/xnat_bpf.bpf.o" || fail "lib/xnat/xnat.bpf.o is not the object built"
examples=0
for cfg in "$E2E_DIR"/../../configs/*.json; do
	mode_is "$ROOT/etc/xnat/$(basename "$cfg")" 644
	cmp -s "$cfg" "$ROOT/etc/xnat/$(basename "$cfg")" || fail "etc/xnat/$(basename "$cfg") differs from the source"
	examples=$((examples + 1))
done
mode_is "$ROOT/etc/xnat/xnat.env" 644
UNIT=$ROOT/lib/systemd/system/xnat.service
mode_is "$UNIT" 644
log "$tools tools in sbin with their man pages, $examples example configs and xnat.env in etc/xnat, xnat.service"
grep -q "^EnvironmentFile=$ROOT/etc/xnat/xnat.env$" "$UNIT" || fail "the unit does not read the installed env file"
grep -q "^ExecStart=$ROOT/sbin/xnat-load --follow-wan " "$UNIT" || fail "the unit does not run the installed xnat-load"
# A bad config (exit 2) is not retried, other failures a bounded number of times, and the
# stop commands (which systemd also runs when the watcher ends on its own) unload only after
# a requested stop or a vanished WAN.
for directive in "Restart=on-failure" "RestartPreventExitStatus=2" "StartLimitIntervalSec=300" "StartLimitBurst=5"; do
	grep -qx "$directive" "$UNIT" || fail "the unit lacks $directive"
done
! grep -q "^ExecStop=" "$UNIT" || fail "the unit has an unconditional ExecStop="
grep -q "^ExecStopPost=.*exited:0|exited:3) exec $ROOT/sbin/xnat-load --unload " "$UNIT" ||
	fail "ExecStopPost does not unload only on exit 0 or 3: $(grep ExecStopPost "$UNIT")"

log "a reinstall keeps an edited env file"
echo "# edited" >>"$ROOT/etc/xnat/xnat.env"
cmake --install "$BUILD_DIR" --prefix "$ROOT" >"$WORK/install2.log" 2>&1 || fail "reinstall failed"
grep -q "^# edited$" "$ROOT/etc/xnat/xnat.env" || fail "reinstall overwrote xnat.env"

PORTMAP_UNIT=$ROOT/lib/systemd/system/xnat-portmapd.service
mode_is "$PORTMAP_UNIT" 644
grep -q "^ExecStart=$ROOT/sbin/xnat-portmapd --pin-dir \${XNAT_PIN_DIR} \${XNAT_CONFIG}$" "$PORTMAP_UNIT" ||
	fail "xnat-portmapd.service does not run the installed daemon on xnat.service's config"
for directive in "BindsTo=xnat.service" "After=xnat.service" "EnvironmentFile=$ROOT/etc/xnat/xnat.env"; do
	grep -qx "$directive" "$PORTMAP_UNIT" || fail "xnat-portmapd.service lacks $directive"
done

if command -v systemd-analyze >/dev/null; then
	log "systemd-analyze verify"
	cp "$ROOT/etc/xnat/demo.json" "$ROOT/etc/xnat/xnat.json"
	out=$(systemd-analyze verify "$UNIT" 2>&1) || fail "systemd-analyze verify: $out"
	! grep -q "xnat.service" <<<"$out" || fail "systemd-analyze verify complained: $out"
	out=$(systemd-analyze verify "$PORTMAP_UNIT" 2>&1) || fail "systemd-analyze verify: $out"
	! grep -q "xnat-portmapd.service" <<<"$out" || fail "systemd-analyze verify complained: $out"
else
	log "systemd-analyze not installed: unit verification skipped"
fi

log "the unit's command lines, on a namespace gateway"
build_topology
CFG=$(write_config svc.json <<'JSON'
{ "port_forwards": [ { "proto": "tcp", "from": "203.0.113.1:8022", "to": "10.0.0.12:7000" } ],
  "masquerade": [ { "source": "10.0.0.0/24" } ] }
JSON
)
cat >"$ROOT/etc/xnat/xnat.env" <<EOF
XNAT_WAN=wan0
XNAT_LAN=lan0
XNAT_CONFIG=$CFG
XNAT_PIN_DIR=$PIN
EOF

# Prints the unit's KEY= command line as NUL-separated words: Environment= first, then the
# EnvironmentFile, then ${VAR} and $VAR replaced as systemd does ($VAR as whole words only),
# quotes split as systemd does, and $$ left to the command as $.
unit_command() {
	python3 - "$UNIT" "$1" <<'PY'
import re, shlex, sys
unit, key = sys.argv[1], sys.argv[2]
env, cmd = {}, None
def assign(text):
    for word in shlex.split(text, comments=True):
        if "=" in word:
            k, v = word.split("=", 1)
            env[k] = v
for line in open(unit):
    line = line.strip()
    if line.startswith("Environment="):
        assign(line[len("Environment="):])
    elif line.startswith("EnvironmentFile="):
        assign(open(line[len("EnvironmentFile="):].lstrip("-")).read())
    elif line.startswith(key + "="):
        cmd = line[len(key) + 1:]
if cmd is None:
    sys.exit(f"no {key}= in {unit}")
words = []
for w in shlex.split(cmd):
    m = re.fullmatch(r"\$\{(\w+)\}", w)
    if m:
        words.append(env[m.group(1)])  # one word, even if empty
        continue
    m = re.fullmatch(r"\$(\w+)", w)
    if m:
        words.extend(env.get(m.group(1), "").split())  # split, may vanish
        continue
    words.append("$".join(re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], part) for part in w.split("$$")))
sys.stdout.write("\0".join(words))
PY
}
run_unit() { # KEY [in the background as NAME]
	local key=$1 words=()
	mapfile -d '' words < <(unit_command "$key")
	[ "${#words[@]}" -gt 0 ] || fail "cannot parse $key"
	log "$key: ${words[*]}" >&2
	in_ns "$NS_G" "${words[@]}"
}

# systemd's notify socket, played by a datagram socket that logs what it receives.
spawn notify python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
print(s.recv(4096).decode(), flush=True)' "$WORK/notify.sock"
wait_log notify bound
export NOTIFY_SOCKET=$WORK/notify.sock
mapfile -d '' START < <(unit_command ExecStart)
log "ExecStart: ${START[*]}"
spawn start ip netns exec "$NS_G" "${START[@]}"
MAIN=$LAST_PID
unset NOTIFY_SOCKET
# Loading verifies the whole object first, seconds on a loaded 2-vCPU machine: a run beside a
# build failed with the pins half made, so this waits longer than lib.sh's default 10 s.
wait_log notify "^READY=1$" 600
wait_log start "^following wan0: address 198.51.100.1, 1 masquerade rule$"
grep -q "^loaded 1 rule, 1 masquerade; pinned at $PIN$" "$WORK/start.log" || fail "ExecStart did not load: $(cat "$WORK/start.log")"

serve tcpsrv "$NS_S" tcp 7000
spawn held in_ns "$NS_C" $PEER tcp-client --host 203.0.113.1 --port 8022 --timeout 20 --hold "$WORK/release"
HELD=$LAST_PID
wait_log held "^holding"

run_unit ExecReload >"$WORK/reload.log" 2>&1 || fail "ExecReload failed: $(cat "$WORK/reload.log")"
grep -q "^reloaded $PIN: 1 rule, 1 masquerade, 1 connections kept$" "$WORK/reload.log" ||
	fail "ExecReload did not reload in place: $(cat "$WORK/reload.log")"
touch "$WORK/release"
reap held "$HELD"
grep -q "ok tcp after hold" "$WORK/held.log" || fail "the connection did not survive the reload"

# systemd passes how the main process ended in EXIT_CODE and EXIT_STATUS.
stop_post() { EXIT_CODE=$1 EXIT_STATUS=$2 run_unit ExecStopPost; }
stop_post killed SEGV >"$WORK/crash.log" 2>&1 || fail "ExecStopPost after a crash failed: $(cat "$WORK/crash.log")"
grep -q "^xnat stays loaded (the watcher ended: killed SEGV)$" "$WORK/crash.log" || fail "ExecStopPost after a crash: $(cat "$WORK/crash.log")"
in_ns "$NS_G" "$XNAT_MAP" --pin-dir "$PIN" list >/dev/null || fail "ExecStopPost unloaded xnat after a crash"
stop_post exited 1 >"$WORK/fail.log" 2>&1 || fail "ExecStopPost after exit 1 failed"
in_ns "$NS_G" "$XNAT_MAP" --pin-dir "$PIN" list >/dev/null || fail "ExecStopPost unloaded xnat after an exit 1"

kill -TERM "$MAIN"
rc=0
wait "$MAIN" || rc=$?
[ "$rc" -eq 0 ] || fail "the ExecStart process exited $rc on SIGTERM"
stop_post exited "$rc" >"$WORK/stop.log" 2>&1 || fail "ExecStopPost failed: $(cat "$WORK/stop.log")"
grep -q "^unloaded xnat from wan0 and lan0; removed $PIN$" "$WORK/stop.log" || fail "ExecStopPost: $(cat "$WORK/stop.log")"
[ ! -e "$PIN" ] || fail "pins left after ExecStopPost"
[ -z "$(in_ns "$NS_G" tc filter show dev wan0 ingress)" ] || fail "tc filters left on wan0"
assert_no_netfilter_rules_in "$NS_G"
log "PASS install"
