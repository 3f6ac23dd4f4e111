#!/usr/bin/env python3
"""Socket endpoints for the end-to-end tests: servers that echo and report who they saw,
clients that send known bytes and check every one of them comes back."""
import argparse
import hashlib
import os
import socket
import sys
import threading
import time


def log(msg):
    print(msg, flush=True)


def payload(size, seed):
    """Deterministic bytes, so sender and checker agree without sharing state."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(65536, n - len(buf)))
        if not chunk:
            raise ConnectionError(f"peer closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def tcp_server(args):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.bind, args.port))
    srv.listen(64)
    log(f"listening tcp {args.bind}:{args.port}")

    def serve(conn, peer):
        log(f"accepted {peer[0]} {peer[1]}")
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)

    while True:
        conn, peer = srv.accept()
        threading.Thread(target=serve, args=(conn, peer), daemon=True).start()


def udp_server(args):
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind((args.bind, args.port))
    log(f"listening udp {args.bind}:{args.port}")
    seen = set()
    while True:
        data, peer = srv.recvfrom(65536)
        if peer not in seen:
            seen.add(peer)
            log(f"datagram from {peer[0]} {peer[1]}")
        srv.sendto(data, peer)


def exchange(sock, size, seed):
    data = payload(size, seed)
    sender = threading.Thread(target=sock.sendall, args=(data,))
    sender.start()
    back = recv_exact(sock, size)
    sender.join()
    if back != data:
        raise ValueError("echoed bytes differ from the bytes sent")


def tcp_client(args):
    sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
    local = sock.getsockname()
    exchange(sock, args.bytes, args.seed)
    log(f"ok tcp {args.bytes} bytes local={local[0]}:{local[1]}")
    if args.hold:
        # Keep the connection open until the file appears, then prove it still carries data.
        log("holding")
        deadline = time.time() + args.timeout
        while not os.path.exists(args.hold):
            if time.time() > deadline:
                raise TimeoutError("hold file never appeared")
            time.sleep(0.05)
        exchange(sock, args.bytes, args.seed + 1)
        log(f"ok tcp after hold {args.bytes} bytes")
    sock.close()


def udp_client(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if args.sport:
        sock.bind(("0.0.0.0", args.sport))
    sock.settimeout(args.timeout)
    sock.connect((args.host, args.port))
    for i in range(args.count):
        data = payload(args.bytes, f"{args.seed}:{i}")
        sock.send(data)
        back = sock.recv(65536)
        if back != data:
            raise ValueError(f"datagram {i}: echoed bytes differ")
    local = sock.getsockname()
    log(f"ok udp {args.count} datagrams local={local[0]}:{local[1]}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["tcp-server", "udp-server", "tcp-client", "udp-client"])
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--host")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sport", type=int, default=0)
    p.add_argument("--bytes", type=int, help="TCP: bytes per exchange (100000); UDP: per datagram (1200)")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--hold")
    args = p.parse_args()
    if args.bytes is None:
        args.bytes = 1200 if args.role == "udp-client" else 100000
    try:
        {"tcp-server": tcp_server, "udp-server": udp_server,
         "tcp-client": tcp_client, "udp-client": udp_client}[args.role](args)
    except Exception as e:  # one line for the test log, non-zero exit for the test
        print(f"FAIL {args.role}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
