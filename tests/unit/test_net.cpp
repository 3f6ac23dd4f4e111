#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <string>

#include "core/net.h"

using namespace xnat;

namespace {

// The message of a parse that must fail; "<accepted>" makes an unexpected success visible.
template <typename T> std::string error_of(const Result<T> &r)
{
    return r.ok() ? std::string("<accepted>") : r.error().message;
}

} // namespace

TEST_CASE("parse_ipv4 accepts dotted quads", "[net]")
{
    auto a = parse_ipv4("203.0.113.1");
    REQUIRE(a.ok());
    CHECK(*a == 0xcb007101u);

    auto zero = parse_ipv4("0.0.0.0");
    REQUIRE(zero.ok());
    CHECK(*zero == 0u);

    auto bcast = parse_ipv4("255.255.255.255");
    REQUIRE(bcast.ok());
    CHECK(*bcast == 0xffffffffu);

    auto ten = parse_ipv4("10.0.0.12");
    REQUIRE(ten.ok());
    CHECK(*ten == 0x0a00000cu);
}

TEST_CASE("parse_ipv4 rejects malformed addresses", "[net]")
{
    // Leading zeros are octal to inet_aton; refusing them avoids the ambiguity.
    CHECK(error_of(parse_ipv4("10.0.0.012")) == "bad IPv4 address \"10.0.0.012\"");
    CHECK(error_of(parse_ipv4("010.0.0.1")) == "bad IPv4 address \"010.0.0.1\"");
    CHECK(error_of(parse_ipv4("10.0.0.00")) == "bad IPv4 address \"10.0.0.00\"");
    CHECK(error_of(parse_ipv4("10.0.0.256")) == "bad IPv4 address \"10.0.0.256\"");
    CHECK(error_of(parse_ipv4("256.0.0.1")) == "bad IPv4 address \"256.0.0.1\"");
    CHECK(error_of(parse_ipv4("10.0.0")) == "bad IPv4 address \"10.0.0\"");
    CHECK(error_of(parse_ipv4("10")) == "bad IPv4 address \"10\"");
    CHECK(error_of(parse_ipv4("10.0.0.1.2")) == "bad IPv4 address \"10.0.0.1.2\"");
    CHECK(error_of(parse_ipv4("10.0.0.1.")) == "bad IPv4 address \"10.0.0.1.\"");
    CHECK(error_of(parse_ipv4("10.0.0.1.2.3")) == "bad IPv4 address \"10.0.0.1.2.3\"");
    CHECK(error_of(parse_ipv4("")) == "bad IPv4 address \"\"");
    CHECK(error_of(parse_ipv4("10..0.1")) == "bad IPv4 address \"10..0.1\"");
    CHECK(error_of(parse_ipv4(".10.0.0.1")) == "bad IPv4 address \".10.0.0.1\"");
    CHECK(error_of(parse_ipv4("10.0.0.x")) == "bad IPv4 address \"10.0.0.x\"");
    CHECK(error_of(parse_ipv4("10.0.0.-1")) == "bad IPv4 address \"10.0.0.-1\"");
    CHECK(error_of(parse_ipv4(" 10.0.0.1")) == "bad IPv4 address \" 10.0.0.1\"");
    CHECK(error_of(parse_ipv4("10.0.0.1 ")) == "bad IPv4 address \"10.0.0.1 \"");
    CHECK(error_of(parse_ipv4("10.0.0.99999999999")) == "bad IPv4 address \"10.0.0.99999999999\"");

    auto r = parse_ipv4("1.2.3");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::invalid_input);
}

TEST_CASE("format_ipv4 and format_ipv4_be", "[net]")
{
    CHECK(format_ipv4(0xcb007101u) == "203.0.113.1");
    CHECK(format_ipv4(0u) == "0.0.0.0");
    CHECK(format_ipv4(0xffffffffu) == "255.255.255.255");
    CHECK(format_ipv4(0x0a00000cu) == "10.0.0.12");
    CHECK(format_ipv4_be(htonl(0xcb007101u)) == "203.0.113.1");
    CHECK(format_ipv4_be(htonl(0x0a000001u)) == "10.0.0.1");
    for (const char *text : {"1.2.3.4", "192.168.100.200", "100.64.0.1"}) {
        auto a = parse_ipv4(text);
        REQUIRE(a.ok());
        CHECK(format_ipv4(*a) == text);
        CHECK(format_ipv4_be(htonl(*a)) == text);
    }
}

TEST_CASE("parse_endpoint: single address and port", "[net]")
{
    auto ep = parse_endpoint("203.0.113.1:22012");
    REQUIRE(ep.ok());
    CHECK(ep->addr == 0xcb007101u);
    CHECK(ep->prefix_len == 32);
    CHECK(ep->port_lo == 22012);
    CHECK(ep->port_hi == 22012);
    CHECK(ep->hosts() == 1);
    CHECK(ep->ports() == 1);
    CHECK(ep->size() == 1);

    auto max = parse_endpoint("10.0.0.1:65535");
    REQUIRE(max.ok());
    CHECK(max->port_lo == 65535);
    auto one = parse_endpoint("10.0.0.1:1");
    REQUIRE(one.ok());
    CHECK(one->port_lo == 1);
}

TEST_CASE("parse_endpoint: port range", "[net]")
{
    auto ep = parse_endpoint("203.0.113.1:6000-6009");
    REQUIRE(ep.ok());
    CHECK(ep->addr == 0xcb007101u);
    CHECK(ep->prefix_len == 32);
    CHECK(ep->port_lo == 6000);
    CHECK(ep->port_hi == 6009);
    CHECK(ep->ports() == 10);
    CHECK(ep->size() == 10);

    auto same = parse_endpoint("10.0.0.1:80-80");
    REQUIRE(same.ok());
    CHECK(same->port_lo == 80);
    CHECK(same->port_hi == 80);

    auto full = parse_endpoint("10.0.0.1:1-65535");
    REQUIRE(full.ok());
    CHECK(full->ports() == 65535);
}

TEST_CASE("parse_endpoint: prefix", "[net]")
{
    auto ep = parse_endpoint("10.0.0.0/24:22");
    REQUIRE(ep.ok());
    CHECK(ep->addr == 0x0a000000u);
    CHECK(ep->prefix_len == 24);
    CHECK(ep->port_lo == 22);
    CHECK(ep->port_hi == 22);
    CHECK(ep->hosts() == 256);
    CHECK(ep->size() == 256);

    auto host = parse_endpoint("10.0.0.7/32:22");
    REQUIRE(host.ok());
    CHECK(host->prefix_len == 32);
    CHECK(host->hosts() == 1);

    auto all = parse_endpoint("0.0.0.0/0:22");
    REQUIRE(all.ok());
    CHECK(all->hosts() == (uint64_t{1} << 32));

    CHECK(error_of(parse_endpoint("10.0.0.0/33:22")) == "bad prefix length \"33\" (0-32)");
    CHECK(error_of(parse_endpoint("10.0.0.0/:22")) == "bad prefix length \"\" (0-32)");
    CHECK(error_of(parse_endpoint("10.0.0.0/x:22")) == "bad prefix length \"x\" (0-32)");
}

TEST_CASE("parse_endpoint rejects bad ports and ranges", "[net]")
{
    CHECK(error_of(parse_endpoint("10.0.0.1:6009-6000")) == "port range 6009-6000 is reversed");
    CHECK(error_of(parse_endpoint("10.0.0.1:0")) == "port 0 is not a valid port (1-65535)");
    CHECK(error_of(parse_endpoint("10.0.0.1:0-10")) == "port 0 is not a valid port (1-65535)");
    CHECK(error_of(parse_endpoint("10.0.0.1:70000")) == "port 70000 out of range (1-65535)");
    CHECK(error_of(parse_endpoint("10.0.0.1:65536")) == "port 65536 out of range (1-65535)");
    CHECK(error_of(parse_endpoint("10.0.0.1:6000-70000")) == "port 70000 out of range (1-65535)");
    CHECK(error_of(parse_endpoint("10.0.0.1:99999999999")) ==
          "port 99999999999 out of range (1-65535)");
    CHECK(error_of(parse_endpoint("10.0.0.1:ssh")) == "bad port \"ssh\"");
    CHECK(error_of(parse_endpoint("10.0.0.1:22-")) == "bad port \"\"");
    CHECK(error_of(parse_endpoint("10.0.0.1:-22")) == "bad port \"-22\"");
    CHECK(error_of(parse_endpoint("10.0.0.1:1-2-3")) == "bad port \"2-3\"");

    auto r = parse_endpoint("10.0.0.1:70000");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::invalid_input);
}

TEST_CASE("parse_endpoint rejects a prefix with host bits set", "[net]")
{
    CHECK(error_of(parse_endpoint("10.0.0.1/24:22")) ==
          "10.0.0.1/24 has host bits set (network is 10.0.0.0/24)");
    CHECK(error_of(parse_endpoint("10.0.0.128/24:22")) ==
          "10.0.0.128/24 has host bits set (network is 10.0.0.0/24)");
    auto upper_half = parse_endpoint("10.0.0.128/25:22");
    REQUIRE(upper_half.ok());
    CHECK(upper_half->addr == 0x0a000080u);
    CHECK(upper_half->hosts() == 128);
    CHECK(error_of(parse_endpoint("10.1.0.0/8:22")) ==
          "10.1.0.0/8 has host bits set (network is 10.0.0.0/8)");
}

TEST_CASE("parse_endpoint rejects a missing port and garbage", "[net]")
{
    CHECK(error_of(parse_endpoint("10.0.0.1")) ==
          "expected ADDRESS[/PREFIX]:PORT[-PORT], got \"10.0.0.1\"");
    CHECK(error_of(parse_endpoint("10.0.0.1:")) ==
          "expected ADDRESS[/PREFIX]:PORT[-PORT], got \"10.0.0.1:\"");
    CHECK(error_of(parse_endpoint("")) == "expected ADDRESS[/PREFIX]:PORT[-PORT], got \"\"");
    CHECK(error_of(parse_endpoint("garbage")) ==
          "expected ADDRESS[/PREFIX]:PORT[-PORT], got \"garbage\"");
    CHECK(error_of(parse_endpoint("example.com:22")) == "bad IPv4 address \"example.com\"");
    CHECK(error_of(parse_endpoint(":22")) == "bad IPv4 address \"\"");
    CHECK(error_of(parse_endpoint("10.0.0.1:22:23")) == "bad IPv4 address \"10.0.0.1:22\"");
    CHECK(error_of(parse_endpoint("10.0.0.1.5:22")) == "bad IPv4 address \"10.0.0.1.5\"");
}

TEST_CASE("format_endpoint round-trips through parse_endpoint", "[net]")
{
    for (const char *text : {"203.0.113.1:22012", "203.0.113.1:6000-6009", "10.0.0.0/24:22",
                             "10.0.0.0/8:443", "0.0.0.0/0:1", "198.51.100.7:1-65535"}) {
        INFO(text);
        auto ep = parse_endpoint(text);
        REQUIRE(ep.ok());
        CHECK(format_endpoint(*ep) == text);
        auto again = parse_endpoint(format_endpoint(*ep));
        REQUIRE(again.ok());
        CHECK(*again == *ep);
    }
    // Redundant spellings come back in their short form.
    auto host = parse_endpoint("10.0.0.7/32:22-22");
    REQUIRE(host.ok());
    CHECK(format_endpoint(*host) == "10.0.0.7:22");

    Endpoint built;
    built.addr = 0xc0a80000u;
    built.prefix_len = 16;
    built.port_lo = built.port_hi = 8080;
    CHECK(format_endpoint(built) == "192.168.0.0/16:8080");
}

TEST_CASE("parse_proto and proto_name", "[net]")
{
    auto tcp = parse_proto("tcp");
    REQUIRE(tcp.ok());
    CHECK(*tcp == Proto::tcp);
    CHECK(static_cast<int>(*tcp) == 6);
    auto udp = parse_proto("udp");
    REQUIRE(udp.ok());
    CHECK(*udp == Proto::udp);
    CHECK(static_cast<int>(*udp) == 17);

    CHECK(error_of(parse_proto("TCP")) == "protocol must be \"tcp\" or \"udp\", got \"TCP\"");
    CHECK(error_of(parse_proto("icmp")) == "protocol must be \"tcp\" or \"udp\", got \"icmp\"");
    CHECK(error_of(parse_proto("")) == "protocol must be \"tcp\" or \"udp\", got \"\"");

    CHECK(proto_name(6) == "tcp");
    CHECK(proto_name(17) == "udp");
    CHECK(proto_name(1) == "icmp");
    CHECK(proto_name(47) == "unknown");
}

TEST_CASE("parse_side and side_name", "[net]")
{
    auto wan = parse_side("wan");
    REQUIRE(wan.ok());
    CHECK(*wan == Side::wan);
    CHECK(static_cast<int>(*wan) == 0);
    auto lan = parse_side("lan");
    REQUIRE(lan.ok());
    CHECK(*lan == Side::lan);
    CHECK(static_cast<int>(*lan) == 1);

    CHECK(error_of(parse_side("dmz")) == "must be \"wan\" or \"lan\", got \"dmz\"");
    CHECK(error_of(parse_side("WAN")) == "must be \"wan\" or \"lan\", got \"WAN\"");
    CHECK(error_of(parse_side("")) == "must be \"wan\" or \"lan\", got \"\"");

    CHECK(side_name(Side::wan) == "wan");
    CHECK(side_name(Side::lan) == "lan");
}
