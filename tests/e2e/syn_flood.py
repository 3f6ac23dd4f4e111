#!/usr/bin/env python3
"""Sends TCP SYNs, each a new flow (its own source address and port), out of DEV through an
AF_PACKET socket.

A flood that runs on every kernel: no BPF generator (live-frames test runs are refused by some
kernels), nothing but a raw socket. Each sendto is synchronous on a veth, so the peer's backlog
is drained between frames and what is sent is what arrives (unless the peer runs XDP, whose
ring may overflow: the frames it refuses, ENOBUFS here, are counted as dropped, not sent).

SYN i comes from address SADDR + i % SOURCES, port FIRST_SPORT + i // SOURCES: with
--sources 1 (the default) COUNT consecutive ports of SADDR; with --sources N the spoofed
sources vary, N addresses from SADDR on. With --seconds S it sends new SYNs at full speed for
S seconds, and at least COUNT; with --until FILE as well, until FILE exists and COUNT went out
(frames the device refused do not count; S then bounds it). It prints "flooding" when it
starts, and a summary at the end.

With --rate R it sends at most R SYNs a second (in bursts of 64), for a peer whose XDP ring would
overflow at full speed and take the test's other traffic down with the flood.
usage: syn_flood.py DEV SRC_MAC DST_MAC SADDR DADDR DPORT FIRST_SPORT COUNT [--sources N] [--seconds S] [--until FILE] [--rate R]
"""
import argparse
import errno
import os
import socket
import struct
import sys
import time

# Ethernet + IPv4 + TCP, the fields that vary as integers.
FRAME = struct.Struct("!6s6sH" "BBHHHBBHII" "HHIIBBHHH")
TCP_LEN = 20


def fold(s):
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return s


def words(v):
    return (v >> 16) + (v & 0xFFFF)


def frames(smac, dmac, saddr, daddr, dport, first, sources):
    """The SYNs, one new flow each, for as long as the tuples last. Checksums are sums of a
    constant part and the fields that vary (source address and port, sequence, IP id)."""
    ip_const = 0x4500 + (20 + TCP_LEN) + 0x4006 + words(daddr)
    tcp_const = dport + (5 << 12 | 0x02) + 64240 + words(daddr) + 6 + TCP_LEN
    i = 0
    while True:
        src = saddr + i % sources
        sport = first + i // sources
        if sport > 65535:
            return
        seq = (1000 + i) & 0xFFFFFFFF
        ip_id = sport & 0xFFFF
        ip_csum = ~fold(ip_const + ip_id + words(src)) & 0xFFFF
        tcp_csum = ~fold(tcp_const + sport + words(seq) + words(src)) & 0xFFFF
        yield FRAME.pack(dmac, smac, 0x0800,
                         0x45, 0, 20 + TCP_LEN, ip_id, 0, 64, 6, ip_csum, src, daddr,
                         sport, dport, seq, 0, 5 << 4, 0x02, 64240, tcp_csum, 0)
        i += 1


def main():
    p = argparse.ArgumentParser(usage=__doc__.strip().splitlines()[-1][len("usage: "):])
    for name in ("dev", "smac", "dmac", "saddr", "daddr", "dport", "first", "count"):
        p.add_argument(name)
    p.add_argument("--sources", type=int, default=1, help="spoofed source addresses, from SADDR on")
    p.add_argument("--seconds", type=float, default=0, help="keep sending new SYNs this long")
    p.add_argument("--until", help="with --seconds: stop sending when this file exists")
    p.add_argument("--rate", type=float, default=0, help="at most this many SYNs a second")
    a = p.parse_args()
    mac = lambda m: bytes.fromhex(m.replace(":", ""))
    smac, dmac = mac(a.smac), mac(a.dmac)
    saddr = struct.unpack("!I", socket.inet_aton(a.saddr))[0]
    daddr = struct.unpack("!I", socket.inet_aton(a.daddr))[0]
    dport, first, count, sources = int(a.dport), int(a.first), int(a.count), a.sources
    room = sources * (65536 - first) if 0 < first <= 65535 and sources > 0 else 0
    if a.until and not a.seconds:
        sys.exit("syn_flood: --until needs --seconds, the longest it may run")
    if count > room:
        sys.exit(f"syn_flood: {count} SYNs do not fit in {sources} address(es) x source ports "
                 f"{first}..65535")
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.dev, 0))
    gen = frames(smac, dmac, saddr, daddr, dport, first, sources)
    # The frames to the minimum count are built first, so that they go out at full speed.
    batch = [next(gen) for _ in range(count)]
    dropped = attempts = 0

    def send(f):
        nonlocal dropped, attempts
        attempts += 1
        if a.rate and not attempts & 0x3F:
            ahead = start + attempts / a.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        try:
            s.send(f)
        except OSError as e:
            if e.errno != errno.ENOBUFS:
                raise
            dropped += 1

    print("flooding", flush=True)
    start = time.monotonic()
    for f in batch:
        send(f)
    sent = count
    if a.seconds:
        deadline = start + a.seconds
        for f in gen:
            send(f)
            sent += 1
            # The file ends the flood only once COUNT frames went out: a refused one is no SYN.
            if not sent & 0xFF and (time.monotonic() >= deadline or
                                     (a.until and os.path.exists(a.until) and sent - dropped >= count)):
                break
        else:
            sys.exit(f"syn_flood: ran out of new tuples after {sent} SYNs")
    took = time.monotonic() - start
    sent -= dropped
    print(f"sent {sent} SYNs in {took:.3f} s ({sent / took / 1e3:.0f} kpps) from {min(sources, sent)} "
          f"source address(es), {dropped} dropped by the device", flush=True)


if __name__ == "__main__":
    main()
