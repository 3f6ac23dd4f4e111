#!/usr/bin/env python3
"""A wire between two namespaces made of two tun devices (TUN mode: bare IP, no link header),
the kind of interface PPP and WireGuard present to a gateway, on a kernel that has neither.

    tun_wire.py NS_A IF_A NS_B IF_B

Creates IF_A in NS_A and IF_B in NS_B, prints "ready", then copies every packet one device
sends to the other until killed; the devices go with the process."""
import ctypes
import fcntl
import os
import select
import struct
import sys

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

libc = ctypes.CDLL(None, use_errno=True)


def enter_netns(name):
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


def open_tun(netns, name):
    """A tun device is created in the namespace of the thread that opens it, and stays there."""
    enter_netns(netns)
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: tun_wire.py NS_A IF_A NS_B IF_B")
    a = open_tun(sys.argv[1], sys.argv[2])
    b = open_tun(sys.argv[3], sys.argv[4])
    other = {a: b, b: a}
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select([a, b], [], [])
        for fd in readable:
            packet = os.read(fd, 65536)
            try:
                os.write(other[fd], packet)
            except OSError:
                pass  # the far device is down (not up yet): a wire loses the packet too


if __name__ == "__main__":
    main()
