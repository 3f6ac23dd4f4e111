#!/usr/bin/env python3
"""Self-test for pcp_client.py, needing no NAT: a fake server on 127.0.0.1 (an ephemeral
port, passed with the client's hidden --port) answers with bytes written out by hand,
word by word, from the figures of RFC 6887 §7.1/§7.2/§11.1/§11.2/§7.3 and RFC 6886
§3.2/§3.3. Each case runs the client as a command, checks the exact request it sent and
every field it printed. Exits non-zero on any mismatch."""
import json
import os
import socket
import subprocess
import sys
import threading

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pcp_client.py")
NONCE = "0102030405060708090a0b0c"
failures = []


def words(*parts):
    """Hex words, spaces allowed, to bytes: keeps the hand-built packets readable."""
    return bytes.fromhex("".join(parts).replace(" ", ""))


# ---------------------------------------------------------------- hand-built packets

# RFC 6887 §7.1 + §11.1: a MAP request from 127.0.0.1 for TCP internal port 8080,
# suggesting port 40000 and no particular address, lifetime 3600, PREFER_FAILURE.
MAP_REQUEST = words(
    "02 01 0000",                            # version 2, R=0 opcode 1 (MAP), reserved
    "00000e10",                              # requested lifetime 3600
    "00000000 00000000 0000ffff 7f000001",   # client IP ::ffff:127.0.0.1
    NONCE,                                   # mapping nonce, 96 bits
    "06 000000",                             # protocol 6 (TCP), reserved 24 bits
    "1f90 9c40",                             # internal port 8080, suggested external 40000
    "00000000 00000000 0000ffff 00000000",   # suggested external ::ffff:0.0.0.0
    "02 00 0000",                            # option PREFER_FAILURE, reserved, length 0
)

# RFC 6887 §7.2 + §11.2: its SUCCESS answer, with a THIRD_PARTY option (§13.1) and a
# FILTER option (§13.3), and an unknown option whose data needs padding (§7.3), to
# exercise the option decoding.
MAP_RESPONSE = words(
    "02 81 00 00",                           # version 2, R=1 opcode 1, reserved, SUCCESS
    "00000e10",                              # lifetime 3600
    "00003039",                              # epoch time 12345
    "00000000 00000000 00000000",            # reserved 96 bits
    NONCE,
    "06 000000",
    "1f90 9c40",                             # internal 8080, assigned external 40000
    "00000000 00000000 0000ffff cb007107",   # assigned external ::ffff:203.0.113.7
    "01 00 0010",                            # THIRD_PARTY, length 16
    "00000000 00000000 0000ffff c0a80105",   #   ::ffff:192.168.1.5
    "03 00 0014",                            # FILTER, length 20
    "00 18 0050",                            #   reserved, prefix length 24, port 80
    "20010db8 00000000 00000000 00000001",   #   2001:db8::1
    "80 00 0002 abcd 0000",                  # option 128, length 2, padded to a word
)

# An error answer: ADDRESS_MISMATCH (§7.4, 12) to a request whose client IP field was
# overridden; §7.2 error answers carry the request's opcode data back.
MISMATCH_REQUEST = words(
    "02 01 0000", "00001c20",                # MAP, lifetime 7200
    "00000000 00000000 0000ffff 0a090909",   # client IP ::ffff:10.9.9.9 (overridden)
    NONCE, "11 000000", "0035 0000",         # UDP, internal 53, no suggested port
    "00000000 00000000 0000ffff 00000000",
    "c8 00 0004 00000000",                   # option 200, length 4, zero data
)
MISMATCH_RESPONSE = words(
    "02 81 00 0c", "00000708", "00000064", "00000000 00000000 00000000",
    NONCE, "11 000000", "0035 0000",
    "00000000 00000000 0000ffff 00000000",
    "c8 00 0004 00000000",
)

# RFC 6887 §14.1: ANNOUNCE request (no opcode data, lifetime 0) and its answer.
ANNOUNCE_REQUEST = words("02 00 0000", "00000000", "00000000 00000000 0000ffff 7f000001")
ANNOUNCE_RESPONSE = words("02 80 00 00", "00000000", "0000002a", "00000000 00000000 00000000")

# RFC 6886 §3.2 / §3.3.
NATPMP_ADDRESS_REQUEST = words("00 00")
NATPMP_ADDRESS_RESPONSE = words("00 80 0000", "0000003c", "c6336401")   # 198.51.100.1
NATPMP_MAP_REQUEST = words("00 01 0000", "1388 1389", "00000e10")      # UDP 5000 -> 5001
NATPMP_MAP_RESPONSE = words("00 81 0000", "0000003c", "1388 138a", "00000708")


def with_bad_length(packet):
    return packet + b"\x00\x00"       # 2 octets more: not a whole number of words


def with_other_nonce(packet):
    return packet[:24] + bytes(12) + packet[36:]


def without_r_bit(packet):
    return packet[:1] + bytes([packet[1] & 0x7F]) + packet[2:]


def with_reserved_set(packet):
    return packet[:2] + b"\x01" + packet[3:]


# ---------------------------------------------------------------- fake server

class FakeServer:
    """Answers each datagram with respond(request) (None: stay silent), keeps them all."""

    def __init__(self, respond):
        self.respond = respond
        self.requests = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while self.running:
            try:
                data, peer = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            self.requests.append(data)
            answer = self.respond(data)
            if answer is not None:
                self.sock.sendto(answer, peer)

    def stop(self):
        self.running = False
        self.thread.join()
        self.sock.close()


def run_client(args):
    proc = subprocess.run([sys.executable, CLIENT] + args, capture_output=True, text=True,
                          timeout=30)
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        out = {"unparsable_stdout": proc.stdout, "stderr": proc.stderr}
    return proc.returncode, out


def exchange(command, answer, timeout="1"):
    """Runs `pcp_client.py --server 127.0.0.1 --port P <command>` against a fake server
    that answers with `answer`; returns (exit status, JSON, requests the server saw)."""
    server = FakeServer(lambda _req: answer)
    try:
        code, out = run_client(["--server", "127.0.0.1", "--port", str(server.port),
                                "--timeout", timeout] + command)
    finally:
        server.stop()
    return code, out, server.requests


# ---------------------------------------------------------------- checks

def check(case, what, got, want):
    if got != want:
        failures.append(f"{case}: {what}: got {got!r}, want {want!r}")


def check_fields(case, out, want):
    for key, value in want.items():
        check(case, key, out.get(key), value)


def check_request(case, requests, want):
    check(case, "request bytes", requests[0].hex() if requests else None, want.hex())


MAP_ARGS = ["map", "--proto", "tcp", "--internal-port", "8080", "--suggested-port", "40000",
            "--lifetime", "3600", "--nonce", NONCE, "--prefer-failure"]


def case_map_success():
    code, out, reqs = exchange(MAP_ARGS, MAP_RESPONSE)
    check_request("map", reqs, MAP_REQUEST)
    check("map", "exit", code, 0)
    check_fields("map", out, {
        "family": "pcp", "version": 2, "opcode": 1, "opcode_name": "MAP", "response": True,
        "result_code": 0, "result_name": "SUCCESS", "lifetime": 3600, "epoch": 12345,
        "length": len(MAP_RESPONSE), "nonce": NONCE, "request_nonce": NONCE, "protocol": 6,
        "protocol_name": "tcp", "internal_port": 8080, "assigned_external_port": 40000,
        "assigned_external_address": "203.0.113.7", "well_formed": True, "problems": [],
        "decoded": True, "response_hex": MAP_RESPONSE.hex(),
    })
    check("map", "options", out.get("options"), [
        {"code": 1, "name": "THIRD_PARTY", "length": 16,
         "data": "00000000000000000000ffffc0a80105", "address": "192.168.1.5"},
        {"code": 3, "name": "FILTER", "length": 20,
         "data": "0018005020010db8000000000000000000000001",
         "prefix_length": 24, "remote_peer_port": 80, "remote_peer_address": "2001:db8::1"},
        {"code": 128, "name": "UNKNOWN", "length": 2, "data": "abcd"},
    ])


def case_map_error():
    args = ["map", "--proto", "udp", "--internal-port", "53", "--nonce", NONCE,
            "--client-ip", "10.9.9.9", "--unknown-option", "200"]
    code, out, reqs = exchange(args, MISMATCH_RESPONSE)
    check_request("error", reqs, MISMATCH_REQUEST)
    check("error", "exit", code, 0)
    check_fields("error", out, {
        "result_code": 12, "result_name": "ADDRESS_MISMATCH", "lifetime": 1800, "epoch": 100,
        "protocol": 17, "internal_port": 53, "assigned_external_port": 0,
        "assigned_external_address": "0.0.0.0", "well_formed": True,
        "options": [{"code": 200, "name": "UNKNOWN", "length": 4, "data": "00000000"}],
    })


def case_malformed_answers():
    """Each defect alone must make well_formed false, with the reason in problems."""
    defects = {
        "not a multiple of 4": with_bad_length(MAP_RESPONSE),
        "does not echo the request's": with_other_nonce(MAP_RESPONSE),
        "R bit is not set": without_r_bit(MAP_RESPONSE),
        "reserved octet is 1": with_reserved_set(MAP_RESPONSE),
        "exceeds 1100": MAP_RESPONSE + bytes(1108 - len(MAP_RESPONSE)),  # 1108 octets
    }
    for reason, answer in defects.items():
        case = f"malformed ({reason})"
        code, out, _ = exchange(MAP_ARGS, answer)
        check(case, "exit", code, 0)
        check(case, "well_formed", out.get("well_formed"), False)
        problems = out.get("problems") or []
        check(case, "problem named", any(reason in p for p in problems), True)
        check(case, "length", out.get("length"), len(answer))


def case_announce():
    code, out, reqs = exchange(["announce"], ANNOUNCE_RESPONSE)
    check_request("announce", reqs, ANNOUNCE_REQUEST)
    check("announce", "exit", code, 0)
    check_fields("announce", out, {"opcode": 0, "opcode_name": "ANNOUNCE", "response": True,
                                   "result_name": "SUCCESS", "epoch": 42, "length": 24,
                                   "options": [], "well_formed": True})


def case_natpmp():
    code, out, reqs = exchange(["natpmp-address"], NATPMP_ADDRESS_RESPONSE)
    check_request("natpmp-address", reqs, NATPMP_ADDRESS_REQUEST)
    check("natpmp-address", "exit", code, 0)
    check_fields("natpmp-address", out, {
        "family": "natpmp", "version": 0, "opcode": 128, "result_code": 0, "epoch": 60,
        "external_address": "198.51.100.1", "well_formed": True})
    args = ["natpmp-map", "--proto", "udp", "--internal-port", "5000",
            "--suggested-port", "5001", "--lifetime", "3600"]
    code, out, reqs = exchange(args, NATPMP_MAP_RESPONSE)
    check_request("natpmp-map", reqs, NATPMP_MAP_REQUEST)
    check("natpmp-map", "exit", code, 0)
    check_fields("natpmp-map", out, {
        "opcode": 129, "result_code": 0, "epoch": 60, "internal_port": 5000,
        "mapped_external_port": 5002, "lifetime": 1800, "well_formed": True})


def case_raw_and_failures():
    # raw: the bytes go out untouched; an answer too short to read comes back as hex.
    code, out, reqs = exchange(["raw", "0201"], words("0281"))
    check_request("raw", reqs, words("0201"))
    check("raw", "exit", code, 4)
    check_fields("raw", out, {"decoded": False, "response_hex": "0281"})
    # raw MAP: the nonce in the raw bytes is what the answer must echo.
    code, out, _ = exchange(["raw", MAP_REQUEST.hex()], with_other_nonce(MAP_RESPONSE))
    check("raw nonce", "well_formed", out.get("well_formed"), False)
    # Silence: both attempts go out, then exit 3.
    code, out, reqs = exchange(["announce"], None, timeout="0.2")
    check("timeout", "exit", code, 3)
    check("timeout", "error", out.get("error"), "timeout")
    check("timeout", "attempts sent", len(reqs), 2)
    # Usage errors: exit 2, still JSON.
    code, out = run_client(["map", "--proto", "tcp"])
    check("usage", "exit", code, 2)
    check("usage", "error", out.get("error"), "usage")
    code, out = run_client(["--server", "127.0.0.1", "map", "--proto", "tcp",
                            "--internal-port", "1", "--nonce", "abcd"])
    check("usage nonce", "exit", code, 2)


def case_listen():
    """Unicast announcements to a spare port stand in for the multicast ones."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    proc = subprocess.Popen([sys.executable, CLIENT, "listen", "--seconds", "1.5",
                             "--listen-port", str(port)], stdout=subprocess.PIPE, text=True)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    threading.Event().wait(0.5)             # let the listener bind
    sender.sendto(ANNOUNCE_RESPONSE, ("127.0.0.1", port))
    sender.sendto(NATPMP_ADDRESS_RESPONSE, ("127.0.0.1", port))
    sender.close()
    stdout, _ = proc.communicate(timeout=30)
    out = json.loads(stdout)
    check("listen", "exit", proc.returncode, 0)
    got = [(d.get("family"), d.get("opcode")) for d in out.get("datagrams", [])]
    check("listen", "datagrams", got, [("pcp", 0), ("natpmp", 128)])


def main():
    for case in (case_map_success, case_map_error, case_malformed_answers, case_announce,
                 case_natpmp, case_raw_and_failures, case_listen):
        before = len(failures)
        case()
        print(f"{'ok  ' if len(failures) == before else 'FAIL'} {case.__name__}")
    for failure in failures:
        print("  " + failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
