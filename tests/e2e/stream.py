#!/usr/bin/env python3
"""Long-running traffic for the end-to-end tests and the soak: paced TCP streams whose bytes the
receiver hashes (sha256), UDP streams with sequence numbers the receiver checks for loss and
reordering, and churn of short TCP connections against peer.py's echo server. Every role prints
one result line ("ok ..." or a FAIL line on stderr) and exits non-zero if a byte was wrong."""
import argparse
import hashlib
import json
import os
import random
import selectors
import socket
import struct
import sys
import threading
import time


def log(msg):
    print(msg, flush=True)


def chunk_bytes(seed, index, size):
    """Deterministic pseudo-random bytes: the sender never holds the whole stream."""
    return random.Random(f"{seed}:{index}").randbytes(size)


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            raise ConnectionError(f"peer closed after {len(buf)} of {n} bytes")
        buf += part
    return bytes(buf)


def tcp_sink(args):
    """Reads each connection to EOF, then answers with the byte count and sha256 it saw."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.bind, args.port))
    srv.listen(64)
    log(f"listening tcp {args.bind}:{args.port}")

    def serve(conn, peer):
        digest, total = hashlib.sha256(), 0
        with conn:
            while True:
                data = conn.recv(1 << 16)
                if not data:
                    break
                digest.update(data)
                total += len(data)
            conn.sendall(f"{total} {digest.hexdigest()}\n".encode())
        log(f"received {total} bytes from {peer[0]} {peer[1]} sha256={digest.hexdigest()}")

    while True:
        conn, peer = srv.accept()
        threading.Thread(target=serve, args=(conn, peer), daemon=True).start()


def tcp_send(args):
    """Sends --bytes in chunks spread over --seconds, then checks the sink's sha256."""
    sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
    local = sock.getsockname()
    log(f"sending local={local[0]}:{local[1]}")
    digest, sent, index = hashlib.sha256(), 0, 0
    start = time.monotonic()
    while sent < args.bytes:
        data = chunk_bytes(args.seed, index, min(args.chunk, args.bytes - sent))
        sock.sendall(data)
        digest.update(data)
        sent += len(data)
        index += 1
        # Pacing: the stream lasts about --seconds, so it is open while the test acts.
        ahead = start + args.seconds * sent / args.bytes - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    sock.shutdown(socket.SHUT_WR)
    answer = b""
    while not answer.endswith(b"\n"):
        part = sock.recv(256)
        if not part:
            raise ConnectionError("sink closed without its digest")
        answer += part
    count, theirs = answer.decode().split()
    if int(count) != sent or theirs != digest.hexdigest():
        raise ValueError(f"sink got {count} bytes sha256={theirs}, sent {sent} sha256={digest.hexdigest()}")
    log(f"ok stream {sent} bytes sha256={theirs} in {time.monotonic() - start:.1f}s")


def tcp_churn(args):
    """Short connections to an echo server until --seconds pass: each sends a random-sized
    payload and checks every byte comes back. Prints a JSON summary."""
    deadline = time.monotonic() + args.seconds
    rng = random.Random(args.seed)
    made = verified = 0
    digest = hashlib.sha256()
    while time.monotonic() < deadline:
        size = rng.randint(1, args.bytes)
        data = rng.randbytes(size)
        with socket.create_connection((args.host, args.port), timeout=args.timeout) as sock:
            made += 1
            sender = threading.Thread(target=sock.sendall, args=(data,))
            sender.start()
            back = recv_exact(sock, size)
            sender.join()
        if back != data:
            raise ValueError(f"connection {made}: echoed bytes differ")
        verified += size
        digest.update(back)
        if args.pause:
            time.sleep(args.pause)
    log(json.dumps({"connections": made, "bytes_verified": verified, "sha256": digest.hexdigest()}))


def udp_seq_send(args):
    """Numbered datagrams at --rate until --seconds pass or the --stop file appears, then
    an end marker carrying the count (repeated, in case one is lost)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((args.host, args.port))
    pad = b"\0" * max(0, args.bytes - 8)
    start = time.monotonic()
    seq = 0
    log("sending")
    while True:
        if args.stop and os.path.exists(args.stop):
            break
        if args.seconds and time.monotonic() - start >= args.seconds:
            break
        sock.send(struct.pack("!Q", seq) + pad)
        seq += 1
        ahead = start + seq / args.rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    time.sleep(0.2)  # the last datagrams arrive before the end marker
    for _ in range(5):
        try:
            sock.send(b"END " + str(seq).encode())
        except ConnectionRefusedError:
            break  # the receiver has its marker and is gone (its port answers unreachable)
        time.sleep(0.05)
    log(f"ok udp sent {seq}")


def udp_seq_recv(args):
    """Counts what arrives until the end marker: lost, reordered and duplicated datagrams.
    Exits non-zero unless every datagram arrived once, in order."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # A default-sized buffer overflows when this process is descheduled for a moment on a busy
    # machine, and the datagrams the socket drops would look like the gateway's losses.
    # SO_RCVBUFFORCE (root) passes net.core.rmem_max, which SO_RCVBUF is capped at.
    try:
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), args.rcvbuf)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    sock.bind((args.bind, args.port))
    sock.settimeout(args.timeout)
    rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    log(f"listening udp {args.bind}:{args.port} rcvbuf={rcvbuf}")
    seen = set()
    expect = 0
    reordered = dup = 0
    while True:
        data, _ = sock.recvfrom(65536)
        if data.startswith(b"END "):
            sent = int(data[4:])
            break
        (seq,) = struct.unpack("!Q", data[:8])
        if seq in seen:
            dup += 1
            continue
        seen.add(seq)
        if seq < expect:
            reordered += 1
        expect = max(expect, seq + 1)
    lost = sent - len(seen)
    result = {"sent": sent, "received": len(seen), "lost": lost, "reordered": reordered,
              "duplicated": dup}
    log(json.dumps(result))
    if lost or reordered or dup:
        # Tells the socket's own drops (RcvbufErrors) from the network's.
        raise ValueError(f"udp stream damaged: {result}; this namespace's {udp_snmp()}")


def udp_snmp():
    """The Udp: line of /proc/net/snmp (of the namespace this process runs in), as name=value."""
    try:
        rows = [l.split() for l in open("/proc/net/snmp") if l.startswith("Udp:")]
        return " ".join(f"{k}={v}" for k, v in zip(rows[0][1:], rows[1][1:]))
    except (OSError, IndexError) as e:
        return f"no /proc/net/snmp ({e})"


def udp_tag(args):
    """Echo servers on --count ports from --port: each answers with its own port, then the
    payload, so a prober sees which backend a datagram reached."""
    socks = []
    for i in range(args.count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((args.bind, args.port + i))
        socks.append(sock)
    log(f"listening udp {args.bind}:{args.port}-{args.port + args.count - 1}")
    sel = selectors.DefaultSelector()
    for sock in socks:
        sel.register(sock, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            data, peer = sock.recvfrom(65536)
            sock.sendto(f"{sock.getsockname()[1]} ".encode() + data, peer)


def udp_probe(args):
    """New flows (a fresh socket each) to --port+i, i cycling over --count, until the --stop
    file appears: each must either get no answer (no rule) or an answer from backend port
    --backend+i (the whole rule). An answer from anywhere else fails.

    With --new-backend, the rule is being retargeted from --backend to --new-backend: every
    probe must be answered, wholly by one set (backend port and the probe's own token), and
    once the new set has answered the old one never may again. --sport makes every probe a new
    flow for certain: probe i leaves from --sport+i, never a port an earlier probe used."""
    answered = unanswered = old = new = 0
    i = 0
    while not os.path.exists(args.stop):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            if args.sport:
                sock.bind(("0.0.0.0", args.sport + i))
            sock.settimeout(args.probe_timeout)
            token = f"probe {i}".encode()
            port = args.port + i % args.count
            sock.sendto(token, (args.host, port))
            try:
                data, _ = sock.recvfrom(65536)
            except socket.timeout:
                if args.new_backend is not None:
                    raise ValueError(f"probe {i} to port {port} unanswered (old {old}, new {new})")
                unanswered += 1
            else:
                from_old = data == f"{args.backend + i % args.count} ".encode() + token
                from_new = (args.new_backend is not None and
                            data == f"{args.new_backend + i % args.count} ".encode() + token)
                if not (from_old or from_new):
                    raise ValueError(f"probe {i} to port {port} answered {data!r}")
                if from_old and new:
                    raise ValueError(f"probe {i} to port {port} answered by the old backend "
                                     f"after {new} answers from the new one: {data!r}")
                old += from_old
                new += from_new
                answered += 1
        i += 1
        time.sleep(args.pause)
    result = {"probes": i, "answered": answered, "unanswered": unanswered, "wrong": 0}
    if args.new_backend is not None:
        result.update(old=old, new=new)
    log(json.dumps(result))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["tcp-sink", "tcp-send", "tcp-churn", "udp-seq-send", "udp-seq-recv",
                                      "udp-tag", "udp-probe"])
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--host")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bytes", type=int,
                   help="tcp-send: stream size (20 MB); tcp-churn: largest payload (64 KiB); "
                        "udp-seq-send: datagram size (100)")
    p.add_argument("--chunk", type=int, default=65536)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--rate", type=float, default=2000, help="udp-seq-send: datagrams per second")
    p.add_argument("--stop", help="udp-seq-send: stop when this file exists")
    p.add_argument("--pause", type=float, default=0, help="tcp-churn, udp-probe: seconds between connections")
    p.add_argument("--count", type=int, default=1, help="udp-tag, udp-probe: ports from --port")
    p.add_argument("--backend", type=int, help="udp-probe: the first backend port")
    p.add_argument("--new-backend", type=int, help="udp-probe: the first port of the backends the rule moves to")
    p.add_argument("--sport", type=int, default=0, help="udp-probe: probe i's source port is --sport+i")
    p.add_argument("--probe-timeout", type=float, default=0.05, help="udp-probe: seconds to wait for an answer")
    p.add_argument("--rcvbuf", type=int, default=8 << 20, help="udp-seq-recv: SO_RCVBUF in bytes")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=30)
    args = p.parse_args()
    if args.bytes is None:
        args.bytes = {"tcp-send": 20_000_000, "tcp-churn": 65536}.get(args.role, 100)
    try:
        {"tcp-sink": tcp_sink, "tcp-send": tcp_send, "tcp-churn": tcp_churn,
         "udp-seq-send": udp_seq_send, "udp-seq-recv": udp_seq_recv,
         "udp-tag": udp_tag, "udp-probe": udp_probe}[args.role](args)
    except Exception as e:  # one line for the test log, non-zero exit for the test
        print(f"FAIL {args.role}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
