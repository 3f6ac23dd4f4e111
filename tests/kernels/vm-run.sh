#!/bin/bash
# Runs a command as root on another kernel, in a QEMU guest that sees the host's files:
#   vm-run.sh [--mem MiB] [--timeout S] [--share DIR]... [--console FILE] [--times FILE]
#             NAME -- CMD [ARGS...]
# NAME is a kernel fetch.sh knows (6.1, 6.12, 5.10). The guest's root is the host's root
# filesystem, read-only through 9p under a tmpfs overlay, so every path (the repo, the build,
# python, iproute2) is where it is on the host and writes stay in the guest. Each --share DIR
# is mounted read-write at the same path, so results written there reach the host.
# CMD runs in the current directory with the caller's environment (and XNAT_VM_KERNEL=NAME);
# its stdout and stderr arrive on this script's stdout, and its exit code is this script's.
# vm-run.sh's own exit codes: 124 timeout (QEMU killed), 125 the guest never ran CMD (fetch,
# boot or setup failed; the console's tail is printed).
# --console FILE keeps the guest's console (kernel messages); --times FILE gets "boot S" (from
# QEMU's start to CMD's) and "total S".
#
#   tests/kernels/vm-run.sh 6.1 -- bash tests/e2e/test_masquerade.sh /work/main/build
#
# Knobs, for experiments: XNAT_VM_SMP (vCPUs, default 2), XNAT_VM_CPU (default max),
# XNAT_VM_MACHINE (default pc), XNAT_VM_APPEND (more kernel parameters), XNAT_VM_ROOT_CACHE
# (9p cache mode of the root, default loose).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MEM=2048
TIMEOUT=1800
SHARES=()
CONSOLE_COPY=""
TIMES=""

usage() {
	sed -n '2,16s/^# \{0,1\}//p' "$0" >&2
	exit 2
}
say() { printf 'vm-run.sh: %s\n' "$*" >&2; }
die() {
	say "ERROR: $*"
	exit 125
}

while [ $# -gt 0 ]; do
	case "$1" in
	--mem) MEM=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--console) CONSOLE_COPY=$2; shift 2 ;;
	--times) TIMES=$2; shift 2 ;;
	--share) SHARES+=("$(realpath -e "$2")") || die "no such directory: $2"; shift 2 ;;
	--) usage ;;
	-*) usage ;;
	*) break ;;
	esac
done
if [ $# -lt 3 ] || [ "$2" != -- ]; then usage; fi
NAME=$1
shift 2
[[ "$TIMEOUT" =~ ^[0-9]+$ && "$MEM" =~ ^[0-9]+$ ]] || usage
# The guest mounts its own /run, /proc, /sys and /dev over the host's.
case "$PWD/" in
/run/* | /proc/* | /sys/* | /dev/*) die "the guest cannot see $PWD (it has its own /run, /proc, /sys, /dev)" ;;
esac
[ ${#SHARES[@]} -eq 0 ] || mapfile -t SHARES < <(printf '%s\n' "${SHARES[@]}" | sort -u)
for s in "${SHARES[@]}"; do
	# init.sh splits the share list on blanks and mounts each over the guest's view.
	[[ "$s" =~ ^/[^[:space:]]+$ && "$s" != / ]] || die "a share must be a directory other than / without blanks: $s"
done

# On a fresh CI machine these are installed on first use.
need_packages() {
	local missing=()
	command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
	command -v busybox >/dev/null || missing+=(busybox-static)
	[ ${#missing[@]} -eq 0 ] && return
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
		{ apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; } ||
		die "cannot install ${missing[*]}"
}
need_packages

KDIR=$("$HERE/fetch.sh" "$NAME") || die "cannot fetch kernel $NAME"
# The guest resolves this path inside the 9p view; symlinks on the way would point outside it.
KDIR=$(realpath -e "$KDIR")
RELEASE=$(cat "$KDIR/release")
MODDIR=$KDIR/lib/modules/$RELEASE

TMP=$(mktemp -d /tmp/xnat-vm.XXXXXX)
QEMU_PID=""
# shellcheck disable=SC2317 # a trap
cleanup() {
	local rc=$?
	[ -n "$CONSOLE_COPY" ] && cp "$TMP/console.log" "$CONSOLE_COPY" 2>/dev/null
	[ -n "$QEMU_PID" ] && kill -KILL "$QEMU_PID" 2>/dev/null && wait "$QEMU_PID" 2>/dev/null
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# modules.dep lists a module's dependencies; load them first, each once.
declare -A QUEUED=()
LOAD_ORDER=()
queue_module() {
	local name=$1 line path dep
	line=$(grep -E "/${name}\.ko:" "$MODDIR/modules.dep" | head -n1) || return 0 # built in
	path=${line%%:*}
	[ -n "${QUEUED[$path]:-}" ] && return 0
	QUEUED[$path]=1
	for dep in ${line#*:}; do
		dep=${dep##*/}
		queue_module "${dep%%.ko*}"
	done
	LOAD_ORDER+=("$path")
}

# A throwaway initramfs: static busybox, init.sh, and the modules needed to reach the 9p root.
build_initramfs() {
	local dir=$TMP/initramfs path m
	mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,modules,lib/modules}
	cp "$(command -v busybox)" "$dir/bin/busybox"
	ln -s busybox "$dir/bin/sh" # init.sh installs the other applets
	cp "$HERE/init.sh" "$dir/init"
	chmod +x "$dir/init"
	for m in virtio_pci 9pnet_virtio 9p overlay; do queue_module "$m"; done
	: >"$dir/modules/order"
	for path in "${LOAD_ORDER[@]}"; do
		m=$(basename "$path")
		cp "$MODDIR/$path" "$dir/modules/$m"
		echo "$m" >>"$dir/modules/order"
	done
	(cd "$dir" && find . | busybox cpio -o -H newc 2>/dev/null) >"$TMP/initramfs.cpio"
}
build_initramfs

# The control share: what to run (run.sh, params) in, the exit code and timings out.
CTL=$TMP/ctl
mkdir -p "$CTL"
{
	echo "RELEASE='$RELEASE'"
	echo "KDIR='$KDIR'"
	echo "SHARES='${SHARES[*]}'"
	echo "ROOT_CACHE='${XNAT_VM_ROOT_CACHE:-loose}'"
} >"$CTL/params"
# A pyenv shim runs dozens of processes to pick an interpreter: 20 s per `python3` under TCG.
# The guest gets the interpreter the shim would pick, in front of PATH, instead.
GUEST_PATH=$PATH
if [[ ":$PATH:" == *"/.pyenv/shims:"* ]] && py=$(pyenv which python3 2>/dev/null); then
	GUEST_PATH="$(dirname "$py"):$(printf '%s' "$PATH" | tr ':' '\n' | grep -v '/\.pyenv/shims$' | paste -sd:)"
fi
{
	echo '# generated by vm-run.sh'
	# The caller's environment, less what only makes sense in this shell or on this host's
	# /run (the guest has its own) or terminal.
	for v in $(compgen -e); do
		case "$v" in
		PATH | PWD | OLDPWD | SHLVL | _ | XDG_RUNTIME_DIR | DISPLAY | WAYLAND_DISPLAY | SSH_* | DBUS_*) continue ;;
		esac
		printf 'export %s=%q\n' "$v" "${!v}"
	done
	printf 'export PATH=%q\n' "$GUEST_PATH"
	echo "export XNAT_VM_KERNEL=$NAME"
	printf 'cd %q || exit 125\n' "$PWD"
	printf 'exec'
	printf ' %q' "$@"
	echo
} >"$CTL/run.sh"

# shellcheck disable=SC2054 # commas separate QEMU's sub-options
QEMU=(qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot
	# Measured here: pc or q35, max or qemu64, 1 or 2 vCPUs all boot in 3-5 s; one vCPU runs the
	# (sequential) suites as fast as two. max gives the guest every feature TCG emulates.
	-machine "${XNAT_VM_MACHINE:-pc}" -accel tcg,thread=multi -cpu "${XNAT_VM_CPU:-max}"
	-smp "${XNAT_VM_SMP:-2}" -m "$MEM"
	-kernel "$KDIR/vmlinuz" -initrd "$TMP/initramfs.cpio"
	# mitigations=off: the guest's speculation fences cost real time under emulation and
	# protect nothing here. panic=-1 with -no-reboot: a crashed guest ends QEMU at once.
	-append "console=ttyS0 quiet panic=-1 mitigations=off random.trust_cpu=on ${XNAT_VM_APPEND:-}"
	-serial "file:$TMP/console.log"
	-chardev "stdio,id=out,signal=off" -serial chardev:out
	-fsdev "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap"
	-device virtio-9p-pci,fsdev=root,mount_tag=hostroot
	-fsdev "local,id=ctl,path=$CTL,security_model=none"
	-device virtio-9p-pci,fsdev=ctl,mount_tag=xnatctl)
i=0
for s in "${SHARES[@]}"; do
	QEMU+=(-fsdev "local,id=share$i,path=$s,security_model=none,multidevs=remap"
		-device "virtio-9p-pci,fsdev=share$i,mount_tag=share$i")
	i=$((i + 1))
done

now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }
START=$(now_ms)
BOOT_MS=""
"${QEMU[@]}" </dev/null &
QEMU_PID=$!
# QEMU runs in the background so that this shell's traps can kill it; the loop is the timeout,
# and it notes when the guest starts CMD (the guest's uptime leaves out firmware and loading).
deadline=$((SECONDS + TIMEOUT))
while kill -0 "$QEMU_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
	[ -z "$BOOT_MS" ] && [ -e "$CTL/boot_seconds" ] && BOOT_MS=$(($(now_ms) - START))
	sleep 0.2
done
write_times() {
	[ -n "$TIMES" ] || return 0
	printf 'boot %s\ntotal %s\n' "$([ -n "$BOOT_MS" ] && secs "$BOOT_MS" || echo -)" \
		"$(secs $(($(now_ms) - START)))" >"$TIMES"
}
if kill -0 "$QEMU_PID" 2>/dev/null; then
	kill -KILL "$QEMU_PID"
	wait "$QEMU_PID" 2>/dev/null || true
	QEMU_PID=""
	write_times
	say "TIMEOUT: $NAME guest still running after $TIMEOUT s; killed. Its console:"
	tail -n 20 "$TMP/console.log" | sed 's/^/  | /' >&2
	exit 124
fi
qrc=0
wait "$QEMU_PID" || qrc=$?
QEMU_PID=""
ELAPSED_MS=$(($(now_ms) - START))
write_times

if [ ! -s "$CTL/rc" ]; then
	say "ERROR: the $NAME guest ($RELEASE) never reported an exit code (qemu exit $qrc). Its console:"
	tail -n 40 "$TMP/console.log" | sed 's/^/  | /' >&2
	exit 125
fi
rc=$(cat "$CTL/rc")
say "$NAME ($RELEASE): CMD started $(secs "${BOOT_MS:-0}") s after QEMU (guest uptime $(cat "$CTL/boot_seconds") s), QEMU ran $(secs "$ELAPSED_MS") s, exit $rc"
exit "$rc"
