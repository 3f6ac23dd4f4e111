#!/bin/bash
# xnat-load --features probes the running kernel for every BPF feature xnat uses: on a kernel
# that has them all (every kernel the matrix boots from 5.15 up) it lists each one as present
# and exits 0; without privilege it says so in one line and exits 1 instead of reporting
# everything missing. The refusal below the floor is checked on a 5.10 guest
# (tests/kernels/refusal.sh), since no kernel here lacks a feature.
source "$(dirname "$0")/lib.sh" "$1"

"$XNAT_LOAD" --features >"$WORK/features" 2>"$WORK/err" || fail "--features exited non-zero: $(cat "$WORK/err")"
log "$(head -1 "$WORK/features")"
grep -q "^kernel $(uname -r)$" "$WORK/features" || fail "--features does not name the kernel: $(head -1 "$WORK/features")"
# One row per feature: name, the release that brought it, yes/NO, what xnat uses it for.
for f in "bpf_timer +5.15" "bpf_for_each_map_elem +5.13" "syscall programs +5.14" "bpf_redirect_neigh +5.10" \
	"bpf_check_mtu +5.12" "devmap hash +5.4" "XDP programs +4.8"; do
	grep -Eq "^$f +yes +[^ ]" "$WORK/features" || fail "no present row for '$f' in: $(cat "$WORK/features")"
done
! grep -Eq " NO " "$WORK/features" || fail "a feature reads as missing on this kernel: $(grep ' NO ' "$WORK/features")"
[ "$(tail -1 "$WORK/features")" = "every feature xnat needs is here" ] || fail "last line: $(tail -1 "$WORK/features")"

log "unprivileged, the probe refuses in one line instead of reporting every feature missing"
rc=0
setpriv --reuid=65534 --regid=65534 --clear-groups "$XNAT_LOAD" --features >"$WORK/out" 2>"$WORK/err" || rc=$?
[ "$rc" -eq 1 ] || fail "--features as nobody exited $rc, expected 1"
[ "$(wc -l <"$WORK/err")" -eq 1 ] && grep -q "must be run as root to probe the kernel's BPF features" "$WORK/err" ||
	fail "--features as nobody said: $(cat "$WORK/err")"
[ ! -s "$WORK/out" ] || fail "--features as nobody printed a table: $(cat "$WORK/out")"
log "ok"
