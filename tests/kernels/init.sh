#!/bin/sh
# PID 1 of the guest that vm-run.sh boots (busybox sh, from the initramfs).
#
# It stays PID 1 in the initramfs and runs the command in a chroot rather than switching root:
# the kernel starts module auto-load helpers (/sbin/modprobe) in PID 1's root, so they keep
# finding busybox's modprobe and the module tree here, whatever the chroot holds; and PID 1
# keeps the job of reporting the exit code and powering off.
#
# The guest's root is the host's root filesystem (9p, read-only) under an overlay whose upper
# layer is tmpfs: tests may write anywhere, and nothing they write reaches the host except
# through the read-write shares (/ctl, vm-run.sh --share).
/bin/busybox --install -s
PATH=/bin:/sbin
export PATH
R=/newroot

# The command's output goes to the second serial port, which vm-run.sh streams to its stdout;
# the console (first port) carries only the kernel's and this script's messages, kept in a log.
fail() {
	echo "xnat-vm init: $*"
	echo "xnat-vm init: $*" >/dev/ttyS1
	poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "xnat-vm init: kernel up at $(cut -d' ' -f1 /proc/uptime) s"

# virtio-pci and the 9p stack, in the dependency order vm-run.sh worked out.
while read -r m; do
	insmod "/modules/$m" || fail "insmod $m failed"
done </modules/order

mkdir -p /ctl /lower /rw
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 xnatctl /ctl || fail "cannot mount the control share"
# RELEASE, KDIR (the extracted kernel, a host path), SHARES (host paths), ROOT_CACHE.
# shellcheck source=/dev/null
. /ctl/params

# cache=loose: the root is read-only for the guest, and caching its metadata saves a 9p round
# trip per stat and exec, which dominates run time under TCG.
mount -t 9p -o "trans=virtio,version=9p2000.L,msize=512000,ro,cache=$ROOT_CACHE" hostroot /lower ||
	fail "cannot mount the host's root over 9p"
mount -t tmpfs -o mode=0755 rw /rw
mkdir -p /rw/upper /rw/work "$R"
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work "$R" ||
	fail "cannot mount the overlay root"

mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
mount -t devtmpfs devtmpfs "$R/dev"
mkdir -p "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o mode=0620,ptmxmode=0666 devpts "$R/dev/pts"
mount -t tmpfs -o mode=1777 shm "$R/dev/shm"
# devtmpfs has no /dev/fd: bash's process substitution (<(...)) needs it.
ln -sfn /proc/self/fd "$R/dev/fd"
ln -sfn /proc/self/fd/0 "$R/dev/stdin"
ln -sfn /proc/self/fd/1 "$R/dev/stdout"
ln -sfn /proc/self/fd/2 "$R/dev/stderr"
mount -t bpf bpf "$R/sys/fs/bpf"
mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup" 2>/dev/null || true
mount -t tracefs tracefs "$R/sys/kernel/tracing" 2>/dev/null || true
mount -t debugfs debugfs "$R/sys/kernel/debug" 2>/dev/null || true
# The host's runtime state (its namespaces, locks, sockets) must not leak in: a fresh /run.
# /tmp and /var/tmp stay the overlay's (writes land in its tmpfs upper layer): a tmpfs there
# would hide a checkout or a build that lives under /tmp on the host.
mount -t tmpfs -o mode=0755 run "$R/run"

# The kernel's modules at the usual place, in the chroot (for a test's own modprobe) and here
# (for the kernel's auto-load helper, busybox's modprobe).
for root in "" "$R"; do
	mkdir -p "$root/lib/modules/$RELEASE"
	mount -o bind "/lower$KDIR/lib/modules/$RELEASE" "$root/lib/modules/$RELEASE"
done
echo /sbin/modprobe >/proc/sys/kernel/modprobe
cp "/lower$KDIR/config" "$R/boot/config-$RELEASE" 2>/dev/null || true
# Opening these nodes is what loads tun and ppp_generic (char-major-* aliases); on a normal
# system kmod's static-nodes creates them at boot, and devtmpfs alone would not.
mkdir -p "$R/dev/net"
mknod -m 0666 "$R/dev/net/tun" c 10 200
mknod -m 0600 "$R/dev/ppp" c 108 0

# Read-write shares, at their host paths (vm-run.sh sorted them: parents before children).
i=0
for s in $SHARES; do
	mkdir -p "$R$s"
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 "share$i" "$R$s" || fail "cannot mount share $s"
	i=$((i + 1))
done
mkdir -p "$R/run/xnat-vm"
mount -o bind /ctl "$R/run/xnat-vm"

hostname xnat-vm
ip link set lo up
stty -F /dev/ttyS1 raw -echo

# The command writes into a pipe, as under CI, not onto the serial tty (programs colour and
# buffer their output by what they find). The copy to the serial port is its own process:
# something the command left running may hold the pipe open, and must not keep the guest up.
mkfifo /out
cat /out >/dev/ttyS1 &
copier=$!
echo "xnat-vm init: command starts at $(cut -d' ' -f1 /proc/uptime) s"
cut -d' ' -f1 /proc/uptime >/ctl/boot_seconds
chroot "$R" /bin/bash /run/xnat-vm/run.sh </dev/null >/out 2>&1
echo $? >/ctl/rc
echo "xnat-vm init: command exited $(cat /ctl/rc) at $(cut -d' ' -f1 /proc/uptime) s"
# The copier ends by itself once the output is drained, unless leftovers keep the pipe open.
i=0
while kill -0 "$copier" 2>/dev/null && [ $i -lt 30 ]; do
	sleep 0.1
	i=$((i + 1))
done
kill "$copier" 2>/dev/null
sync
poweroff -f
