#!/bin/bash
# The documented exit codes (docs/CLI.md, "Exit codes": 0 done, 1 the kernel or system refused,
# 2 bad argument or config), one representative case each for every tool; --help of every
# command and subcommand exits 0 and gives every option a description, and the CLI reference
# (docs/CLI.md) names every option; and xnat-load --check never touches the kernel: it works as
# nobody, with no bpffs.
source "$(dirname "$0")/lib.sh" "$1"

CLI_DOC=$E2E_DIR/../../docs/CLI.md
chmod 755 "$WORK"
GOOD=$(write_config good.json <<'JSON'
{ "port_forwards": [ { "proto": "tcp", "from": "203.0.113.1:22012", "to": "10.0.0.12:22" } ],
  "masquerade": [ { "source": "10.0.0.0/24" } ] }
JSON
)
BAD=$(write_config bad.json <<<'{"port_forwards":[{"proto":"tcp","from":"203.0.113.1:70000","to":"10.0.0.12:22"}]}')
chmod 644 "$GOOD" "$BAD"

# exits CODE CMD...: CMD must exit with CODE.
exits() {
	local code=$1 rc=0
	shift
	"$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
	[ "$rc" -eq "$code" ] || fail "'$*' exited $rc, expected $code: $(cat "$WORK/err")"
}
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

log "--check never touches the kernel: as nobody, in a namespace with no bpffs at all"
ns_create "$NS_G"
in_ns "$NS_G" unshare --mount sh -c 'umount -l /sys/fs/bpf 2>/dev/null; ! mountpoint -q /sys/fs/bpf &&
	exec setpriv --reuid=65534 --regid=65534 --clear-groups "$0" --check "$1"' "$XNAT_LOAD" "$GOOD" >"$WORK/check.out" 2>&1 ||
	fail "--check as nobody without a bpffs: $(cat "$WORK/check.out")"
[ "$(cat "$WORK/check.out")" = "$GOOD: ok (1 port forwards)" ] || fail "--check said: $(cat "$WORK/check.out")"
exits 2 nobody "$XNAT_LOAD" --check "$BAD"
grep -q "port_forwards\[0\].from: port 70000" "$WORK/err" || fail "--check of a bad config: $(cat "$WORK/err")"

log "exit 0: done"
exits 0 "$XNAT_LOAD" --check "$GOOD"
exits 0 "$XNAT_LOAD" --version
exits 0 "$XNAT_MAP" --version

log "exit 2: bad argument or config"
exits 2 "$XNAT_LOAD" --check "$BAD"
exits 2 "$XNAT_LOAD" --bogus
exits 2 "$XNAT_LOAD" wan0
exits 2 "$XNAT_LOAD" --follow-wan --unload
exits 2 "$XNAT_LOAD" --mode fast wan0 lan0 "$GOOD"
exits 2 in_ns "$NS_G" "$XNAT_LOAD" --pin-dir /sys/fs/bpf/x wan0 lan0 "$GOOD" # no such interfaces
exits 2 "$XNAT_MAP"
exits 2 "$XNAT_MAP" add tcp 203.0.113.1:99999 10.0.0.12:22
exits 2 "$XNAT_MAP" conns --bogus

log "exit 1: the kernel or the system refused"
ensure_bpffs
exits 1 "$XNAT_MAP" --pin-dir "$PIN" conns # no instance
exits 1 "$XNAT_LOAD" --unload --pin-dir "$PIN"
exits 1 nobody "$XNAT_MAP" --pin-dir "$PIN" stats
exits 1 nobody "$XNAT_LOAD" --unload --pin-dir "$PIN"

# Both are always built (CMakeLists.txt): a missing one is a broken build, not a skip.
for tool in import exporter; do
	bin=$BUILD_DIR/xnat-$tool
	[ -x "$bin" ] || fail "xnat-$tool is not built in $BUILD_DIR"
	exits 0 "$bin" --version
	exits 2 "$bin" --bogus
done
exits 2 "$BUILD_DIR/xnat-import" "$WORK/missing-rules.txt"

log "--help: exit 0, every option described and named in docs/CLI.md, for every command"
# check_help NAME CMD...: the help of CMD.
check_help() {
	local name=$1 opts opt n=0
	shift
	"$@" --help >"$WORK/help" 2>&1 || fail "$name --help exited non-zero"
	# Option lines: "  -x,--long TYPE  description"; a long default may push the description
	# onto the next line.
	opts=$(python3 - "$WORK/help" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().split("\n")
section = None
for i, line in enumerate(lines):
    if re.match(r"^\S.*:$", line):
        section = line
        continue
    if section != "Options:":
        continue
    m = re.match(r"^  (?:(-\w),)?(--[\w-]+)(.*)$", line)
    if not m:
        continue
    rest = re.sub(r"^\s*(TEXT|INT|UINT|FLOAT)?(:\{[^}]*\})?(=\S*)?(\s+Excludes:(\s+--?[\w-]+)+)?", "", m.group(3)).strip()
    nxt = lines[i + 1] if i + 1 < len(lines) else ""
    described = bool(rest) or bool(re.match(r"^ {10,}\S", nxt))
    print(m.group(2), "yes" if described else "no", m.group(1) or "")
PY
)
	[ -n "$opts" ] || fail "$name --help lists no options"
	while read -r opt described short; do
		[ "$described" = yes ] || fail "$name --help: $opt has no description"
		case "$opt" in --help | --version) continue ;; esac
		# Named in the CLI reference in its long form, or in its short one ("-o conntrack", "`-q`").
		grep -qF -- "$opt" "$CLI_DOC" ||
			{ [ -n "$short" ] && grep -qE -- "(^|[^[:alnum:]-])$short([^[:alnum:]-]|\$)" "$CLI_DOC"; } ||
			fail "$name: $opt is not in docs/CLI.md"
		n=$((n + 1))
	done <<<"$opts"
	log "$name: $n options"
}
check_help xnat-load "$XNAT_LOAD"
check_help xnat-map "$XNAT_MAP"
subs=$("$XNAT_MAP" --help | sed -n '/^Subcommands:/,$p' | awk 'NR > 1 && NF { print $1 }')
[ "$(wc -w <<<"$subs")" -ge 6 ] || fail "xnat-map lists subcommands: $subs"
for sub in $subs; do
	check_help "xnat-map $sub" "$XNAT_MAP" "$sub"
	grep -q "^xnat-map \[--pin-dir DIR\] $sub\b" "$CLI_DOC" || fail "docs/CLI.md lacks xnat-map $sub"
done
for tool in import exporter; do
	check_help "xnat-$tool" "$BUILD_DIR/xnat-$tool"
done
log "PASS exit codes"
