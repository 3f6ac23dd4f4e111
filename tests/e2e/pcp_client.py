#!/usr/bin/env python3
"""A PCP (RFC 6887) and NAT-PMP (RFC 6886) client for the end-to-end tests.

Written from the RFCs' wire formats alone, never from the server in lib/portmap/,
so that it tests the server instead of repeating its mistakes. Standard library only.

Every run prints ONE JSON object on stdout. Exit status:
  0  a response (or, for `listen`, at least one datagram) arrived and was decoded
  1  a local error (socket, bind)
  2  usage error
  3  timeout: nothing arrived
  4  something arrived but could not be decoded (its hex is printed)

Commands (see --help):
  announce | map | raw HEX | natpmp-address | natpmp-map | listen
"""
import argparse
import fcntl
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import time

# RFC 6887 §19.1: the server listens on 5351; clients and multicast announcements use 5350
# (RFC 6886 §3.2.1 uses the same ports and group for NAT-PMP).
SERVER_PORT = 5351
CLIENT_PORT = 5350
ANNOUNCE_GROUP = "224.0.0.1"

PCP_VERSION = 2          # RFC 6887 §9: this document's version
NATPMP_VERSION = 0       # RFC 6886 §3
MAX_PCP_MESSAGE = 1100   # RFC 6887 §7: requests and responses are at most 1100 octets
HEADER_LEN = 24          # RFC 6887 §7.1/§7.2: the common header is 24 octets either way
MAP_DATA_LEN = 36        # RFC 6887 §11.1: nonce 12 + protocol 1 + reserved 3 + ports 4 + address 16
NONCE_LEN = 12           # RFC 6887 §11.1: 96-bit mapping nonce
R_BIT = 0x80             # RFC 6887 §7.1: top bit of the second octet; 1 in responses

OPCODES = {0: "ANNOUNCE", 1: "MAP", 2: "PEER"}   # RFC 6887 §19.2
OP_ANNOUNCE, OP_MAP = 0, 1

# RFC 6887 §7.4, in order from 0.
RESULT_NAMES = [
    "SUCCESS", "UNSUPP_VERSION", "NOT_AUTHORIZED", "MALFORMED_REQUEST", "UNSUPP_OPCODE",
    "UNSUPP_OPTION", "MALFORMED_OPTION", "NETWORK_FAILURE", "NO_RESOURCES", "UNSUPP_PROTOCOL",
    "USER_EX_QUOTA", "CANNOT_PROVIDE_EXTERNAL", "ADDRESS_MISMATCH", "EXCESSIVE_REMOTE_PEERS",
]

# RFC 6887 §13: option codes.
OPT_THIRD_PARTY, OPT_PREFER_FAILURE, OPT_FILTER = 1, 2, 3
OPTION_NAMES = {OPT_THIRD_PARTY: "THIRD_PARTY", OPT_PREFER_FAILURE: "PREFER_FAILURE",
                OPT_FILTER: "FILTER"}

# RFC 6887 §11.1: IANA protocol numbers; 0 means all protocols.
PROTOCOLS = {"all": 0, "tcp": 6, "udp": 17}
PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}

# RFC 6886 §3.2/§3.3: request opcodes; a response's opcode is 128 + the request's.
NATPMP_OP_ADDRESS, NATPMP_OP_UDP, NATPMP_OP_TCP = 0, 1, 2
NATPMP_OPCODES = {NATPMP_OP_ADDRESS: "ADDRESS", NATPMP_OP_UDP: "MAP_UDP", NATPMP_OP_TCP: "MAP_TCP"}
# RFC 6886 §3.5.
NATPMP_RESULT_NAMES = ["SUCCESS", "UNSUPP_VERSION", "NOT_AUTHORIZED", "NETWORK_FAILURE",
                       "OUT_OF_RESOURCES", "UNSUPP_OPCODE"]

EXIT_OK, EXIT_LOCAL, EXIT_USAGE, EXIT_TIMEOUT, EXIT_UNDECODABLE = 0, 1, 2, 3, 4

SIOCGIFADDR = 0x8915     # Linux <linux/sockios.h>; Python does not name it


class UsageError(Exception):
    pass


# ---------------------------------------------------------------- addresses

def to_pcp_address(text):
    """16-octet PCP address field. RFC 6887 §5: IPv4 goes in as IPv4-mapped IPv6
    (::ffff:a.b.c.d), including the all-zeros IPv4 address ::ffff:0.0.0.0."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise UsageError(f"not an IP address: {text!r}")
    if addr.version == 4:
        return b"\x00" * 10 + b"\xff\xff" + addr.packed
    return addr.packed


def from_pcp_address(field):
    """Text for a 16-octet address field: dotted IPv4 when v4-mapped. RFC 6887 §5 says to
    check all 96 leading bits, not just the 0xffff, so ::1.2.3.4 stays IPv6."""
    if field[:12] == b"\x00" * 10 + b"\xff\xff":
        return str(ipaddress.IPv4Address(field[12:]))
    return str(ipaddress.IPv6Address(field))


def parse_ipv4_or_6(text):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise UsageError(f"not an IP address: {text!r}")


# ---------------------------------------------------------------- PCP encoding

def pcp_request_header(opcode, lifetime, client_ip_field):
    """RFC 6887 §7.1: version, R=0|opcode, 16 reserved bits, requested lifetime,
    the client's IP address as the client sees it (the server compares it with the
    packet's source to detect an intervening NAT: ADDRESS_MISMATCH)."""
    return struct.pack("!BBHI", PCP_VERSION, opcode & 0x7F, 0, lifetime) + client_ip_field


def map_opcode_data(nonce, protocol, internal_port, suggested_port, suggested_address_field):
    """RFC 6887 §11.1: nonce, protocol, 24 reserved bits, internal port, suggested
    external port, suggested external address."""
    return (nonce + struct.pack("!B3xHH", protocol, internal_port, suggested_port)
            + suggested_address_field)


def pcp_option(code, data=b""):
    """RFC 6887 §7.3: code, reserved octet, length of the data (without padding), then
    the data padded with zeros to a whole number of 32-bit words."""
    pad = (-len(data)) % 4
    return struct.pack("!BBH", code, 0, len(data)) + data + b"\x00" * pad


# ---------------------------------------------------------------- NAT-PMP encoding

def natpmp_address_request():
    """RFC 6886 §3.2: two octets, version 0 and opcode 0."""
    return struct.pack("!BB", NATPMP_VERSION, NATPMP_OP_ADDRESS)


def natpmp_map_request(opcode, internal_port, suggested_port, lifetime):
    """RFC 6886 §3.3: version, opcode (1 UDP, 2 TCP), 16 reserved bits, internal port,
    suggested external port, requested lifetime: 12 octets."""
    return struct.pack("!BBHHHI", NATPMP_VERSION, opcode, 0, internal_port, suggested_port,
                       lifetime)


# ---------------------------------------------------------------- decoding

def result_name(table, code):
    return table[code] if code < len(table) else f"UNKNOWN_{code}"


def decode_options(data, problems):
    """RFC 6887 §7.3 options, with the known ones' contents spelled out."""
    options = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 4:
            problems.append(f"option header truncated at offset {HEADER_LEN + offset}")
            break
        code, reserved, length = struct.unpack_from("!BBH", data, offset)
        body = data[offset + 4:offset + 4 + length]
        option = {"code": code, "name": OPTION_NAMES.get(code, "UNKNOWN"),
                  "length": length, "data": body.hex()}
        if reserved:
            problems.append(f"option {code}: reserved octet is {reserved}, not 0")
        if len(body) < length:
            problems.append(f"option {code}: length {length} runs past the end of the message")
        option.update(decode_option_body(code, body))
        options.append(option)
        offset += 4 + length + (-length) % 4
    return options


def decode_option_body(code, body):
    """RFC 6887 §13.1 THIRD_PARTY: one address. §13.3 FILTER: reserved, prefix length,
    remote peer port, remote peer address. PREFER_FAILURE (§13.2) carries nothing."""
    if code == OPT_THIRD_PARTY and len(body) == 16:
        return {"address": from_pcp_address(body)}
    if code == OPT_FILTER and len(body) == 20:
        _, prefix, port = struct.unpack_from("!BBH", body)
        return {"prefix_length": prefix, "remote_peer_port": port,
                "remote_peer_address": from_pcp_address(body[4:])}
    return {}


def decode_map_data(data, expect_nonce, problems):
    """RFC 6887 §11.2: the response carries the request's nonce, protocol and internal
    port back, with the assigned external port and address in the suggested fields."""
    nonce = data[:NONCE_LEN]
    protocol, r1, r2, r3, internal_port, external_port = struct.unpack_from(
        "!BBBBHH", data, NONCE_LEN)
    if (r1, r2, r3) != (0, 0, 0):
        problems.append("MAP reserved octets are not zero")
    # §11.3: the client matches a response to its mapping by the nonce (among others).
    if expect_nonce is not None and nonce != expect_nonce:
        problems.append(f"nonce {nonce.hex()} does not echo the request's {expect_nonce.hex()}")
    return {"nonce": nonce.hex(), "protocol": protocol,
            "protocol_name": PROTOCOL_NAMES.get(protocol, str(protocol)),
            "internal_port": internal_port, "assigned_external_port": external_port,
            "assigned_external_address": from_pcp_address(data[20:36])}


def decode_pcp(data, expect_opcode=None, expect_nonce=None):
    """RFC 6887 §7.2 response header, then the opcode's data and the options.
    `well_formed` is the RFC's requirements on a server's response, checked strictly:
    whole words (§7), at most 1100 octets (§7), R set (§7.2), reserved fields zero
    (§7.2, §11.2, §7.3), the request's opcode (§7.2) and nonce (§11.2) echoed."""
    problems = []
    version, r_opcode, reserved, result, lifetime, epoch = struct.unpack_from("!BBBBII", data)
    opcode = r_opcode & 0x7F
    out = {"family": "pcp", "version": version, "opcode": opcode,
           "opcode_name": OPCODES.get(opcode, "UNKNOWN"), "response": bool(r_opcode & R_BIT),
           "result_code": result, "result_name": result_name(RESULT_NAMES, result),
           "lifetime": lifetime, "epoch": epoch, "length": len(data)}
    if len(data) % 4:
        problems.append(f"length {len(data)} is not a multiple of 4")
    if len(data) > MAX_PCP_MESSAGE:
        problems.append(f"length {len(data)} exceeds {MAX_PCP_MESSAGE}")
    if not out["response"]:
        problems.append("R bit is not set")
    if reserved:
        problems.append(f"header reserved octet is {reserved}, not 0")
    if any(data[12:HEADER_LEN]):
        problems.append("header's 96 reserved bits are not zero")
    if expect_opcode is not None and opcode != expect_opcode:
        problems.append(f"opcode {opcode} does not echo the request's {expect_opcode}")
    rest = data[HEADER_LEN:]
    if opcode == OP_MAP:
        if len(rest) < MAP_DATA_LEN:
            problems.append(f"MAP response shorter than {HEADER_LEN + MAP_DATA_LEN} octets")
            out["payload"] = rest.hex()
            rest = None
        else:
            out.update(decode_map_data(rest, expect_nonce, problems))
            rest = rest[MAP_DATA_LEN:]
    elif opcode != OP_ANNOUNCE:
        # Opcode-specific data of an opcode we do not know: its length is unknown too.
        out["payload"] = rest.hex()
        rest = None
    if rest is not None:
        out["options"] = decode_options(rest, problems)
    out["well_formed"] = not problems
    out["problems"] = problems
    return out


def decode_natpmp(data, expect_opcode=None):
    """RFC 6886 §3.2 (address: 12 octets) and §3.3 (mapping: 16 octets) responses.
    Error responses may stop after the epoch (§3.5), so fields appear as far as present."""
    problems = []
    version, opcode = data[0], data[1]
    out = {"family": "natpmp", "version": version, "opcode": opcode,
           "opcode_name": NATPMP_OPCODES.get(opcode & 0x7F, "UNKNOWN"),
           "response": opcode >= 128, "length": len(data)}
    if opcode < 128:
        problems.append("opcode below 128: not a response")
    if expect_opcode is not None and opcode != 128 + expect_opcode:
        problems.append(f"opcode {opcode} is not 128 + the request's {expect_opcode}")
    if len(data) >= 8:
        result, epoch = struct.unpack_from("!HI", data, 2)
        out.update(result_code=result, result_name=result_name(NATPMP_RESULT_NAMES, result),
                   epoch=epoch)
    else:
        problems.append("shorter than 8 octets: no result code and epoch")
    want = {128 + NATPMP_OP_ADDRESS: 12, 128 + NATPMP_OP_UDP: 16, 128 + NATPMP_OP_TCP: 16}
    if opcode == 128 + NATPMP_OP_ADDRESS and len(data) >= 12:
        out["external_address"] = str(ipaddress.IPv4Address(data[8:12]))
    elif opcode in (128 + NATPMP_OP_UDP, 128 + NATPMP_OP_TCP) and len(data) >= 16:
        internal, mapped, lifetime = struct.unpack_from("!HHI", data, 8)
        out.update(internal_port=internal, mapped_external_port=mapped, lifetime=lifetime)
    if opcode in want and len(data) != want[opcode] and out.get("result_code") == 0:
        problems.append(f"length {len(data)}, expected {want[opcode]} for a success")
    out["well_formed"] = not problems
    out["problems"] = problems
    return out


def decode_datagram(data, expect_opcode=None, expect_nonce=None):
    """Dispatch on the version octet, as RFC 6887 §9 has servers do: 0 is NAT-PMP,
    anything else is read as PCP. None when there is too little to read."""
    if len(data) >= 2 and data[0] == NATPMP_VERSION:
        return decode_natpmp(data, expect_opcode)
    if len(data) >= HEADER_LEN:
        return decode_pcp(data, expect_opcode, expect_nonce)
    return None


# ---------------------------------------------------------------- sockets

def open_client_socket(server, port, bind):
    """A UDP socket connected to the server, so the kernel drops datagrams from anyone
    else (RFC 6887 §8.3: responses must come from the address and port we sent to), and
    getsockname() tells us the source address to put in the PCP header."""
    family = socket.AF_INET6 if parse_ipv4_or_6(server).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if bind:
        sock.bind((bind, 0))
    sock.connect((server, port))
    return sock


def exchange(sock, request, timeout):
    """Send, wait; on silence send the same bytes once more (RFC 6887 §8.1.1 retransmits
    the identical request) and wait again. At most 2 x timeout in all."""
    for attempt in (1, 2):
        sock.send(request)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                break
            try:
                return sock.recv(65535), attempt
            except ConnectionRefusedError:
                # An ICMP port unreachable from an earlier send: keep waiting.
                continue
    return None, 2


def interface_address(name):
    """The interface's IPv4 address (SIOCGIFADDR), for joining the group on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("256s", name.encode()[:15])
        try:
            res = fcntl.ioctl(s.fileno(), SIOCGIFADDR, req)
        except OSError as e:
            raise UsageError(f"interface {name}: {e.strerror}")
    return socket.inet_ntoa(res[20:24])


# ---------------------------------------------------------------- commands

def build_announce(args, local_ip):
    """RFC 6887 §14.1: ANNOUNCE has no opcode data; requested lifetime 0."""
    return pcp_request_header(OP_ANNOUNCE, 0, to_pcp_address(args.client_ip or local_ip)), \
        OP_ANNOUNCE, None


def parse_nonce(text):
    if text is None:
        return os.urandom(NONCE_LEN)       # §11.1: a random nonce per mapping
    try:
        nonce = bytes.fromhex(text)
    except ValueError:
        raise UsageError(f"--nonce is not hex: {text!r}")
    if len(nonce) != NONCE_LEN:
        raise UsageError(f"--nonce must be {NONCE_LEN} octets (24 hex digits)")
    return nonce


def default_suggested_address(local_ip):
    """RFC 6887 §11.1: no preference is the all-zeros address of the wanted family:
    ::ffff:0.0.0.0 for IPv4, :: for IPv6."""
    return "0.0.0.0" if ipaddress.ip_address(local_ip).version == 4 else "::"


def build_map(args, local_ip):
    nonce = parse_nonce(args.nonce)
    client_field = to_pcp_address(args.client_ip or local_ip)
    suggested = args.suggested_address or default_suggested_address(local_ip)
    body = map_opcode_data(nonce, PROTOCOLS[args.proto], args.internal_port,
                           args.suggested_port, to_pcp_address(suggested))
    options = b""
    if args.third_party:
        options += pcp_option(OPT_THIRD_PARTY, to_pcp_address(args.third_party))
    if args.prefer_failure:
        options += pcp_option(OPT_PREFER_FAILURE)
    for code in args.unknown_option or []:
        options += pcp_option(code, b"\x00" * 4)
    header = pcp_request_header(OP_MAP, args.lifetime, client_field)
    return header + body + options, OP_MAP, nonce


def build_raw(args, local_ip):
    try:
        data = bytes.fromhex(args.hex)
    except ValueError:
        raise UsageError(f"raw: not hex: {args.hex!r}")
    # Hold the answer to what the bytes ask, where they ask something we can read.
    opcode = nonce = None
    if len(data) >= 2 and data[0] == PCP_VERSION:
        opcode = data[1] & 0x7F
        if opcode == OP_MAP and len(data) >= HEADER_LEN + MAP_DATA_LEN:
            nonce = data[HEADER_LEN:HEADER_LEN + NONCE_LEN]
    elif len(data) >= 2 and data[0] == NATPMP_VERSION:
        opcode = data[1]
    return data, opcode, nonce


def build_natpmp_address(args, local_ip):
    return natpmp_address_request(), NATPMP_OP_ADDRESS, None


def build_natpmp_map(args, local_ip):
    opcode = NATPMP_OP_UDP if args.proto == "udp" else NATPMP_OP_TCP
    return natpmp_map_request(opcode, args.internal_port, args.suggested_port,
                              args.lifetime), opcode, None


BUILDERS = {"announce": build_announce, "map": build_map, "raw": build_raw,
            "natpmp-address": build_natpmp_address, "natpmp-map": build_natpmp_map}


def run_request(args):
    if not args.server:
        raise UsageError(f"{args.command}: --server is required")
    try:
        sock = open_client_socket(args.server, args.port, args.bind)
    except OSError as e:
        return {"error": "socket", "message": str(e)}, EXIT_LOCAL
    with sock:
        local_ip = sock.getsockname()[0]
        request, opcode, nonce = BUILDERS[args.command](args, local_ip)
        sent = {"request_hex": request.hex(), "local_address": local_ip,
                "local_port": sock.getsockname()[1]}
        if nonce is not None:
            sent["request_nonce"] = nonce.hex()
        try:
            data, attempts = exchange(sock, request, args.timeout)
        except OSError as e:
            return dict(sent, error="socket", message=str(e)), EXIT_LOCAL
    sent["attempts"] = attempts
    if data is None:
        return dict(sent, error="timeout", timeout=args.timeout), EXIT_TIMEOUT
    decoded = decode_datagram(data, opcode, nonce)
    if decoded is None:
        return dict(sent, decoded=False, response_hex=data.hex(), length=len(data)), \
            EXIT_UNDECODABLE
    return dict(sent, decoded=True, response_hex=data.hex(), **decoded), EXIT_OK


def open_listen_socket(port, interface):
    """Bound to the wildcard so unicast announcements (RFC 6887 §14.1.3) arrive too;
    shared (SO_REUSEADDR/SO_REUSEPORT) so it can sit beside other listeners. A failed
    group join is reported, not fatal: unicast still gets through."""
    local = interface_address(interface) if interface else "0.0.0.0"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("", port))
    mreq = socket.inet_aton(ANNOUNCE_GROUP) + socket.inet_aton(local)
    join_error = None
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    except OSError as e:
        join_error = str(e)
    return sock, local, join_error


def run_listen(args):
    try:
        sock, local, join_error = open_listen_socket(args.listen_port, args.interface)
    except OSError as e:
        return {"error": "socket", "message": str(e)}, EXIT_LOCAL
    datagrams = []
    start = time.monotonic()
    with sock:
        while True:
            left = start + args.seconds - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                break
            data, (src, sport) = sock.recvfrom(65535)
            entry = {"source": src, "source_port": sport,
                     "at": round(time.monotonic() - start, 3), "hex": data.hex()}
            decoded = decode_datagram(data)
            entry.update(decoded if decoded is not None else {"decoded": False})
            datagrams.append(entry)
    out = {"group": ANNOUNCE_GROUP, "port": args.listen_port, "interface": args.interface,
           "interface_address": local, "join_error": join_error, "seconds": args.seconds,
           "count": len(datagrams), "datagrams": datagrams}
    return out, EXIT_OK if datagrams else EXIT_TIMEOUT


# ---------------------------------------------------------------- command line

class JsonArgumentParser(argparse.ArgumentParser):
    """Usage errors as one JSON object on stdout, exit 2, like every other outcome."""

    def error(self, message):
        emit({"error": "usage", "message": message}, EXIT_USAGE)


def port_number(text):
    value = int(text, 0)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {text}")
    return value


def u32(text):
    value = int(text, 0)
    if not 0 <= value <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError(f"out of range for 32 bits: {text}")
    return value


def option_code(text):
    value = int(text, 0)
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"option code out of range: {text}")
    return value


def add_common(parser, in_subcommand):
    """The common options, accepted before or after the command. In the subcommands they
    default to SUPPRESS so they do not overwrite what was given before the command."""
    def default(value):
        return argparse.SUPPRESS if in_subcommand else value
    parser.add_argument("--server", default=default(None), help="PCP/NAT-PMP server address")
    parser.add_argument("--timeout", type=float, default=default(2.0),
                        help="seconds per attempt; one retry (default 2)")
    parser.add_argument("--bind", default=default(None), help="source address to bind")
    parser.add_argument("--port", type=port_number, default=default(SERVER_PORT),
                        help=argparse.SUPPRESS)   # for the self-test's fake server


def make_parser():
    parser = JsonArgumentParser(description=__doc__.split("\n\n")[0])
    add_common(parser, False)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=JsonArgumentParser)

    def command(name, help_text):
        p = sub.add_parser(name, help=help_text)
        add_common(p, True)
        return p

    command("announce", "PCP ANNOUNCE request (RFC 6887 §14.1)").add_argument(
        "--client-ip", help="client IP field instead of the socket's own address")

    p = command("map", "PCP MAP request (RFC 6887 §11)")
    p.add_argument("--proto", choices=sorted(PROTOCOLS), required=True)
    p.add_argument("--internal-port", type=port_number, required=True)
    p.add_argument("--suggested-port", type=port_number, default=0)
    p.add_argument("--suggested-address", help="suggested external address")
    p.add_argument("--lifetime", type=u32, default=7200)
    p.add_argument("--nonce", help="24 hex digits (default random)")
    p.add_argument("--prefer-failure", action="store_true", help="PREFER_FAILURE option")
    p.add_argument("--third-party", help="THIRD_PARTY option with this address")
    p.add_argument("--client-ip", help="client IP field instead of the socket's own address")
    p.add_argument("--unknown-option", type=option_code, action="append",
                   help="add an option with this code and 4 zero octets (repeatable)")

    command("raw", "send these bytes as they are").add_argument("hex")

    command("natpmp-address", "NAT-PMP external address request (RFC 6886 §3.2)")

    p = command("natpmp-map", "NAT-PMP mapping request (RFC 6886 §3.3)")
    p.add_argument("--proto", choices=["tcp", "udp"], required=True)
    p.add_argument("--internal-port", type=port_number, required=True)
    p.add_argument("--suggested-port", type=port_number, default=0)
    p.add_argument("--lifetime", type=u32, default=7200)

    p = command("listen", "collect announcements sent to 224.0.0.1:5350")
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--interface", help="join the group on this interface's address")
    p.add_argument("--listen-port", type=port_number, default=CLIENT_PORT,
                   help=argparse.SUPPRESS)        # for the self-test
    return parser


def emit(obj, code):
    print(json.dumps(obj, sort_keys=True))
    sys.stdout.flush()
    sys.exit(code)


def main(argv=None):
    args = make_parser().parse_args(argv)
    try:
        if args.command == "listen":
            out, code = run_listen(args)
        else:
            out, code = run_request(args)
    except UsageError as e:
        out, code = {"error": "usage", "message": str(e)}, EXIT_USAGE
    emit(out, code)


if __name__ == "__main__":
    main()
