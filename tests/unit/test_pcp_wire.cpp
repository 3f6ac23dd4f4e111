// PCP's wire format, byte for byte as RFC 6887 lays it out: the common header (§7.1, §7.2),
// MAP (§11.1), options (§7.3, §13) and the server's checks on a request (§8.3).
#include <catch2/catch.hpp>

#include <initializer_list>

#include "portmap/pcp_wire.h"

using namespace xnat::pcp;
using Kind = Decoded::Kind;

namespace {

// 10.0.0.12 as PCP writes it: ::ffff:10.0.0.12.
const Bytes kClient = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x0a, 0x00, 0x00, 0x0c};
const Address kClientAddr = ipv4_mapped(0x0a00000c);
const Bytes kNonce = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

Bytes cat(std::initializer_list<Bytes> parts)
{
    Bytes out;
    for (const Bytes &p : parts)
        out.insert(out.end(), p.begin(), p.end());
    return out;
}

// A MAP request from 10.0.0.12: TCP, internal port 8080, no suggestion, 3600 s.
Bytes map_request(Bytes options = {})
{
    return cat({{0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x0e, 0x10},
                kClient,
                kNonce,
                {0x06, 0x00, 0x00, 0x00, 0x1f, 0x90, 0x00, 0x00},
                Bytes(16, 0),
                options});
}

Decoded decode(const Bytes &b, const Address &source = kClientAddr)
{
    return decode_request(b, source);
}

} // namespace

TEST_CASE("pcp: addresses are IPv4-mapped IPv6")
{
    CHECK(Bytes(kClientAddr.begin(), kClientAddr.end()) == kClient);
    CHECK(mapped_ipv4(kClientAddr) == 0x0a00000cu);
    Address v6{0x20, 0x01, 0x0d, 0xb8};
    CHECK_FALSE(mapped_ipv4(v6));
    CHECK(unspecified(Address{}));
    CHECK(unspecified(ipv4_mapped(0)));
    CHECK_FALSE(unspecified(kClientAddr));
}

TEST_CASE("pcp: a MAP request decodes field by field, and its answer")
{
    Bytes in = map_request();
    REQUIRE(in.size() == 60);
    Decoded d = decode(in);
    REQUIRE(d.kind == Kind::request);
    const Request &r = d.request;
    CHECK(r.opcode == Opcode::map);
    CHECK(r.lifetime == 3600);
    CHECK(r.client == kClientAddr);
    REQUIRE(r.map);
    CHECK(Bytes(r.map->nonce.begin(), r.map->nonce.end()) == kNonce);
    CHECK(r.map->protocol == 6);
    CHECK(r.map->internal_port == 8080);
    CHECK(r.map->external_port == 0);
    CHECK(unspecified(r.map->external_addr));
    CHECK_FALSE(r.third_party);
    CHECK_FALSE(r.prefer_failure);

    MapData assigned = *r.map;
    assigned.external_port = 40000;
    assigned.external_addr = ipv4_mapped(0xcb007101); // 203.0.113.1
    Bytes want = cat({{0x02, 0x81, 0x00, 0x00, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x00, 0x00, 0x64},
                      Bytes(12, 0),
                      kNonce,
                      {0x06, 0x00, 0x00, 0x00, 0x1f, 0x90, 0x9c, 0x40},
                      {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xcb, 0x00, 0x71, 0x01}});
    CHECK(encode_response(r, ResultCode::success, 3600, 100, assigned) == want);

    // A decided refusal keeps the request's MAP data and names the result.
    Bytes refused = encode_response(r, ResultCode::no_resources, 30, 100);
    REQUIRE(refused.size() == 60);
    CHECK(refused[3] == 8);
    CHECK(Bytes(refused.begin() + 24, refused.end()) == Bytes(in.begin() + 24, in.end()));
}

TEST_CASE("pcp: ANNOUNCE")
{
    Decoded d = decode(cat({{0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, kClient}));
    REQUIRE(d.kind == Kind::request);
    CHECK(d.request.opcode == Opcode::announce);
    CHECK_FALSE(d.request.map);
    Bytes want =
        cat({{0x02, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07}, Bytes(12, 0)});
    CHECK(encode_announce(7) == want);
    CHECK(encode_response(d.request, ResultCode::success, 0, 7) == want);
}

TEST_CASE("pcp: options")
{
    SECTION("PREFER_FAILURE is read and answered in kind")
    {
        Decoded d = decode(map_request({0x02, 0x00, 0x00, 0x00}));
        REQUIRE(d.kind == Kind::request);
        CHECK(d.request.prefer_failure);
        Bytes out = encode_response(d.request, ResultCode::success, 60, 1, d.request.map);
        CHECK(Bytes(out.end() - 4, out.end()) == Bytes{0x02, 0x00, 0x00, 0x00});
    }
    SECTION("THIRD_PARTY names an address")
    {
        Bytes other = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x0a, 0x00, 0x00, 0x0d};
        Decoded d = decode(map_request(cat({{0x01, 0x00, 0x00, 0x10}, other})));
        REQUIRE(d.kind == Kind::request);
        REQUIRE(d.request.third_party);
        CHECK(mapped_ipv4(*d.request.third_party) == 0x0a00000du);
        Bytes out = encode_response(d.request, ResultCode::not_authorized, 1800, 1);
        CHECK(Bytes(out.end() - 20, out.end()) == cat({{0x01, 0x00, 0x00, 0x10}, other}));
    }
    SECTION("an optional option (code 128 and up) that is not known is skipped, padding included")
    {
        Decoded d =
            decode(map_request({0x80, 0x00, 0x00, 0x03, 0xaa, 0xbb, 0xcc, 0x00, 0x02, 0x00, 0x00, 0x00}));
        REQUIRE(d.kind == Kind::request);
        CHECK(d.request.prefer_failure);
    }
    auto refused = [](const Bytes &options) {
        Decoded d = decode(map_request(options));
        REQUIRE(d.kind == Kind::reply_error);
        return d.error;
    };
    SECTION("malformed or unsupported options are refused with their code")
    {
        Bytes third = cat({{0x01, 0x00, 0x00, 0x10}, kClient});
        CHECK(refused(cat({third, third})) == ResultCode::malformed_option);
        CHECK(refused({0x01, 0x00, 0x00, 0x04, 0x0a, 0x00, 0x00, 0x0d}) == ResultCode::malformed_option);
        CHECK(refused({0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00}) == ResultCode::malformed_option);
        CHECK(refused({0x02, 0x00, 0x00, 0x04, 0, 0, 0, 0}) == ResultCode::malformed_option);
        // Length past the end of the request.
        CHECK(refused({0x01, 0x00, 0x00, 0x20, 0, 0, 0, 0}) == ResultCode::malformed_option);
        CHECK(refused(cat({{0x03, 0x00, 0x00, 0x14}, Bytes(20, 0)})) == ResultCode::unsupp_option);
        CHECK(refused({0x05, 0x00, 0x00, 0x00}) == ResultCode::unsupp_option);
    }
    SECTION("options of MAP are malformed in ANNOUNCE")
    {
        Decoded d = decode(cat({{0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, kClient, {0x02, 0, 0, 0}}));
        REQUIRE(d.kind == Kind::reply_error);
        CHECK(d.error == ResultCode::malformed_option);
    }
}

TEST_CASE("pcp: the server's checks on a request, in the RFC's order")
{
    auto error_of = [](const Bytes &in, const Address &source = kClientAddr) {
        Decoded d = decode(in, source);
        REQUIRE(d.kind == Kind::reply_error);
        return d.error;
    };
    SECTION("dropped: under 2 octets, or a response")
    {
        CHECK(decode({}).kind == Kind::drop);
        CHECK(decode({0x02}).kind == Kind::drop);
        Bytes response = map_request();
        response[1] |= 0x80;
        CHECK(decode(response).kind == Kind::drop);
    }
    SECTION("another version")
    {
        Bytes v1 = map_request();
        v1[0] = 1;
        CHECK(error_of(v1) == ResultCode::unsupp_version);
        CHECK(error_of({0x03, 0x01}) == ResultCode::unsupp_version);
    }
    SECTION("lengths: not a multiple of 4, over 1100 octets, under a header, MAP data cut short")
    {
        Bytes odd = map_request({0x00});
        CHECK(error_of(odd) == ResultCode::malformed_request);
        Bytes big = map_request(cat({{0x80, 0x00, 0x04, 0x0c}, Bytes(1036, 0)}));
        REQUIRE(big.size() == 1100);
        CHECK(decode(big).kind == Kind::request);
        big.resize(1104, 0);
        CHECK(error_of(big) == ResultCode::malformed_request);
        Bytes header_cut = map_request();
        header_cut.resize(20);
        CHECK(error_of(header_cut) == ResultCode::malformed_request);
        Bytes short_map = map_request();
        short_map.resize(56);
        CHECK(error_of(short_map) == ResultCode::malformed_request);
    }
    SECTION("opcodes other than ANNOUNCE and MAP, PEER included")
    {
        for (uint8_t op : std::initializer_list<uint8_t>{2, 3, 0x7f}) {
            Bytes in = map_request();
            in[1] = op;
            CHECK(error_of(in) == ResultCode::unsupp_opcode);
        }
    }
    SECTION("a client address that is not the source")
    {
        CHECK(error_of(map_request(), ipv4_mapped(0x0a00000d)) == ResultCode::address_mismatch);
    }
    SECTION("protocol 0 (all protocols): the internal port is ignored on reception (§11.1)")
    {
        Bytes in = map_request();
        in[36] = 0;
        Decoded d = decode(in);
        REQUIRE(d.kind == Kind::request);
        CHECK(d.request.map->protocol == 0);
    }
}

TEST_CASE("pcp: an error answer is the request with the response header's fields set")
{
    Bytes in = map_request({0x05, 0x00, 0x00, 0x00});
    Bytes out = encode_error(in, ResultCode::unsupp_option, 1800, 42);
    Bytes want = in;
    // R bit, reserved, result 5, lifetime 1800, epoch 42, 12 reserved octets.
    Bytes header =
        cat({{0x02, 0x81, 0x00, 0x05, 0x00, 0x00, 0x07, 0x08, 0x00, 0x00, 0x00, 0x2a}, Bytes(12, 0)});
    std::copy(header.begin(), header.end(), want.begin());
    CHECK(out == want);

    // Another version: answered as version 2. Too short for a header: padded to one.
    Bytes v9 = {0x09, 0x01, 0xaa, 0xbb};
    CHECK(encode_error(v9, ResultCode::unsupp_version, 1800, 1) ==
          cat({{0x02, 0x81, 0x00, 0x01, 0x00, 0x00, 0x07, 0x08, 0x00, 0x00, 0x00, 0x01}, Bytes(12, 0)}));
    // Over 1100 octets: cut to 1100. Not whole words: padded to them, so the answer is well formed.
    CHECK(encode_error(Bytes(1500, 0x02), ResultCode::malformed_request, 1800, 1).size() == 1100);
    Bytes odd = map_request({0x00});
    Bytes padded = encode_error(odd, ResultCode::malformed_request, 1800, 1);
    CHECK(padded.size() == 64);
    CHECK(Bytes(padded.begin() + 24, padded.begin() + 61) == Bytes(odd.begin() + 24, odd.end()));
    CHECK(Bytes(padded.begin() + 61, padded.end()) == Bytes(3, 0));
}
