#!/usr/bin/env python3
"""Socket endpoints for the end-to-end tests: servers that echo and report who they saw,
clients that send known bytes and check every one of them comes back."""
import argparse
import errno
import hashlib
import os
import socket
import struct
import sys
import threading
import time

# Linux <netinet/in.h>; not every Python names them.
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DO = getattr(socket, "IP_PMTUDISC_DO", 2)
IP_MTU = getattr(socket, "IP_MTU", 14)
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
SO_EE_ORIGIN_ICMP = 2


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
    source = (args.bind, args.sport) if args.sport or args.bind != "0.0.0.0" else None
    sock = socket.create_connection((args.host, args.port), timeout=args.timeout,
                                    source_address=source)
    local = sock.getsockname()
    exchange(sock, args.bytes, args.seed)
    log(f"ok tcp {args.bytes} bytes local={local[0]}:{local[1]}")
    if args.report_mtu:
        log(f"mtu {sock.getsockopt(socket.IPPROTO_IP, IP_MTU)}")
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


def icmp_error(sock):
    """The ICMP error the kernel queued on a socket with IP_RECVERR, as "icmp TYPE/CODE from
    ADDR", or an empty string."""
    try:
        _, anc, _, _ = sock.recvmsg(64, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
    except OSError:
        return ""
    for level, kind, data in anc:
        if level != socket.IPPROTO_IP or kind != IP_RECVERR or len(data) < 24:
            continue
        _, origin, icmp_type, icmp_code, _, _, _ = struct.unpack("=IBBBBII", data[:16])
        if origin != SO_EE_ORIGIN_ICMP:
            continue
        return f"icmp {icmp_type}/{icmp_code} from {socket.inet_ntoa(data[20:24])}"
    return ""


def tcp_connect(args):
    """--count new connections (1 by default), --pause seconds apart, each timed: connect()
    (waiting at most --timeout), then --bytes sent, the write side shut and whatever the server
    answers read to EOF. Reports how long each connect() took, or how long it took to fail and
    with which errno (EHOSTUNREACH for an ICMP refusal), and stops at the first failure. With
    --icmp-report, a failure also names the ICMP error that caused it (type/code, sender)."""
    for i in range(args.count):
        if i:
            time.sleep(args.pause)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if args.sport or args.bind != "0.0.0.0":
            sock.bind((args.bind, args.sport))
        if args.icmp_report:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        sock.settimeout(args.timeout)
        start = time.monotonic()
        try:
            sock.connect((args.host, args.port))
        except OSError as e:
            took = time.monotonic() - start
            name = errno.errorcode.get(e.errno, "ETIMEDOUT" if isinstance(e, socket.timeout) else "?")
            icmp = icmp_error(sock) if args.icmp_report else ""
            raise ConnectionError(f"connect failed after {took:.4f} s: {name} ({e})"
                                  + (f", {icmp}" if icmp else "")) from None
        took = time.monotonic() - start
        local = sock.getsockname()
        sock.sendall(payload(args.bytes, args.seed))
        sock.shutdown(socket.SHUT_WR)
        answer = 0
        while True:
            data = sock.recv(65536)
            if not data:
                break
            answer += len(data)
        sock.close()
        log(f"ok connect {took:.4f} s sent {args.bytes} answer {answer} local={local[0]}:{local[1]}")


def udp_flows(args):
    """--count new UDP flows, one datagram each, answered or not: flow i leaves from --sport+i to
    --port (a new mapping each), or with --same-sport from --sport to --port+i (one socket, one
    mapping, a new flow each). Each waits up to --timeout for its echo (from the port it was sent
    to, as from udp-server or stream.py's udp-tag). Prints a line per flow, "flow I SPORT DPORT
    answered", "... refused ERRNO" (an ICMP error came back: IP_RECVERR) or "... unanswered", then
    "flows N answered A refused R unanswered U". Exits 0 however the flows fared."""
    socks = {}
    answered = refused = unanswered = 0
    for i in range(args.count):
        sport, dport = (args.sport, args.port + i) if args.same_sport else (args.sport + i, args.port)
        sock = socks.get(sport)
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
            sock.bind((args.bind, sport))
            socks[sport] = sock
        data = payload(args.bytes, f"{args.seed}:{i}")
        sock.sendto(data, (args.host, dport))
        deadline = time.monotonic() + args.timeout
        result = "unanswered"
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                back, peer = sock.recvfrom(65536)
            except socket.timeout:
                break
            except OSError as e:
                result = f"refused {errno.errorcode.get(e.errno, e.errno)} {icmp_error(sock)}".rstrip()
                break
            if peer == (args.host, dport) and back.endswith(data):
                result = "answered"
                break
        answered += result == "answered"
        refused += result.startswith("refused")
        unanswered += result == "unanswered"
        log(f"flow {i} {sport} {dport} {result}")
    for sock in socks.values():
        sock.close()
    log(f"flows {args.count} answered {answered} refused {refused} unanswered {unanswered}")


def udp_client(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if args.sport or args.bind != "0.0.0.0":
        sock.bind((args.bind, args.sport))
    sock.settimeout(args.timeout)
    sock.connect((args.host, args.port))
    if args.df:
        udp_pmtu(sock, args)
        return
    for i in range(args.count):
        data = payload(args.bytes, f"{args.seed}:{i}")
        sock.send(data)
        back = sock.recv(65536)
        if back != data:
            raise ValueError(f"datagram {i}: echoed bytes differ")
    local = sock.getsockname()
    log(f"ok udp {args.count} datagrams local={local[0]}:{local[1]}")


def udp_pmtu(sock, args):
    """Path-MTU discovery on a connected socket: datagrams of --bytes with DF set until they
    come back or the kernel learns a smaller path MTU (an ICMP fragmentation-needed reaches
    this socket), then one datagram that fits, echoed intact."""
    sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
    data = payload(args.bytes, args.seed)
    deadline = time.time() + args.timeout
    while True:
        if time.time() > deadline:
            raise TimeoutError(f"no echo and no smaller path MTU (IP_MTU "
                               f"{sock.getsockopt(socket.IPPROTO_IP, IP_MTU)})")
        try:
            sock.send(data)
            sock.settimeout(0.5)
            if sock.recv(65536) == data:
                break  # the whole path carries --bytes
        except socket.timeout:
            continue
        except OSError as e:
            if e.errno != errno.EMSGSIZE:
                raise
            break  # the error came back: the kernel now knows the path MTU
    mtu = sock.getsockopt(socket.IPPROTO_IP, IP_MTU)
    log(f"mtu {mtu}")
    size = min(args.bytes, mtu - 28)
    fit = payload(size, args.seed + 1)
    sock.settimeout(args.timeout)
    sock.send(fit)
    if sock.recv(65536) != fit:
        raise ValueError("echoed bytes differ")
    local = sock.getsockname()
    log(f"ok udp df {size} bytes mtu={mtu} local={local[0]}:{local[1]}")


def udp_open(args):
    """Opens a NAT mapping by sending to --host:--port (and getting the echo), then echoes
    whatever arrives on the same socket, from anyone, until --timeout has passed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.bind, args.sport))
    deadline = time.time() + args.timeout
    target = (args.host, args.port)
    opener = payload(args.bytes, args.seed)
    while True:
        if time.time() > deadline:
            raise TimeoutError(f"no echo from {args.host}:{args.port}")
        sock.sendto(opener, target)
        sock.settimeout(0.5)
        try:
            data, peer = sock.recvfrom(65536)
        except socket.timeout:
            continue
        if peer == target and data == opener:
            break
    local = sock.getsockname()
    log(f"opened local={local[0]}:{local[1]}")
    seen = set()
    while True:
        left = deadline - time.time()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            data, peer = sock.recvfrom(65536)
        except socket.timeout:
            break
        if peer not in seen:
            seen.add(peer)
            log(f"datagram from {peer[0]} {peer[1]}")
        sock.sendto(data, peer)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["tcp-server", "udp-server", "tcp-client", "udp-client",
                                      "udp-open", "tcp-connect", "udp-flows"])
    p.add_argument("--bind", default="0.0.0.0", help="servers: listen address; clients: source")
    p.add_argument("--host")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sport", type=int, default=0)
    p.add_argument("--bytes", type=int,
                   help="TCP: bytes per exchange (100000; tcp-connect: 1000); UDP: per datagram (1200)")
    p.add_argument("--count", type=int, help="UDP: datagrams (20); tcp-connect: connections (1)")
    p.add_argument("--pause", type=float, default=0.5, help="tcp-connect: seconds between connections")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--hold")
    p.add_argument("--df", action="store_true",
                   help="udp-client: DF datagrams until the path MTU is learnt (reports it)")
    p.add_argument("--report-mtu", action="store_true", help="tcp-client: report the path MTU")
    p.add_argument("--icmp-report", action="store_true",
                   help="tcp-connect: name the ICMP error behind a failed connect (IP_RECVERR)")
    p.add_argument("--same-sport", action="store_true",
                   help="udp-flows: every flow from --sport, to --port+i")
    args = p.parse_args()
    if args.count is None:
        args.count = 1 if args.role == "tcp-connect" else 20
    if args.bytes is None:
        args.bytes = {"udp-client": 1200, "udp-open": 1200, "udp-flows": 100,
                      "tcp-connect": 1000}.get(args.role, 100000)
    try:
        {"tcp-server": tcp_server, "udp-server": udp_server,
         "tcp-client": tcp_client, "udp-client": udp_client,
         "udp-open": udp_open, "tcp-connect": tcp_connect,
         "udp-flows": udp_flows}[args.role](args)
    except Exception as e:  # one line for the test log, non-zero exit for the test
        print(f"FAIL {args.role}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
