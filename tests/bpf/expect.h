// Assertions shared by the packet tests.
#pragma once

#include <catch2/catch.hpp>

#include "bpf_harness.h"
#include "packet.h"

namespace xnat::test {

// The datapath's output equals the expected frame byte for byte outside the two checksum
// fields, and both checksums verify with the independent oracle.
inline void check_frame(const Bytes &out, const Bytes &expected, bool udp_none = false)
{
    REQUIRE(out.size() == expected.size());
    Bytes a = out, e = expected;
    for (size_t off : {ip_check_offset(), l4_check_offset(expected)}) {
        a[off] = a[off + 1] = 0;
        e[off] = e[off + 1] = 0;
    }
    INFO("got\n" << hex(out) << "\nexpected\n" << hex(expected));
    CHECK(hex(a) == hex(e));
    CHECK(ipv4_checksum_ok(out));
    if (fields(out).proto == kIcmp)
        CHECK(icmp_checksum_ok(out));
    else
        CHECK(l4_checksum_ok(out, udp_none));
}

inline void check_untouched(const RunResult &r, const Bytes &in, Hook hook)
{
    CHECK(r.verdict == pass_verdict(hook));
    CHECK(hex(r.out) == hex(in));
}

} // namespace xnat::test
