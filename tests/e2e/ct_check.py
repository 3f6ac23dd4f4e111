#!/usr/bin/env python3
"""Checks a connection table for consistency: ct_check.py CT_DUMP.json CONNS.json [COUNT].

CT_DUMP is `bpftool map dump pinned PIN/xnat_ct -j` (both halves of every flow, as stored);
CONNS is `xnat-map conns --json`. Passes (exit 0, one summary line) when no key appears twice,
every half's peer exists and points back at it with the other direction (no orphaned half),
the originals are exactly the connections conns lists, and, given COUNT, there are COUNT."""
import ipaddress
import json
import socket
import sys

ORIGINAL, REPLY = 0, 1


def tup(k):
    """(src, dst, sport, dport, proto) from a BTF-formatted key (network-order fields read as
    host integers by bpftool)."""
    addr = lambda v: str(ipaddress.IPv4Address(socket.ntohl(v & 0xffffffff)))
    port = lambda v: socket.ntohs(v & 0xffff)
    return (addr(k["saddr"]), addr(k["daddr"]), port(k["sport"]), port(k["dport"]), k["proto"])


def entries(dump):
    for e in dump:
        f = e.get("formatted", e)
        yield f["key"], f["value"]


def main():
    with open(sys.argv[1]) as f:
        dump = json.load(f)
    with open(sys.argv[2]) as f:
        conns = json.load(f)
    want = int(sys.argv[3]) if len(sys.argv) > 3 else None
    errors = []
    table = {}
    for key, value in entries(dump):
        t = tup(key)
        if t in table:
            errors.append(f"duplicate key {t}")
        table[t] = value
    originals = 0
    for t, v in table.items():
        peer = tup(v["peer"])
        other = table.get(peer)
        if other is None:
            errors.append(f"orphaned half {t} (dir {v['dir']}): peer {peer} missing")
            continue
        if tup(other["peer"]) != t:
            errors.append(f"half {t} points at {peer}, which points at {tup(other['peer'])}")
        if {v["dir"], other["dir"]} != {ORIGINAL, REPLY}:
            errors.append(f"halves {t} and {peer} have directions {v['dir']} and {other['dir']}")
        originals += v["dir"] == ORIGINAL
    listed = [(c["original"]["src"], c["original"]["dst"], c["original"]["sport"],
               c["original"]["dport"]) for c in conns]
    if len(set(listed)) != len(listed):
        errors.append(f"conns lists {len(listed) - len(set(listed))} duplicate connections")
    stored = {t[:4] for t, v in table.items() if v["dir"] == ORIGINAL}
    if set(listed) != stored:
        errors.append(f"conns lists {len(listed)} connections, the map holds {len(stored)} originals "
                      f"({len(set(listed) - stored)} listed but not stored, "
                      f"{len(stored - set(listed))} stored but not listed)")
    if want is not None and originals != want:
        errors.append(f"{originals} connections stored, expected {want}")
    if errors:
        print("; ".join(errors[:10]) + (f"; and {len(errors) - 10} more" if len(errors) > 10 else ""))
        sys.exit(1)
    print(f"consistent: {len(table)} entries = {originals} connections x 2 halves, "
          f"{len(listed)} listed by conns, no duplicates, no orphans")


if __name__ == "__main__":
    main()
