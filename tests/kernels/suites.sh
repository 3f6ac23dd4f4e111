#!/bin/bash
# The kernel matrix's driver: runs every suite on the kernel it finds itself on, one after the
# other, and records each one's result and duration. matrix.sh runs it once per guest (so a
# kernel's boot is paid once) and once directly on the host.
#   suites.sh BUILD_DIR OUT_DIR [--refusal]   run; results in OUT_DIR/results.tsv, logs beside
#   suites.sh --list [--refusal]               print the suite names
# --refusal: the kernel is below xnat's floor (5.15); the only suite is the loader's refusal.
# results.tsv has one "SUITE<TAB>RESULT<TAB>SECONDS" line per suite (RESULT: pass, FAIL,
# TIMEOUT).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# One hung suite must not eat the whole kernel's budget and hide the others' results.
SUITE_TIMEOUT=${XNAT_MATRIX_SUITE_TIMEOUT:-1200}

SUITES=(bpf_tests difffuzz difffuzz-determinism port_forward-xdp-off port_forward-tc-on
	test_masquerade test_two_gateways test_l3_wan vlan pppoe wireguard test_fragments test_mss)
REFUSAL_SUITES=(refusal)

if [ "${1:-}" = --list ]; then
	if [ "${2:-}" = --refusal ]; then printf '%s\n' "${REFUSAL_SUITES[@]}"; else printf '%s\n' "${SUITES[@]}"; fi
	exit 0
fi
[ $# -ge 2 ] || {
	sed -n '5,6s/^# \{0,1\}//p' "$0" >&2
	exit 2
}
BUILD=$(cd "$1" && pwd)
OUT=$2
REFUSAL=${3:-}
mkdir -p "$OUT"
: >"$OUT/results.tsv"

# The command line of each suite, into CMD.
suite_cmd() {
	case "$1" in
	# --durations: a kernel whose verifier is slow shows which fixtures pay for it.
	bpf_tests) CMD=("$BUILD/tests/bpf_tests" --durations yes) ;;
	difffuzz) CMD=("$BUILD/tests/xnat-difffuzz" --seed 1 --seeds 4 --steps 2500) ;;
	difffuzz-determinism) CMD=("$BUILD/tests/xnat-difffuzz" --seed 2 --steps 2500 --check-determinism) ;;
	port_forward-xdp-off) CMD=(bash "$REPO/tests/e2e/port_forward.sh" "$BUILD" xdp off) ;;
	port_forward-tc-on) CMD=(bash "$REPO/tests/e2e/port_forward.sh" "$BUILD" tc on) ;;
	test_masquerade | test_two_gateways | test_l3_wan | vlan | pppoe | wireguard | test_fragments | test_mss) CMD=(bash "$REPO/tests/e2e/$1.sh" "$BUILD") ;;
	refusal) CMD=(bash "$HERE/refusal.sh" "$BUILD") ;;
	esac
}

# timeout(1) puts the suite in a process group of its own, out of reach of a Ctrl-C or a kill
# of this script's group; pass those on, so that the suite's own cleanup (namespaces) runs.
SUITE_PID=""
trap '[ -n "$SUITE_PID" ] && kill -TERM "$SUITE_PID" 2>/dev/null; exit 143' INT TERM

failed=0
run_suite() {
	local name=$1 rc=0 t0 ms result
	suite_cmd "$name"
	printf '== %s: %s\n' "$name" "${CMD[*]}"
	t0=$(date +%s%N)
	# The suite's own directory as cwd: some tests write logs relative to it.
	(cd "$REPO" && exec timeout -k 10 "$SUITE_TIMEOUT" "${CMD[@]}") >"$OUT/$name.log" 2>&1 </dev/null &
	SUITE_PID=$!
	wait "$SUITE_PID" || rc=$?
	SUITE_PID=""
	ms=$((($(date +%s%N) - t0) / 1000000))
	case $rc in
	0) result=pass ;;
	124 | 137) result=TIMEOUT ;;
	*) result=FAIL ;;
	esac
	printf '%s\t%s\t%d.%d\n' "$name" "$result" $((ms / 1000)) $((ms % 1000 / 100)) >>"$OUT/results.tsv"
	printf '== %s: %s in %d.%d s\n' "$name" "$result" $((ms / 1000)) $((ms % 1000 / 100))
	if [ "$result" != pass ]; then
		failed=1
		[ "$result" = TIMEOUT ] && echo "   (killed after ${SUITE_TIMEOUT} s)"
		echo "   exit $rc; last lines of $OUT/$name.log:"
		tail -n 30 "$OUT/$name.log" | sed 's/^/   | /'
	fi
}

printf '== kernel %s\n' "$(uname -r)"
if [ "$REFUSAL" = --refusal ]; then
	for s in "${REFUSAL_SUITES[@]}"; do run_suite "$s"; done
else
	for s in "${SUITES[@]}"; do run_suite "$s"; done
fi
exit $failed
