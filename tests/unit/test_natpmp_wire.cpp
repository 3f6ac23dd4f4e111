// NAT-PMP's wire format, byte for byte as RFC 6886 §3 lays it out (with erratum 3618).
#include <catch2/catch.hpp>

#include <initializer_list>

#include "portmap/natpmp_wire.h"

using namespace xnat::natpmp;
using Kind = Decoded::Kind;

namespace {

Decoded decode(const Bytes &b, uint32_t epoch = 0)
{
    return decode_request(b, epoch);
}

} // namespace

TEST_CASE("natpmp: the external address request and its answer")
{
    Decoded d = decode({0x00, 0x00});
    CHECK(d.kind == Kind::external_address);
    // Result 0, epoch 0x1234, 203.0.113.1.
    CHECK(encode_external_address(ResultCode::success, 0x1234, 0xcb007101) ==
          Bytes{0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x12, 0x34, 0xcb, 0x00, 0x71, 0x01});
    CHECK(encode_external_address(ResultCode::network_failure, 9, 0) ==
          Bytes{0x00, 0x80, 0x00, 0x03, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00});
}

TEST_CASE("natpmp: mapping requests decode field by field")
{
    // TCP, internal 8080, suggested 8080, 7200 s.
    Decoded tcp = decode({0x00, 0x02, 0x00, 0x00, 0x1f, 0x90, 0x1f, 0x90, 0x00, 0x00, 0x1c, 0x20});
    REQUIRE(tcp.kind == Kind::map);
    CHECK(tcp.map == MapRequest{Opcode::map_tcp, 8080, 8080, 7200});
    // UDP, internal 5000, no suggestion, lifetime 0: a delete. Reserved bytes are ignored.
    Decoded udp = decode({0x00, 0x01, 0xff, 0xff, 0x13, 0x88, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00});
    REQUIRE(udp.kind == Kind::map);
    CHECK(udp.map == MapRequest{Opcode::map_udp, 5000, 0, 0});
    // Bytes past the request are not the client's business: the request stands.
    Bytes longer = {0x00, 0x01, 0, 0, 0x13, 0x88, 0x13, 0x89, 0, 0, 0x0e, 0x10, 0xde, 0xad};
    CHECK(decode(longer).map == MapRequest{Opcode::map_udp, 5000, 5001, 3600});
}

TEST_CASE("natpmp: the mapping answer")
{
    // TCP, epoch 16, internal 8080, external 40000, 7200 s.
    CHECK(encode_map_response(Opcode::map_tcp, ResultCode::success, 16, 8080, 40000, 7200) ==
          Bytes{0x00, 0x82, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x1f, 0x90, 0x9c, 0x40, 0x00, 0x00, 0x1c,
                0x20});
    // A refusal: UDP, not authorized, external port and lifetime 0.
    CHECK(encode_map_response(Opcode::map_udp, ResultCode::not_authorized, 1, 53, 0, 0) ==
          Bytes{0x00, 0x81, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x35, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00});
}

TEST_CASE("natpmp: what the server refuses or ignores")
{
    SECTION("another version: opcode 128, result 1, the epoch (erratum 3618)")
    {
        for (const Bytes &in : {Bytes{0x01, 0x00}, Bytes{0x02, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}) {
            Decoded d = decode(in, 5);
            REQUIRE(d.kind == Kind::reply_error);
            CHECK(d.error == ResultCode::unsupported_version);
            CHECK(d.reply == Bytes{0x00, 0x80, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05});
        }
    }
    SECTION("an unknown opcode: the request comes back with the response bit and result 5")
    {
        Decoded d = decode({0x00, 0x03, 0xaa, 0xbb, 0xcc});
        REQUIRE(d.kind == Kind::reply_error);
        CHECK(d.error == ResultCode::unsupported_opcode);
        CHECK(d.reply == Bytes{0x00, 0x83, 0x00, 0x05, 0xcc});
        CHECK(decode({0x00, 0x7f}).reply == Bytes{0x00, 0xff, 0x00, 0x05});
    }
    SECTION("responses, perhaps another server's, are never answered")
    {
        for (uint8_t op : std::initializer_list<uint8_t>{0x80, 0x81, 0x82, 0xff})
            CHECK(decode({0x00, op, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}).kind == Kind::drop);
    }
    SECTION("too short to be a request")
    {
        CHECK(decode({}).kind == Kind::drop);
        CHECK(decode({0x00}).kind == Kind::drop);
        CHECK(decode({0x00, 0x01, 0, 0, 0x13, 0x88, 0, 0, 0, 0, 0x0e}).kind == Kind::drop);
        CHECK(decode({0x00, 0x02}).kind == Kind::drop);
    }
}
