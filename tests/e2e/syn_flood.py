#!/usr/bin/env python3
"""Sends COUNT TCP SYNs, each from a new source port, out of DEV through an AF_PACKET socket.

A flood that runs on every kernel: no BPF generator (live-frames test runs are refused by some
kernels), nothing but a raw socket. Each sendto is synchronous on a veth, so the peer's backlog
is drained between frames and what is sent is what arrives.
usage: syn_flood.py DEV SRC_MAC DST_MAC SADDR DADDR DPORT FIRST_SPORT COUNT
"""
import socket
import struct
import sys
import time


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def syn(smac, dmac, saddr, daddr, sport, dport, seq):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = saddr + daddr + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), sport & 0xFFFF, 0, 64, 6, 0, saddr, daddr)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return dmac + smac + b"\x08\x00" + ip + tcp


def main():
    if len(sys.argv) != 9:
        sys.exit(__doc__.strip().splitlines()[-1])
    dev, smac, dmac, saddr, daddr, dport, first, count = sys.argv[1:]
    mac = lambda m: bytes.fromhex(m.replace(":", ""))
    smac, dmac = mac(smac), mac(dmac)
    saddr, daddr = socket.inet_aton(saddr), socket.inet_aton(daddr)
    dport, first, count = int(dport), int(first), int(count)
    if not 0 < first or first + count - 1 > 65535:
        sys.exit(f"syn_flood: source ports {first}..{first + count - 1} do not fit in 1..65535")
    frames = [syn(smac, dmac, saddr, daddr, first + i, dport, 1000 + i) for i in range(count)]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((dev, 0))
    start = time.monotonic()
    for f in frames:
        s.send(f)
    took = time.monotonic() - start
    print(f"sent {count} SYNs in {took:.3f} s ({count / took / 1e3:.0f} kpps)")


if __name__ == "__main__":
    main()
