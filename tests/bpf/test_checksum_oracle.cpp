// The oracle must itself be right before it judges the datapath.
#include <catch2/catch.hpp>

#include "packet.h"

using namespace xnat::test;

TEST_CASE("oracle: RFC 1071 worked example")
{
    // RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2, so the checksum is 220d.
    const uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    CHECK(internet_checksum(data, sizeof(data)) == 0x220d);
}

TEST_CASE("oracle: a captured IPv4 header checks out")
{
    // 192.168.0.1 -> 192.168.0.199, UDP, checksum b861 (a header widely used as an example).
    const uint8_t hdr[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                           0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    CHECK(internet_checksum(hdr, sizeof(hdr)) == 0xb861);
}

TEST_CASE("oracle: built packets verify, and a flipped bit is caught")
{
    for (uint8_t proto : {kTcp, kUdp}) {
        PacketSpec s;
        s.proto = proto;
        s.saddr = ip("198.51.100.2");
        s.daddr = ip("203.0.113.1");
        s.sport = 40000;
        s.dport = 22012;
        s.payload = {1, 2, 3, 4, 5};
        Bytes f = build(s);
        CHECK(ipv4_checksum_ok(f));
        CHECK(l4_checksum_ok(f));
        f[f.size() - 1] ^= 0x10;
        CHECK_FALSE(l4_checksum_ok(f));
        f[14 + 12] ^= 0x01;
        CHECK_FALSE(ipv4_checksum_ok(f));
    }
}
