#!/usr/bin/env python3
"""xnat's benchmark: xnat against bare XDP forwarding, kernel forwarding, iptables NAT and
nftables NAT, on one topology, one generator, one run.

    generator ns --veth-- gateway ns --veth-- sink ns

The generator (xnat-bench gen) is a BPF program run with BPF_F_TEST_XDP_LIVE_FRAMES on CPU 0:
each frame it builds is sent out of its veth, crosses the gateway and is counted and dropped
by an XDP program in the sink. The whole path runs on CPU 0 in one pass per frame, so the
generator is back-pressured by it: rate = 1 / cost of the path per packet. The gateway's own
cost per packet is that cost minus the cost of the path without a gateway (generator straight
into the sink), measured in the same run.

Every figure is the median of several runs, and compared as ratios between variants measured
in the same run, because absolute rates on a shared VM move from run to run.

Usage: sudo bench/run.py [--quick] [--build DIR] [--out DIR]
Writes OUT/BENCHMARKS.md, OUT/bench/results.csv and OUT/bench/*.png (default OUT: docs/).
"""
import argparse
import atexit
import csv
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLIC = "203.0.113.1"  # the gateway's public address
SERVER = "10.0.0.12"    # the LAN host behind the forward
PORT = 5000

VARIANTS = {
    "V0": "bare XDP forwarding, no NAT (upper bound)",
    "V1": "xnat, --mode xdp",
    "V1tc": "xnat, --mode tc",
    "V2": "kernel forwarding, no netfilter",
    "V3": "iptables NAT (iptables-legacy, x_tables + conntrack)",
    "V4": "nftables NAT (nf_tables + conntrack)",
    "V4s": "nftables stateless NAT (notrack + header rewrite)",
    "Th": "table experiment: minimal XDP port forward over a BPF hash map (xnat's table today)",
    "Ts": "table experiment: the same over a slot array (open addressing, 64-byte slots)",
}


def sh(cmd, check=True, capture=True, timeout=600):
    r = subprocess.run(cmd, shell=True, text=True, capture_output=capture, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"command failed ({r.returncode}): {cmd}\n{r.stdout}{r.stderr}")
    return r.stdout.strip() if capture else ""


def log(msg):
    print(msg, flush=True)


class Sysctls:
    """Global settings the NAT baselines need (conntrack table size), restored on exit."""

    def __init__(self):
        self.saved = {}

    def set(self, path, value):
        if not os.path.exists(path):
            return
        if path not in self.saved:
            with open(path) as f:
                self.saved[path] = f.read().strip()
        with open(path, "w") as f:
            f.write(str(value))

    def restore(self):
        for path, value in self.saved.items():
            try:
                with open(path, "w") as f:
                    f.write(value)
            except OSError:
                pass
        self.saved = {}


class Topology:
    """gen --gx/in0-- gw --out0/sx-- sink, in fresh namespaces. `inside` says which side of
    the gateway is its LAN: for port forwarding the generator is on the internet (in0 = WAN),
    for masquerade it is a LAN host (in0 = LAN)."""

    def __init__(self, build, tag, masquerade=False, direct=False, l3=False):
        self.build = build
        # l3: the gateway's WAN in0 is a tun device (no Ethernet header) the generator writes into.
        self.l3 = l3
        self.tag = tag
        self.gen, self.gw, self.sink = f"{tag}gen", f"{tag}gw", f"{tag}sink"
        self.masquerade = masquerade
        self.direct = direct
        self.work = tempfile.mkdtemp(prefix="xnat-bench.")
        self.bpffs = os.path.join(self.work, "bpffs")
        self.pin = os.path.join(self.bpffs, "xnat")
        self.alive = False

    def ns(self, name, cmd, **kw):
        return sh(f"ip netns exec {name} {cmd}", **kw)

    def tool(self, name, args, **kw):
        return self.ns(name, f"{self.build}/bench/xnat-bench {args}", **kw)

    def mac(self, ns, dev):
        return self.ns(ns, f"cat /sys/class/net/{dev}/address")

    def create(self):
        os.makedirs(self.bpffs)
        sh(f"mount -t bpf bpf {self.bpffs}")
        self.alive = True
        names = [self.gen, self.sink] + ([] if self.direct else [self.gw])
        for n in names:
            sh(f"ip netns add {n}")
            sh(f"ip -n {n} link set lo up")
        if self.direct:
            sh(f"ip link add gx netns {self.gen} type veth peer name sx netns {self.sink}")
            sh(f"ip -n {self.gen} link set gx up")
            sh(f"ip -n {self.sink} link set sx up")
            self.gen_dst_mac = self.mac(self.sink, "sx")
        else:
            if self.l3:
                self.ns(self.gw, "ip tuntap add dev in0 mode tun")
            else:
                sh(f"ip link add gx netns {self.gen} type veth peer name in0 netns {self.gw}")
            sh(f"ip link add out0 netns {self.gw} type veth peer name sx netns {self.sink}")
            for n, d in ((self.gen, "gx"), (self.gw, "in0"), (self.gw, "out0"), (self.sink, "sx")):
                if n != self.gen or not self.l3:
                    sh(f"ip -n {n} link set {d} up")
            if self.masquerade:
                # LAN host 10.0.0.2 (sources 10.0.0.100+) behind in0; the internet behind out0.
                self.addr(self.gen, "gx", "10.0.0.2/24")
                self.addr(self.gw, "in0", "10.0.0.1/24")
                self.addr(self.gw, "out0", f"{PUBLIC}/24")
                self.addr(self.sink, "sx", "203.0.113.2/24")
                sh(f"ip -n {self.gw} neigh replace 203.0.113.2 lladdr {self.mac(self.sink, 'sx')} dev out0 nud permanent")
                sh(f"ip -n {self.sink} route add default via {PUBLIC}")
            else:
                # The internet (sources 198.51.100.100+) behind in0; the LAN host behind out0.
                if not self.l3:
                    self.addr(self.gen, "gx", "198.51.100.2/24")
                self.addr(self.gw, "in0", "198.51.100.1/24")
                self.addr(self.gw, "in0", f"{PUBLIC}/32")
                self.addr(self.gw, "out0", "10.0.0.1/24")
                self.addr(self.sink, "sx", f"{SERVER}/24")
                sh(f"ip -n {self.gw} neigh replace {SERVER} lladdr {self.mac(self.sink, 'sx')} dev out0 nud permanent")
                sh(f"ip -n {self.sink} route add default via 10.0.0.1")
            self.ns(self.gw, "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.in0.rp_filter=0")
            # Frames XDP redirects into a veth are delivered only if the peer runs XDP or GRO.
            self.ns(self.gw, "ethtool -K out0 gro on")
            if self.l3:
                # The tun generator writes bare IP packets: the MACs it is given go unused.
                self.gen_dst_mac = self.gen_src_mac = "02:00:00:00:00:01"
            else:
                gw_in = "10.0.0.1" if self.masquerade else "198.51.100.1"
                sh(f"ip -n {self.gen} route add default via {gw_in}")
                self.gen_dst_mac = self.mac(self.gw, "in0")
                self.ns(self.gw, "ethtool -K in0 gro on")
        if not self.l3:
            self.gen_src_mac = self.mac(self.gen, "gx")
            self.ns(self.gen, "ethtool -K gx gro on")
        self.ns(self.sink, "ethtool -K sx gro on")

    def addr(self, ns, dev, cidr):
        sh(f"ip -n {ns} addr add {cidr} dev {dev}")

    def attach_sink(self):
        self.tool(self.sink, f"attach-sink --dev sx --pin-dir {self.bpffs}")

    def sink_count(self):
        return int(self.tool(self.sink, f"read-sink --pin-dir {self.bpffs}"))

    def destroy(self):
        if not self.alive:
            return
        for n in (self.gen, self.gw, self.sink):
            sh(f"ip netns del {n}", check=False)
        sh(f"umount {self.bpffs}", check=False)
        shutil.rmtree(self.work, ignore_errors=True)
        self.alive = False


def xnat_config(masquerade, proto, connections):
    if masquerade:
        cfg = {"masquerade": [{"source": "10.0.0.0/24", "to_source": PUBLIC}]}
    else:
        cfg = {"port_forwards": [{"proto": proto, "from": f"{PUBLIC}:{PORT}", "to": f"{SERVER}:{PORT}"}]}
    cfg["limits"] = {"connections": connections}
    return cfg


def connections_for(flows):
    """xnat's table as an operator would size it: the default, or room for the flows."""
    return max(262_144, 2 * flows)


def setup_variant(topo, variant, proto="udp", connections=262_144):
    """Configures the gateway; returns the destination the generator aims at."""
    nat_dst = "203.0.113.2" if topo.masquerade else PUBLIC
    plain_dst = "203.0.113.2" if topo.masquerade else SERVER
    l4 = "tcp" if proto == "syn" else "udp"
    if variant == "V0":
        topo.tool(topo.gw, f"attach-fwd --wan in0 --lan out0 --pin-dir {topo.bpffs}")
        return plain_dst
    if variant == "V2":
        return plain_dst
    if variant in ("Th", "Ts", "Tha"):
        # Sized as xnat sizes its table: two halves per connection, here rounded up to a power
        # of two for the slot array's mask, and the hash map gets the same.
        entries = 1 << (2 * connections - 1).bit_length()
        table = {"Th": "hash", "Tha": "hash-alloc", "Ts": "slots"}[variant]
        topo.tool(topo.gw, f"attach-table --wan in0 --lan out0 --to {SERVER} --table {table} "
                           f"--entries {entries} --pin-dir {topo.bpffs}")
        return nat_dst
    if variant in ("V1", "V1tc"):
        path = os.path.join(topo.work, "xnat.json")
        with open(path, "w") as f:
            json.dump(xnat_config(topo.masquerade, l4, connections), f)
        mode = "xdp" if variant == "V1" else "tc"
        wan, lan = ("out0", "in0") if topo.masquerade else ("in0", "out0")
        topo.ns(topo.gw, f"{topo.build}/xnat-load --pin-dir {topo.pin} --mode {mode} {wan} {lan} {path}")
        return nat_dst
    if variant == "V3":
        ipt = f"ip netns exec {topo.gw} iptables-legacy -t nat"
        if topo.masquerade:
            sh(f"{ipt} -A POSTROUTING -s 10.0.0.0/24 -o out0 -j SNAT --to-source {PUBLIC}")
        else:
            sh(f"{ipt} -A PREROUTING -d {PUBLIC} -p {l4} --dport {PORT} -j DNAT --to-destination {SERVER}:{PORT}")
        return nat_dst
    if variant == "V4":
        if topo.masquerade:
            rules = ("table ip nat {\n chain post {\n  type nat hook postrouting priority srcnat;\n"
                     f"  ip saddr 10.0.0.0/24 oifname \"out0\" snat to {PUBLIC}\n }}\n}}")
        else:
            rules = ("table ip nat {\n chain pre {\n  type nat hook prerouting priority dstnat;\n"
                     f"  ip daddr {PUBLIC} {l4} dport {PORT} dnat to {SERVER}:{PORT}\n }}\n}}")
        nft(topo, rules)
        return nat_dst
    if variant == "V4s":
        # No flowtable in this kernel (CONFIG_NF_FLOW_TABLE off). The fastest nftables set-up
        # that does run skips conntrack and rewrites headers in the raw hook.
        rules = ("table ip raw {\n chain pre {\n  type filter hook prerouting priority raw;\n"
                 f"  ip daddr {PUBLIC} {l4} dport {PORT} notrack ip daddr set {SERVER}\n }}\n}}")
        nft(topo, rules)
        return nat_dst
    raise ValueError(variant)


def nft(topo, rules):
    path = os.path.join(topo.work, "rules.nft")
    with open(path, "w") as f:
        f.write(rules + "\n")
    topo.ns(topo.gw, f"nft -f {path}")


def flow_shape(flows, masquerade=False):
    """(n_saddr, n_sport, n_dport) for a number of flows; sources 198.51.100.100+ / 10.0.0.100+.
    Masquerade maps each internal endpoint to its own external port (RFC 4787 REQ-1), and one
    public address has about 36k of them once the gateway's ephemeral range is left out: its
    flows come from 1,024 internal endpoints (2 hosts × 512 ports) to many destination ports."""
    if masquerade and flows >= 1024:
        return 2, 512, flows // 1024
    if flows <= 32768:
        return 1, flows, 1
    return flows // 32768, 32768, 1


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.rows = []  # raw results: dict(test, variant, flows, run, value, unit)
        self.sysctls = Sysctls()
        self.topos = []
        self.seq = 0
        self.methods = set()  # which generator produced the figures (xnat-bench gen --method)
        self.runs = 1 if args.quick else args.runs
        self.seconds = 1.0 if args.quick else args.seconds

    # ---- plumbing -------------------------------------------------------------------------
    def topology(self, **kw):
        self.seq += 1
        topo = Topology(self.build, f"xb{os.getpid() % 10000}n{self.seq}", **kw)
        self.topos.append(topo)
        topo.create()
        return topo

    def cleanup(self):
        for t in self.topos:
            t.destroy()
        self.topos = []
        self.sysctls.restore()

    def record(self, test, variant, flows, run, value, unit):
        self.rows.append(dict(test=test, variant=variant, flows=flows, run=run, value=value, unit=unit))

    def gen(self, topo, dst, flows, packets, proto="udp", new_flows=False):
        """Sends exactly `packets` frames in one test run (each run pays a setup of some tens
        of milliseconds, so a measurement is one run sized to last about --seconds)."""
        n_saddr, n_sport, n_dport = flow_shape(flows, topo.masquerade)
        src = "10.0.0.100" if topo.masquerade else "198.51.100.100"
        dev, method, where = ("in0", "tun", topo.gw) if topo.l3 else ("gx", self.args.method, topo.gen)
        args = (f"gen --dev {dev} --src-mac {topo.gen_src_mac} --dst-mac {topo.gen_dst_mac} "
                f"--saddr {src} --n-saddr {n_saddr} --daddr {dst} --sport 1024 --n-sport {n_sport} "
                f"--dport {PORT} --n-dport {n_dport} --proto {proto} --cpu 0 --packets {packets} "
                f"--batch {packets} --method {method}")
        if new_flows:
            args += " --new-flows"
        r = json.loads(topo.tool(where, args, timeout=300))
        self.methods.add(r["method"])
        return r

    def sized(self, rate):
        return max(int(rate * self.seconds), 1 << 18)

    def delivered_rate(self, topo, dst, flows, packets, proto="udp", new_flows=False):
        before = topo.sink_count()
        r = self.gen(topo, dst, flows, packets, proto=proto, new_flows=new_flows)
        return (topo.sink_count() - before) / r["seconds"]

    def measure(self, topo, dst, flows, proto="udp"):
        """Median delivered packets per second over the runs. The warm-up creates every flow
        first and tells how big a run must be to last --seconds."""
        settle()
        warm = max(2 * flows, 1 << 20)
        rate = self.delivered_rate(topo, dst, flows, warm, proto) or 1e5
        rates = []
        for _ in range(self.runs):
            settle()
            rates.append(self.delivered_rate(topo, dst, flows, self.sized(rate), proto))
        return rates

    # ---- tests ----------------------------------------------------------------------------
    def test_direct(self):
        topo = self.topology(direct=True)
        topo.attach_sink()
        rates = self.measure(topo, SERVER, 1)
        for i, r in enumerate(rates):
            self.record("direct", "none", 1, i, r, "pps")
        topo.destroy()
        log(f"  generator -> sink, no gateway: {statistics.median(rates) / 1e6:.2f} Mpps")

    def test_forwarding(self, masquerade, variants, flow_counts, l3=False):
        """l3: the port forward with a tun device as the WAN (no Ethernet header, so xnat runs in
        tc mode and pushes a header itself) against the kernel's own paths on the same device."""
        kind = "snat" if masquerade else "dnat_l3" if l3 else "dnat"
        for variant in variants:
            for flows in flow_counts:
                topo = self.topology(masquerade=masquerade, l3=l3)
                topo.attach_sink()
                dst = setup_variant(topo, variant, connections=connections_for(flows))
                rates = self.measure(topo, dst, flows)
                for i, r in enumerate(rates):
                    self.record(f"pps_{kind}", variant, flows, i, r, "pps")
                topo.destroy()
                log(f"  {kind} {variant:4} {flows:>8} flows: {statistics.median(rates) / 1e6:.3f} Mpps")

    def test_prog_time(self, flow_counts):
        """Run time per packet of the forwarding program (bpf_stats). Measured on its own:
        the statistics timestamp every BPF program run, the generator's and the sink's too, so
        they stay off while rates are measured."""
        self.sysctls.set("/proc/sys/kernel/bpf_stats_enabled", 1)
        for variant in ("V0", "V1", "V1tc"):
            for flows in flow_counts:
                topo = self.topology()
                topo.attach_sink()
                dst = setup_variant(topo, variant, connections=connections_for(flows))
                before = self.prog_stats(topo, variant)
                self.measure(topo, dst, flows)
                after = self.prog_stats(topo, variant)
                if before and after and after[1] > before[1]:
                    ns = (after[0] - before[0]) / (after[1] - before[1])
                    self.record("prog_ns_dnat", variant, flows, 0, ns, "ns")
                    log(f"  {variant:4} {flows:>8} flows: {ns:.0f} ns per packet")
                topo.destroy()
        self.sysctls.set("/proc/sys/kernel/bpf_stats_enabled", 0)

    def test_new_connections(self, variants):
        for variant in variants:
            rates = []
            for i in range(self.runs):
                topo = self.topology()
                topo.attach_sink()
                dst = setup_variant(topo, variant, proto="syn", connections=4_000_000)
                rates += self.measure_once_new(topo, dst)
                topo.destroy()
            for i, r in enumerate(rates):
                self.record("new_conn", variant, 0, i, r, "cps")
            log(f"  new connections {variant:4}: {statistics.median(rates) / 1e6:.3f} M/s")

    def measure_once_new(self, topo, dst):
        # Sized for the slowest baseline's rate at most: every packet is a connection, and the
        # tables hold 4M.
        settle()
        packets = min(self.sized(1e6), 3_000_000)
        return [self.delivered_rate(topo, dst, 1, packets, proto="syn", new_flows=True)]

    def test_memory(self, flows):
        """Kernel memory per tracked connection, `flows` UDP flows through the port forward.
        xnat preallocates its tables for limits.connections (= flows here): what the kernel
        accounts to them (bpftool's memlock) over that capacity; it allocates nothing per flow,
        which the slab's growth confirms. conntrack allocates nf_conn from slab per flow: the
        slab's growth over the connections tracked, plus its hash table (8 bytes a bucket)."""
        for variant in ("V1", "V3", "V4"):
            topo = self.topology()
            topo.attach_sink()
            dst = setup_variant(topo, variant, connections=flows)
            settle()
            settle_memory()
            slab1 = meminfo_kb("Slab")
            self.gen(topo, dst, flows, 2 * flows)
            time.sleep(1.0)
            slab2 = meminfo_kb("Slab")
            entries = self.tracked(topo, variant)
            growth = (slab2 - slab1) * 1024 / max(entries, 1)
            if variant == "V1":
                per_conn = xnat_map_bytes(topo) / flows
                self.record("memory_slab_growth", variant, entries, 0, growth, "bytes/conn")
            else:
                with open("/sys/module/nf_conntrack/parameters/hashsize") as f:
                    per_conn = growth + 8 * int(f.read()) / flows
            self.record("memory", variant, entries, 0, per_conn, "bytes/conn")
            topo.destroy()
            log(f"  memory {variant:4}: {per_conn:.0f} bytes per connection ({entries} tracked; "
                f"slab grew {growth:.0f} bytes per connection)")

    def tracked(self, topo, variant):
        if variant == "V1":
            out = json.loads(topo.ns(topo.gw, f"{self.build}/xnat-map --pin-dir {topo.pin} stats --json"))
            return out["connections"]
        return int(topo.ns(topo.gw, "cat /proc/sys/net/netfilter/nf_conntrack_count"))

    def test_iperf(self, variants):
        for variant, offload in variants:
            rates = []
            topo = self.topology()
            dst = setup_variant(topo, variant, proto="syn")
            if offload == "off":
                topo.ns(topo.gen, "ethtool -K gx tx off")
                topo.ns(topo.sink, "ethtool -K sx tx off")
            for i in range(self.runs):
                srv = subprocess.Popen(["ip", "netns", "exec", topo.sink, "iperf3", "-s", "-p", str(PORT), "-1"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.3)
                secs = 2 if self.args.quick else 5
                out = topo.ns(topo.gen, f"iperf3 -c {dst} -p {PORT} -t {secs} --connect-timeout 3000 -J",
                              check=False, timeout=60)
                try:
                    srv.wait(timeout=10)
                except subprocess.TimeoutExpired:  # the client never connected
                    srv.kill()
                    srv.wait()
                try:
                    bps = json.loads(out)["end"]["sum_received"]["bits_per_second"]
                except (ValueError, KeyError):
                    bps = 0.0
                rates.append(bps)
                self.record("iperf3", f"{variant}/offload-{offload}", 0, i, bps, "bit/s")
            topo.destroy()
            log(f"  TCP bulk {variant:4} offload {offload:3}: {statistics.median(rates) / 1e9:.2f} Gbit/s")

    def test_two_core(self, variants, flows=65536):
        """The gateway on its own core: the veth's NAPI on the gateway's ingress runs as a kernel
        thread pinned to CPU 1 (threaded NAPI), and the generator on CPU 0 offers more than any
        variant takes, so the rate delivered is what one core of gateway forwards. The sink's
        XDP program runs in the same thread, after the gateway."""
        for variant in variants:
            topo = self.topology()
            topo.attach_sink()
            dst = setup_variant(topo, variant, connections=connections_for(flows))
            topo.ns(topo.gw, "sh -c 'echo 1 > /sys/class/net/in0/threaded'")
            pin_napi_threads("in0", cpu=1)
            rates = self.measure(topo, dst, flows)
            for i, r in enumerate(rates):
                self.record("two_core", variant, flows, i, r, "pps")
            topo.destroy()
            log(f"  two cores {variant:4} {flows:>8} flows: {statistics.median(rates) / 1e6:.3f} Mpps")

    def test_table_sizes(self, tables, sizes, flows=65536):
        """The table experiment at one flow count over several table sizes: whether a lookup's
        cost follows the cache lines it touches or the memory the table spans."""
        for table in tables:
            for log2 in sizes:
                topo = self.topology()
                topo.attach_sink()
                topo.tool(topo.gw, f"attach-table --wan in0 --lan out0 --to {SERVER} --table {table} "
                                   f"--entries {1 << log2} --pin-dir {topo.bpffs}")
                rates = self.measure(topo, PUBLIC, flows)
                for i, r in enumerate(rates):
                    self.record("table_size", f"{table}/2^{log2}", flows, i, r, "pps")
                topo.destroy()
                log(f"  {table:12} 2^{log2} halves, {flows} flows: {statistics.median(rates) / 1e6:.3f} Mpps")

    def test_control(self, flows=589_824, connections=1 << 20):
        """The control plane at scale: about 600k UDP flows through the port forward in a table
        sized for a million connections, then the time of the commands an operator or a
        Prometheus scrape runs against it."""
        topo = self.topology()
        topo.attach_sink()
        dst = setup_variant(topo, "V1", connections=connections)
        self.gen(topo, dst, flows, 2 * flows)
        xmap = f"{self.build}/xnat-map --pin-dir {topo.pin}"
        tracked = json.loads(topo.ns(topo.gw, f"{xmap} stats --json"))["connections"]
        for name, cmd in (("conns --json", "conns --json"), ("conns", "conns"),
                          ("stats --json", "stats --json"), ("stats --prometheus", "stats --prometheus"),
                          ("flush", "flush")):
            started = time.monotonic()
            topo.ns(topo.gw, f"{xmap} {cmd} >/dev/null")
            secs = time.monotonic() - started
            self.record("control", name, tracked, 0, secs, "s")
            log(f"  {name:20} {tracked} connections: {secs:.2f} s ({2 * tracked / secs / 1e3:.0f}k entries/s)")
        topo.destroy()

    def test_profile(self, variants, flows=65536):
        """Where a variant's time goes: perf samples CPU 0 (cpu-clock: a VM has no PMU) while the
        port-forward test runs, and the flat profile by symbol is saved. BPF programs show as
        bpf_prog_<tag>_<name> (the JIT's symbols)."""
        if not shutil.which("perf"):
            log("  perf missing: no profile (apt-get install linux-perf)")
            return
        data_dir = os.path.join(os.path.abspath(self.args.out), "bench")
        os.makedirs(data_dir, exist_ok=True)
        for variant in variants:
            topo = self.topology()
            topo.attach_sink()
            dst = setup_variant(topo, variant, connections=connections_for(flows))
            settle()
            self.gen(topo, dst, flows, max(2 * flows, 1 << 20))  # every flow exists first
            perf_data = os.path.join(topo.work, "perf.data")
            rec = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "20000", "-C", "0",
                                    "-o", perf_data, "--", "sleep", "4"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            self.gen(topo, dst, flows, self.sized(2e6))
            rec.wait()
            report = sh(f"perf report -i {perf_data} --no-children --sort sym --percent-limit 0.7 "
                        "--stdio 2>/dev/null | grep -v '^#' | grep -v '^$'", check=False)
            name = f"profile_{variant}.txt"
            with open(os.path.join(data_dir, name), "w") as f:
                f.write(f"# perf, cpu-clock on CPU 0, port forward, {flows} flows, variant {variant}\n")
                f.write(report + "\n")
            self.record("profile", variant, flows, 0, 0, name)
            topo.destroy()
            log(f"  profile {variant}: bench/{name}")

    # ---- program statistics ---------------------------------------------------------------
    def prog_stats(self, topo, variant):
        """(run_time_ns, run_cnt) of the gateway's ingress program on the generator's side, from
        bpf_stats: the XDP program on in0, or V1tc's tc filter there."""
        if variant not in ("V0", "V1", "V1tc"):
            return None
        try:
            if variant == "V1tc":
                dev = "out0" if topo.masquerade else "in0"
                m = re.search(r"\bid (\d+)", topo.ns(topo.gw, f"tc filter show dev {dev} ingress"))
                prog_id = m.group(1) if m else None
            else:
                link = os.path.join(topo.pin if variant == "V1" else topo.bpffs,
                                    "link_xdp_lan" if (variant == "V1" and topo.masquerade) else
                                    ("link_xdp_wan" if variant == "V1" else "link_in0"))
                prog_id = json.loads(sh(f"bpftool link show pinned {link} -j"))["prog_id"]
            if prog_id is None:
                return None
            prog = json.loads(sh(f"bpftool prog show id {prog_id} -j"))
            return prog.get("run_time_ns", 0), prog.get("run_cnt", 0)
        except (RuntimeError, ValueError, KeyError):
            return None


def pin_napi_threads(dev, cpu):
    """Pins the threaded-NAPI kthreads of `dev` (named napi/DEV-ID) to one CPU. Device names
    repeat across namespaces, but each topology is alone while it is measured."""
    found = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm.startswith(f"napi/{dev}-"):
            sh(f"taskset -p -c {cpu} {pid}")
            found += 1
    if not found:
        raise RuntimeError(f"no threaded NAPI kthread for {dev}")


def cpu0_busy(window=0.2):
    """Share of CPU 0's time spent busy over a short window."""
    def sample():
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("cpu0 "):
                    v = [int(x) for x in line.split()[1:]]
                    return sum(v), v[3] + v[4]  # total, idle + iowait
        return 1, 1
    t0, i0 = sample()
    time.sleep(window)
    t1, i1 = sample()
    return 1 - (i1 - i0) / max(t1 - t0, 1)


def conntrack_objects():
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                if line.startswith("nf_conntrack "):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def settle_memory(limit=60.0):
    """Waits until the slab stops moving: memory freed by the previous variant (namespaces,
    maps, a million conntrack entries) is released by kernel workers for a while after it is
    gone, and would be counted against the next one."""
    deadline = time.time() + limit
    while time.time() < deadline and conntrack_objects() > 10000:
        time.sleep(0.5)
    last = meminfo_kb("Slab")
    while time.time() < deadline:
        time.sleep(1.0)
        now = meminfo_kb("Slab")
        if abs(now - last) < 512:
            return
        last = now


def settle(limit=15.0):
    """Waits until CPU 0, where the measurement runs, is idle: tearing down the previous
    variant's namespaces goes on in kernel workers for a while and would share the core."""
    deadline = time.time() + limit
    while time.time() < deadline and cpu0_busy() > 0.03:
        pass


def meminfo_kb(field):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def xnat_map_bytes(topo):
    """Memory of xnat's per-connection maps (connections and mappings), as the kernel
    accounts it (bpftool's memlock)."""
    total = 0
    names = ("xnat_ct", "xnat_snat", "xnat_eim")
    for m in json.loads(sh("bpftool map show -j")):
        if m.get("name") in names:
            pinned = os.path.join(topo.pin, m["name"])
            ids = json.loads(sh(f"bpftool map show pinned {pinned} -j"))
            if ids["id"] == m["id"]:
                total += int(m.get("bytes_memlock", 0))
    return total


def median(rows, test, variant, flows=None):
    vals = [r["value"] for r in rows if r["test"] == test and r["variant"] == variant
            and (flows is None or r["flows"] == flows)]
    return statistics.median(vals) if vals else None


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = meminfo_kb("MemTotal") / 1024 / 1024
    distro = "Linux"
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    distro = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return f"{os.cpu_count()} vCPU ({cpu}), {mem:.0f} GiB, Linux {platform.release()}, {distro}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--out", default=os.path.join(ROOT, "docs"))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--quick", action="store_true", help="one 1-second run per figure")
    p.add_argument("--variants", help="comma-separated variants for the dnat test (default: all)")
    p.add_argument("--method", choices=("auto", "live", "afpacket"), default="auto",
                   help="generator: BPF live frames, AF_PACKET, or live frames where the kernel allows them")
    p.add_argument("--only", help="comma-separated tests: direct,dnat,snat,l3,progtime,newconn,memory,control,twocore,tables,profile,iperf")
    p.add_argument("--merge", action="store_true",
                   help="with --only: replace just those tests' rows in OUT/bench/results.csv and rebuild the report")
    p.add_argument("--report-only", action="store_true",
                   help="rebuild OUT/BENCHMARKS.md from OUT/bench/results.csv without measuring")
    args = p.parse_args()
    if args.report_only:
        report_only(args)
        return
    if os.geteuid() != 0:
        sys.exit("bench/run.py: needs root (namespaces, BPF, netfilter baselines); run: sudo bench/run.py")
    for tool in ("iperf3", "iptables-legacy", "nft", "bpftool", "ethtool"):
        if not shutil.which(tool):
            sys.exit(f"bench/run.py: {tool} is missing; run scripts/install-deps.sh --bench")
    if not os.path.exists(os.path.join(args.build, "bench", "xnat-bench")):
        sys.exit(f"bench/run.py: no {args.build}/bench/xnat-bench; build first (scripts/build.sh)")

    b = Bench(args)
    atexit.register(b.cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    only = set(args.only.split(",")) if args.only else None
    want = lambda t: only is None or t in only
    flow_counts = [1, 65536, 1048576]
    started = time.time()

    # conntrack must hold a million flows for the baselines, like xnat's table does.
    b.sysctls.set("/proc/sys/net/netfilter/nf_conntrack_max", 4_194_304)
    b.sysctls.set("/sys/module/nf_conntrack/parameters/hashsize", 1_048_576)

    log(f"machine: {machine()}")
    if want("direct"):
        log("path cost without a gateway")
        b.test_direct()
    if want("dnat"):
        log("forwarding rate, port forward (UDP, 64-byte frames)")
        variants = ["V0", "V1", "V1tc", "V2", "V3", "V4", "V4s", "Th", "Ts"]
        b.test_forwarding(False, args.variants.split(",") if args.variants else variants, flow_counts)
    if want("snat"):
        log("forwarding rate, masquerade (UDP, 64-byte frames)")
        b.test_forwarding(True, ["V0", "V1", "V2", "V3", "V4"], [1, 65536])
    if want("l3"):
        log("forwarding rate, port forward with a tun device as the WAN (UDP, 64-byte packets)")
        b.test_forwarding(False, ["V1tc", "V2", "V3", "V4", "V4s"], [1, 65536], l3=True)
    if want("progtime"):
        log("run time of the XDP programs (bpf_stats)")
        b.test_prog_time(flow_counts)
    if want("newconn"):
        log("new-connection rate (every packet a new TCP SYN)")
        b.test_new_connections(["V1", "V3", "V4"])
    if want("memory"):
        log("memory per tracked connection")
        b.test_memory(1 << 20)
    if want("twocore"):
        log("forwarding rate, gateway on its own core (threaded NAPI on CPU 1, generator on CPU 0)")
        b.test_two_core(["V0", "V1", "V1tc", "V2", "V3", "V4"])
    if want("control"):
        log("control plane at scale (xnat-map against ~600k connections)")
        b.test_control()
    if want("tables"):
        log("connection-table experiment: table size against lookup cost (65,536 flows)")
        b.test_table_sizes(["hash", "slots", "slots-paged"], [18, 19, 21])
    if want("profile"):
        log("where the time goes (perf)")
        b.test_profile(["V1", "V1tc", "V2", "V3"])
    if want("iperf"):
        log("TCP bulk throughput (iperf3, one stream)")
        b.test_iperf([("V1tc", "on"), ("V1", "off"), ("V0", "off"), ("V2", "on"), ("V3", "on"), ("V4", "on")])
    b.cleanup()
    elapsed = time.time() - started
    args.methods = sorted(b.methods)
    if args.merge:
        merge_results(args, b.rows)
    else:
        write_results(args, b.rows, elapsed, machine())


# ---- report --------------------------------------------------------------------------------

def write_csv(data, rows):
    with open(os.path.join(data, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["test", "variant", "flows", "run", "value", "unit"])
        w.writeheader()
        w.writerows(rows)


def write_results(args, rows, elapsed, mach):
    out = os.path.abspath(args.out)
    data = os.path.join(out, "bench")
    os.makedirs(data, exist_ok=True)
    write_csv(data, rows)
    with open(os.path.join(data, "meta.json"), "w") as f:
        json.dump({"elapsed": elapsed, "machine": mach, "quick": args.quick, "runs": args.runs,
                   "date": datetime.date.today().isoformat(), "methods": args.methods}, f)
    write_report(args, rows, elapsed, mach, out, data)


def write_report(args, rows, elapsed, mach, out, data):
    plots = make_plots(rows, data)
    with open(os.path.join(out, "BENCHMARKS.md"), "w") as f:
        f.write(report(args, rows, elapsed, mach, plots))
    log(f"wrote {out}/BENCHMARKS.md, {data}/results.csv" + (", plots" if plots else ""))


def merge_results(args, rows):
    """Puts one test's fresh rows into a published results.csv in place of its old ones, and
    notes in meta.json that the test was measured in a run of its own (the report says so)."""
    out = os.path.abspath(args.out)
    data = os.path.join(out, "bench")
    with open(os.path.join(data, "results.csv")) as f:
        old = list(csv.DictReader(f))
    tests = {r["test"] for r in rows}
    merged = [r for r in old if r["test"] not in tests] + rows
    write_csv(data, merged)
    with open(os.path.join(data, "meta.json")) as f:
        meta = json.load(f)
    today = datetime.date.today().isoformat()
    meta.setdefault("separate_runs", {}).update({t: today for t in tests})
    with open(os.path.join(data, "meta.json"), "w") as f:
        json.dump(meta, f)
    log(f"merged {len(rows)} rows of {', '.join(sorted(tests))} into {data}/results.csv")
    report_only(args)


def report_only(args):
    """Rebuilds BENCHMARKS.md and the plot from a saved results.csv and meta.json."""
    out = os.path.abspath(args.out)
    data = os.path.join(out, "bench")
    with open(os.path.join(data, "results.csv")) as f:
        rows = [dict(r, flows=int(r["flows"]), run=int(r["run"]), value=float(r["value"]))
                for r in csv.DictReader(f)]
    with open(os.path.join(data, "meta.json")) as f:
        meta = json.load(f)
    args.quick, args.runs, args.date = meta["quick"], meta["runs"], meta["date"]
    args.methods = meta.get("methods", ["live"])
    args.separate_runs = meta.get("separate_runs", {})
    write_report(args, rows, meta["elapsed"], meta["machine"], out, data)


def fmt_ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "n/a"


def report(args, rows, elapsed, mach, plots):
    direct = median(rows, "direct", "none")
    lines = []
    w = lines.append
    w("# xnat benchmarks\n")
    date = getattr(args, "date", None) or datetime.date.today().isoformat()
    w(f"Measured {date} by `sudo bench/run.py{' --quick' if args.quick else ''}` "
      f"in {elapsed / 60:.1f} minutes on {mach}. "
      "Every figure is the median of "
      f"{1 if args.quick else args.runs} runs; ratios compare variants measured in the same run.\n")
    w("## Method\n")
    w("- **Topology.** Each variant gets the same fresh namespaces: generator ⇄ gateway ⇄ sink over veth.")
    w("  The port-forward tests send to 203.0.113.1:5000, forwarded to 10.0.0.12:5000 behind the gateway.")
    w("  The masquerade tests send from 10.0.0.100+ to 203.0.113.2, source-NATed to 203.0.113.1.")
    w("  The variants without NAT (V0, V2) route the same packets to the server address.")
    methods = getattr(args, "methods", None) or ["live"]
    w("- **Generator.** `xnat-bench gen`, pinned to CPU 0, has two methods and probes which one the")
    w("  kernel allows (`--method auto`, the default):")
    w("  - **live**: a BPF program run with BPF_PROG_RUN and `BPF_F_TEST_XDP_LIVE_FRAMES`, in batches of")
    w("    2^20 frames. The cheapest generator there is; some kernel builds refuse it (EPERM).")
    w("  - **afpacket**: `sendmmsg()` on an AF_PACKET socket with `PACKET_QDISC_BYPASS`, 64 frames a call.")
    w("    It costs a socket buffer per frame, which the path without a gateway pays as well.")
    w("  - Both build byte-identical frames (one builder in bench/bpf/bench.h), and with both each frame")
    w("    crosses the whole path on CPU 0 before the next is sent.")
    w(f"  - **These figures: {', '.join(methods)}.**")
    w("  - It sends 64-byte UDP frames (TCP SYN for the new-connection test).")
    w("  - Each frame is rewritten whole from the configuration, since the frames' pages come back from")
    w("    the gateway still carrying its rewrites.")
    w("  - Flows sweep source ports and addresses: 1 flow, 65,536 flows (2 × 32,768), and 1,048,576 flows")
    w("    (32 × 32,768).")
    w("  - Masquerade flows come from 1,024 internal endpoints (2 hosts × 512 ports) to 64 destination")
    w("    ports each. With endpoint-independent mapping, each internal endpoint holds one external port,")
    w("    and one public address offers about 36k of them outside the gateway's own ephemeral range.")
    w("- **Sink.** An XDP program in the sink namespace counts the frames and drops them.")
    w("  A rate is frames *delivered* to the sink per second.")
    w("- **CPU placement.** The generator's test run, the gateway's XDP or softirq processing and the sink")
    w("  all run on CPU 0, in one pass per frame (veth NAPI runs where it is scheduled), and CPU 1 stays")
    w("  idle. The generator is back-pressured by the whole path, so rate = 1 / (path cost per packet).")
    w("  Giving the gateway its own core through threaded NAPI was tried; the cross-CPU handoff and drops")
    w("  under overload made every variant slower and noisier.")
    w("- **Gateway cost per packet.** The path's cost (1 / rate) minus the cost of the same path with")
    w("  no gateway (generator straight into the sink)" +
      (f": {1e9 / direct:.0f} ns here, {direct / 1e6:.2f} Mpps." if direct else "."))
    w("- **Warm-up.** Each forwarding measurement first sends twice as many packets as there are flows")
    w("  (at least 2^20), so every flow exists before the clock starts.")
    w("- **Baselines.**")
    w("  - conntrack gets room for 4M entries (`nf_conntrack_max`) and 1M hash buckets, so a million")
    w("    flows fit there as they do in xnat's table.")
    w("  - **No flowtable:** this kernel is built without `CONFIG_NF_FLOW_TABLE`, so nftables' fast path")
    w("    cannot be used. V4s, stateless nftables NAT (notrack and header rewrite in the raw hook), is the")
    w("    strongest nftables set-up that does run. It keeps no state, so it cannot reverse-translate")
    w("    replies, and it is shown for the port forward only.")
    w("  - Debian's `iptables` command drives nf_tables, so V3 uses `iptables-legacy` (x_tables) to keep")
    w("    the two baselines distinct.\n")
    w("Variants:\n")
    for k, v in VARIANTS.items():
        w(f"- **{k}**: {v}")
    w("")

    def flows_label(f):
        return "1 flow" if f == 1 else f"{f:,} flows"

    def pps_table(test, variants, flows_list, title):
        w(f"## {title}\n")
        w("Mpps delivered; the last column is the gateway's own cost per packet at 65,536 flows.\n")
        w("| variant | " + " | ".join(flows_label(f) for f in flows_list) + " | gateway ns/packet |")
        w("|---|" + "---|" * (len(flows_list) + 1))
        for v in variants:
            cells = []
            for f in flows_list:
                m = median(rows, test, v, f)
                cells.append(f"{m / 1e6:.3f}" if m else "n/a")
            at = median(rows, test, v, 65536)
            cost = f"{1e9 / at - 1e9 / direct:.0f}" if at and direct else "n/a"
            w(f"| {v} | " + " | ".join(cells) + f" | {cost} |")
        w("")

    if any(r["test"] == "pps_dnat" for r in rows):
        pps_table("pps_dnat", ["V0", "V1", "V1tc", "V2", "V3", "V4", "V4s", "Th", "Ts"], [1, 65536, 1048576],
                  "Forwarding rate: port forward (DNAT)")
    if any(r["test"] == "pps_snat" for r in rows):
        pps_table("pps_snat", ["V0", "V1", "V2", "V3", "V4"], [1, 65536], "Forwarding rate: masquerade (SNAT)")
    if any(r["test"] == "pps_dnat_l3" for r in rows):
        w("## Forwarding rate: port forward on a WAN without an Ethernet header\n")
        w("The WAN is a tun device, as PPP and WireGuard links are headerless (this kernel has neither).")
        w("The generator writes each packet into it (`xnat-bench gen --method tun`); tun hands it to the")
        w("stack inside the write, so the whole path runs on CPU 0 as above, but every variant also pays a")
        w("system call and a socket buffer per packet, which narrows the ratios. XDP cannot run here:")
        w("xnat runs in tc mode and pushes an Ethernet header itself.")
        sep = (getattr(args, "separate_runs", None) or {}).get("pps_dnat_l3")
        if sep:
            w(f"This table was measured {sep} in a run of its own (`bench/run.py --only l3 --merge`);")
            w("its ratios compare the variants of that run.")
        w("Mpps delivered:\n")
        w("| variant | 1 flow | 65,536 flows | vs kernel forwarding (V2) | vs iptables (V3) |")
        w("|---|---|---|---|---|")
        for v in ("V1tc", "V2", "V3", "V4", "V4s"):
            m1, m = median(rows, "pps_dnat_l3", v, 1), median(rows, "pps_dnat_l3", v, 65536)
            if not (m1 or m):
                continue
            w(f"| {v} | " + " | ".join(f"{x / 1e6:.3f}" if x else "n/a" for x in (m1, m)) +
              f" | {fmt_ratio(m, median(rows, 'pps_dnat_l3', 'V2', 65536))}"
              f" | {fmt_ratio(m, median(rows, 'pps_dnat_l3', 'V3', 65536))} |")
        w("")
    nc = {v: median(rows, "new_conn", v) for v in ("V1", "V3", "V4")}
    if any(nc.values()):
        w("## New-connection rate\n")
        w("Every packet is a TCP SYN of a new 5-tuple, so every packet creates a connection.\n")
        w("| variant | connections/s |")
        w("|---|---|")
        for v, m in nc.items():
            w(f"| {v} | {m / 1e6:.3f} M/s |" if m else f"| {v} | n/a |")
        w("")
    mem = {v: median(rows, "memory", v) for v in ("V1", "V3", "V4")}
    if any(mem.values()):
        w("## Memory per tracked connection\n")
        w("A million UDP flows through the port forward, xnat sized for a million connections.")
        w("- **xnat** preallocates its tables when it loads and allocates nothing per flow. Its figure")
        w("  is the memory the kernel accounts to its per-connection maps (bpftool's memlock, the")
        w("  connection table and the mapping tables) divided by `limits.connections`. The slab's growth")
        w("  while the flows were created is shown as a check.")
        w("- **conntrack** allocates `nf_conn` and its extensions from slab as flows appear. Its figure")
        w("  is the growth of the kernel's slab (`Slab:` in /proc/meminfo) divided by conntrack's count,")
        w("  plus its hash table (8 bytes × `hashsize`) per connection.\n")
        w("| variant | bytes per connection |")
        w("|---|---|")
        for v, m in mem.items():
            w(f"| {v} | {m:.0f} |" if m is not None else f"| {v} | n/a |")
        growth = median(rows, "memory_slab_growth", "V1")
        if growth is not None:
            w(f"| V1: slab growth while creating the flows | {growth:.0f} |")
        w("")
    ip = [r for r in rows if r["test"] == "iperf3"]
    if ip:
        w("## TCP bulk throughput\n")
        w("One iperf3 stream from the generator namespace to the sink namespace, through each variant.")
        w("xnat in XDP mode, and bare XDP, need TX checksum offload off on the hosts' veths: with offload")
        w("on, locally generated packets carry partial checksums that XDP cannot see (docs/ARCHITECTURE.md,")
        w("How it works). The seed measured 10-11 MB/s of NFS through its iptables gateway.\n")
        w("| variant | Gbit/s |")
        w("|---|---|")
        for v in dict.fromkeys(r["variant"] for r in ip):
            m = median(rows, "iperf3", v)
            w(f"| {v} | {m / 1e9:.2f} |")
        w("")
    ns = [(v, f, median(rows, "prog_ns_dnat", v, f)) for v in ("V0", "V1", "V1tc") for f in (1, 65536, 1048576)]
    if any(x[2] for x in ns):
        w("## Run time of the forwarding programs (bpf_stats)\n")
        w("`kernel.bpf_stats_enabled=1`, run_time_ns / run_cnt of the program on the ingress interface, over")
        w("the measured runs of the port-forward test. This is the program alone, without the generator;")
        w("the tc program's figure excludes the skb path around it.\n")
        w("| program | 1 flow | 65,536 flows | 1,048,576 flows |")
        w("|---|---|---|---|")
        for v, name in (("V0", "bare XDP forwarder"), ("V1", "xnat_xdp_wan"), ("V1tc", "xnat_tc_wan")):
            cells = [median(rows, "prog_ns_dnat", v, f) for f in (1, 65536, 1048576)]
            if not any(cells):
                continue  # results from before the tc program was measured
            w(f"| {name} | " + " | ".join(f"{c:.0f} ns" if c else "n/a" for c in cells) + " |")
        w("")
    ctl = [r for r in rows if r["test"] == "control"]
    if ctl:
        w("## Control plane at scale\n")
        w(f"xnat-map against {ctl[0]['flows']:,} connections ({2 * ctl[0]['flows']:,} table entries) in a table sized")
        w("for 1,048,576 connections, filled by the generator through the port forward:\n")
        w("| command | seconds | table entries/s |")
        w("|---|---|---|")
        for r in ctl:
            w(f"| `xnat-map {r['variant']}` | {r['value']:.2f} | {2 * r['flows'] / r['value'] / 1e3:,.0f}k |")
        w("")
    ts = sorted({r["variant"] for r in rows if r["test"] == "table_size"})
    if ts:
        w("## The connection-table experiment\n")
        w("A minimal XDP port forward (look up, create both halves on a miss, count, rewrite, route,")
        w("redirect: bench/bpf/bench_table.bpf.c) over three tables of the same capacity, at 65,536 flows")
        w("(131,072 halves). `hash`: a BPF hash map, as xnat's table is. `slots`: open addressing in one")
        w("BPF array, a 64-byte slot per half, probed linearly. `slots-paged`: the same slots in 256-slot")
        w("inner arrays small enough for kmalloc (the direct map) instead of vmalloc. Mpps delivered:\n")
        tables = list(dict.fromkeys(v.split("/")[0] for v in ts))
        sizes = sorted({v.split("/")[1] for v in ts}, key=lambda x: int(x[2:]))
        w("| table | " + " | ".join(f"{z} halves ({(1 << int(z[2:])) * 64 >> 20} MiB of slots)" for z in sizes) + " |")
        w("|---|" + "---|" * len(sizes))
        for t in tables:
            cells = [median(rows, "table_size", f"{t}/{z}", 65536) for z in sizes]
            w(f"| {t} | " + " | ".join(f"{c / 1e6:.3f}" if c else "n/a" for c in cells) + " |")
        w("")
    tc = [(v, median(rows, "two_core", v, 65536)) for v in ("V0", "V1", "V1tc", "V2", "V3", "V4")]
    if any(m for _, m in tc):
        w("## Two cores: the gateway on a core of its own\n")
        w("The gateway's ingress veth runs its NAPI as a kernel thread (threaded NAPI) pinned to CPU 1;")
        w("the generator on CPU 0 offers more than any variant forwards, and the sink's XDP program runs")
        w("in the gateway's thread. Mpps delivered at 65,536 flows:\n")
        w("| variant | Mpps | vs iptables |")
        w("|---|---|---|")
        base = median(rows, "two_core", "V3", 65536)
        for v, m in tc:
            w(f"| {v} | {m / 1e6:.3f} | {fmt_ratio(m, base)} |" if m else f"| {v} | n/a | n/a |")
        w("")
    prof = [r for r in rows if r["test"] == "profile"]
    if prof:
        w("## Profiles\n")
        w("perf, sampling CPU 0 by cpu-clock while each variant forwards 65,536 flows (a VM has no PMU):")
        w(", ".join(f"[{r['variant']}](bench/{r['unit']})" for r in prof) + ".\n")
    w(targets(rows))
    w("Where the time goes, and why the targets that are missed are missed: "
      "[PERFORMANCE.md](PERFORMANCE.md).\n")
    for p in plots:
        w(f"![{p}](bench/{p})\n")
    w("Raw data: [bench/results.csv](bench/results.csv).\n")
    return "\n".join(lines)


def targets(rows):
    g = lambda t, v, f=None: median(rows, t, v, f)
    w = ["## Against the targets\n", "| target | measured | met |", "|---|---|---|"]

    def line(text, a, b, need):
        if not a or not b:
            w.append(f"| {text} | n/a | n/a |")
            return
        ratio = a / b
        met = "reported" if need is None else ("yes" if ratio >= need else "no")
        w.append(f"| {text} | {ratio:.2f}× | {met} |")

    line("DNAT, xdp mode, 64k flows ≥ 3.0× iptables", g("pps_dnat", "V1", 65536), g("pps_dnat", "V3", 65536), 3)
    line("DNAT, xdp mode, 64k flows ≥ 3.0× nftables", g("pps_dnat", "V1", 65536), g("pps_dnat", "V4", 65536), 3)
    line("DNAT, xdp mode, 64k flows ≥ 0.80× bare XDP", g("pps_dnat", "V1", 65536), g("pps_dnat", "V0", 65536), 0.8)
    line("DNAT, xdp mode, 1M flows ≥ 2.5× iptables", g("pps_dnat", "V1", 1048576), g("pps_dnat", "V3", 1048576), 2.5)
    line("DNAT, tc mode, 64k flows ≥ 1.5× iptables", g("pps_dnat", "V1tc", 65536), g("pps_dnat", "V3", 65536), 1.5)
    line("DNAT, tc mode, 64k flows ≥ 1.0× kernel forwarding", g("pps_dnat", "V1tc", 65536),
         g("pps_dnat", "V2", 65536), 1.0)
    line("masquerade, xdp mode, 64k flows ≥ 3.0× iptables", g("pps_snat", "V1", 65536), g("pps_snat", "V3", 65536), 3)
    line("new connections/s ≥ 4× iptables", g("new_conn", "V1"), g("new_conn", "V3"), 4)
    mem_x, mem_i = g("memory", "V1"), g("memory", "V3")
    if mem_x is not None and mem_i is not None:
        w.append(f"| memory per connection ≤ 0.6× conntrack | {mem_x:.0f} vs {mem_i:.0f} bytes "
                 f"({mem_x / mem_i:.2f}×) | {'yes' if mem_x <= 0.6 * mem_i else 'no'} |")
    line("TCP bulk, tc mode, offload on ≥ 1.0× iptables", g("iperf3", "V1tc/offload-on"),
         g("iperf3", "V3/offload-on"), 1)
    line("two cores: xnat xdp mode vs iptables (reported)", g("two_core", "V1", 65536), g("two_core", "V3", 65536), None)
    direct = g("direct", "none")
    if direct:
        x, i, n = g("pps_dnat", "V1", 65536), g("pps_dnat", "V3", 65536), g("pps_dnat", "V4", 65536)
        if x and i and n:
            cx, ci, cn = 1e9 / x - 1e9 / direct, 1e9 / i - 1e9 / direct, 1e9 / n - 1e9 / direct
            w.append("")
            w.append(f"Gateway cost per packet at 64k flows (path cost minus the {1e9 / direct:.0f} ns of "
                     f"the path without a gateway): xnat {cx:.0f} ns, iptables {ci:.0f} ns "
                     f"({ci / cx:.1f}× xnat's), nftables {cn:.0f} ns ({cn / cx:.1f}× xnat's).")
    w.append("")
    return "\n".join(w)


def make_plots(rows, data):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing: no plot (apt-get install python3-matplotlib)")
        return []
    plots = []
    variants = ["V0", "V1", "V1tc", "V2", "V3", "V4", "V4s", "Th", "Ts"]
    flows = [1, 65536, 1048576]
    if any(r["test"] == "pps_dnat" for r in rows):
        fig, ax = plt.subplots(figsize=(9, 4.5))
        width = 0.09
        for i, v in enumerate(variants):
            vals = [(median(rows, "pps_dnat", v, f) or 0) / 1e6 for f in flows]
            ax.bar([x + i * width for x in range(len(flows))], vals, width, label=v)
        ax.set_xticks([x + width * (len(variants) - 1) / 2 for x in range(len(flows))])
        ax.set_xticklabels(["1 flow" if f == 1 else f"{f:,} flows" for f in flows])
        ax.set_ylabel("Mpps delivered (64-byte UDP)")
        ax.set_title("Port forward: forwarding rate, whole path on one core")
        ax.legend(ncol=4, fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(data, "pps_dnat.png"), dpi=110)
        plt.close(fig)
        plots.append("pps_dnat.png")
    return plots


if __name__ == "__main__":
    main()
