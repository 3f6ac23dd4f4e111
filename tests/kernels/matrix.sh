#!/bin/bash
# Runs xnat's BPF, differential-fuzz and end-to-end suites on several kernels:
#   matrix.sh BUILD_DIR [NAME...]        NAME: host, 6.1, 6.12, 5.10 (default: 6.1 6.12 host)
# "host" runs them directly on this machine's kernel; any other NAME boots Debian's kernel of
# that version in QEMU (vm-run.sh), once for all its suites. 5.10 is below xnat's floor (5.15),
# so there only the loader's refusal is checked (refusal.sh).
# Prints a Markdown table (kernel, suite, result, seconds), also written to
# BUILD_DIR/kernel-matrix.md, with each suite's log under BUILD_DIR/kernel-matrix/NAME/.
# Exits 1 if any suite failed or any kernel could not be fetched or booted.
#
# Knobs: XNAT_MATRIX_JOBS (kernels run at once, default 2), XNAT_MATRIX_VM_TIMEOUT (s per
# guest, default 2400), XNAT_MATRIX_SUITE_TIMEOUT (s per suite, default 1200),
# XNAT_KERNEL_CACHE (where fetch.sh keeps kernels).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 1 ] || {
	sed -n '2,3s/^# \{0,1\}//p' "$0" >&2
	exit 2
}
BUILD=$(cd "$1" && pwd)
shift
KERNELS=("$@")
# The guests first: they take longest, and the host's run fits beside the last of them.
[ ${#KERNELS[@]} -gt 0 ] || KERNELS=(6.1 6.12 host)
JOBS=${XNAT_MATRIX_JOBS:-2}
VM_TIMEOUT=${XNAT_MATRIX_VM_TIMEOUT:-2400}
LOGS=$BUILD/kernel-matrix
TABLE=$BUILD/kernel-matrix.md

loud() { printf '\n!!! matrix.sh: %s\n\n' "$*" >&2; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }

# Emulation is CPU-bound and the suites are mostly sequential: with several guests at once,
# one vCPU each keeps them from stealing cores from each other (and the guests' kernels from
# stalling on a preempted vCPU).
[ "$JOBS" -gt 1 ] && export XNAT_VM_SMP=${XNAT_VM_SMP:-1}

rm -rf "$LOGS"
mkdir -p "$LOGS"
T_START=$(now_ms)

# Job control gives each kernel's run a process group, so that one kill reaches all of it
# (vm-run.sh then takes its QEMU down): nothing outlives an interrupted matrix.
set -m
stop_all() {
	local pid
	for pid in $(jobs -p); do kill -TERM -- "-$pid" 2>/dev/null || true; done
	wait
}
trap 'stop_all; exit 130' INT TERM

# run_kernel NAME: runs that kernel's suites; leaves its table rows ("kernel|suite|result|s")
# in $LOGS/NAME/rows and creates $LOGS/NAME/failed if anything failed.
run_kernel() {
	local k=$1 out=$LOGS/$1 refusal="" label=$1 t0 kdir rc boot suite result seconds
	local -A seen=()
	mkdir -p "$out"
	: >"$out/rows"
	row() { echo "$label|$1|$2|$3" >>"$out/rows"; }
	[ "$k" = 5.10 ] && refusal=--refusal

	t0=$(now_ms)
	if [ "$k" = host ]; then
		label="host ($(uname -r))"
		bash "$HERE/suites.sh" "$BUILD" "$out" $refusal || true
	else
		kdir=$("$HERE/fetch.sh" "$k") # fetched before, so only a cache check here
		label="$k ($(cat "$kdir/release"))"
		rc=0
		"$HERE/vm-run.sh" --timeout "$VM_TIMEOUT" --share "$out" --console "$out/console.log" \
			--times "$out/vm-times" "$k" -- bash "$HERE/suites.sh" "$BUILD" "$out" $refusal || rc=$?
		case $rc in
		124) loud "kernel $k: the guest timed out after $VM_TIMEOUT s (console: $out/console.log)" ;;
		125) loud "kernel $k: the guest did not boot or could not run the suites (console: $out/console.log)" ;;
		esac
		# QEMU's start to the suites' start: firmware, kernel, modules, mounts.
		boot=$(awk '$1 == "boot" { print $2 }' "$out/vm-times" 2>/dev/null || true)
		if [ -n "$boot" ] && [ "$boot" != - ]; then
			row boot ok "$boot"
		else
			row boot FAIL -
			touch "$out/failed"
		fi
	fi

	# Every suite gets a row; one the guest never reached is a failure too.
	if [ -s "$out/results.tsv" ]; then
		while IFS=$'\t' read -r suite result seconds; do
			row "$suite" "$result" "$seconds"
			seen[$suite]=1
			[ "$result" = pass ] || [ "$result" = ok ] || touch "$out/failed"
		done <"$out/results.tsv"
	fi
	for suite in $(bash "$HERE/suites.sh" --list $refusal); do
		[ -n "${seen[$suite]:-}" ] && continue
		row "$suite" "NOT RUN" -
		touch "$out/failed"
	done
	row "total (boot, suites, power-off)" - "$(secs $(($(now_ms) - t0)))"
}

# Fetch every kernel first, one at a time: a download failure is named as one, and the runs
# below then start without waiting on the network.
RUN=()
for k in "${KERNELS[@]}"; do
	mkdir -p "$LOGS/$k"
	case "$k" in
	host) RUN+=("$k") ;;
	6.1 | 6.12 | 5.10)
		t0=$(now_ms)
		if kdir=$("$HERE/fetch.sh" "$k"); then
			echo "$k ($(cat "$kdir/release"))|fetch|ok|$(secs $(($(now_ms) - t0)))" >"$LOGS/$k/fetch-row"
			RUN+=("$k")
		else
			loud "cannot fetch kernel $k: its suites will not run"
			echo "$k|fetch|FAIL|$(secs $(($(now_ms) - t0)))" >"$LOGS/$k/fetch-row"
			touch "$LOGS/$k/failed"
		fi
		;;
	*)
		loud "unknown kernel '$k' (host, 6.1, 6.12 or 5.10)"
		echo "$k|-|FAIL (unknown kernel)|-" >"$LOGS/$k/fetch-row"
		touch "$LOGS/$k/failed"
		;;
	esac
done

# Up to JOBS kernels at once; each one's lines carry its name.
for k in "${RUN[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
	echo "[$k] starting at $(secs $(($(now_ms) - T_START))) s"
	(run_kernel "$k" | sed -u "s/^/[$k] /") &
done
wait
trap - INT TERM

failed=0
{
	echo "| kernel | suite | result | seconds |"
	echo "| --- | --- | --- | ---: |"
	for k in "${KERNELS[@]}"; do
		[ -e "$LOGS/$k/failed" ] && failed=1
		for f in "$LOGS/$k/fetch-row" "$LOGS/$k/rows"; do
			[ -e "$f" ] || continue
			while IFS='|' read -r a b c d; do echo "| $a | $b | $c | $d |"; done <"$f"
		done
	done
	echo
	echo "Whole matrix: $(secs $(($(now_ms) - T_START))) s, $JOBS kernels at a time. Logs: $LOGS/."
} >"$TABLE"
echo
cat "$TABLE"
if [ "$failed" -ne 0 ]; then
	loud "the kernel matrix FAILED (see the table above and $LOGS/)"
	exit 1
fi
