#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/forward_table.h"

using namespace xnat;

namespace {

PortForward forward(const char *proto, const char *from, const char *to, const char *on = "wan")
{
    auto f = make_port_forward(proto, from, to, on);
    if (!f.ok())
        FAIL(f.error().message);
    return *f;
}

std::vector<FwdEntry> expand(const std::vector<LabelledForward> &rules)
{
    auto entries = expand_forwards(rules);
    if (!entries.ok())
        FAIL(entries.error().message);
    return *entries;
}

std::string expand_error(const std::vector<LabelledForward> &rules)
{
    auto entries = expand_forwards(rules);
    REQUIRE(entries.ok() == false);
    CHECK(entries.error().kind == ErrorKind::invalid_input);
    return entries.error().message;
}

uint32_t ip(uint32_t a, uint32_t b, uint32_t c, uint32_t d)
{
    return htonl(a << 24 | b << 16 | c << 8 | d);
}

} // namespace

TEST_CASE("a single rule expands to one entry in network byte order", "[forward_table]")
{
    auto entries = expand({{forward("tcp", "203.0.113.1:22012", "10.0.0.12:22"), "rule 7", 7}});
    REQUIRE(entries.size() == 1);
    const FwdEntry &e = entries[0];
    CHECK(e.key.addr == ip(203, 0, 113, 1));
    CHECK(e.key.port == htons(22012));
    CHECK(e.key.proto == XNAT_PROTO_TCP);
    CHECK(e.key.side == XNAT_SIDE_WAN);
    CHECK(e.target.addr == ip(10, 0, 0, 12));
    CHECK(e.target.port == htons(22));
    CHECK(e.target.rule_id == 7);

    // The bytes are what the datapath compares against packet headers.
    const auto *addr = reinterpret_cast<const uint8_t *>(&e.key.addr);
    CHECK(addr[0] == 203);
    CHECK(addr[3] == 1);
    const auto *port = reinterpret_cast<const uint8_t *>(&e.key.port);
    CHECK(port[0] == (22012 >> 8));
    CHECK(port[1] == (22012 & 0xff));
}

TEST_CASE("a port range keeps each port's offset", "[forward_table]")
{
    auto entries = expand({{forward("udp", "203.0.113.1:6000-6009", "10.0.0.20:7000"), "rule 2", 2}});
    REQUIRE(entries.size() == 10);
    for (uint16_t i = 0; i < 10; ++i) {
        INFO("offset " << i);
        const FwdEntry &e = entries[i];
        CHECK(e.key.addr == ip(203, 0, 113, 1));
        CHECK(ntohs(e.key.port) == 6000 + i);
        CHECK(e.key.proto == XNAT_PROTO_UDP);
        CHECK(e.key.side == XNAT_SIDE_WAN);
        CHECK(e.target.addr == ip(10, 0, 0, 20));
        CHECK(ntohs(e.target.port) == 7000 + i);
        CHECK(e.target.rule_id == 2);
    }
}

TEST_CASE("a port range maps onto a subnet one host per port", "[forward_table]")
{
    auto entries = expand({{forward("tcp", "203.0.113.1:22000-22255", "10.0.0.0/24:22"), "rule 0", 0}});
    REQUIRE(entries.size() == 256);
    for (int i : {0, 1, 255}) {
        INFO("host " << i);
        const FwdEntry &e = entries[i];
        CHECK(e.key.addr == ip(203, 0, 113, 1));
        CHECK(ntohs(e.key.port) == 22000 + i);
        CHECK(e.key.side == XNAT_SIDE_WAN);
        CHECK(e.target.addr == ip(10, 0, 0, i));
        CHECK(e.target.port == htons(22));
    }
    for (size_t i = 0; i < entries.size(); ++i) {
        CHECK(size_t{ntohs(entries[i].key.port)} == 22000 + i);
        CHECK(ntohl(entries[i].target.addr) == (0x0a000000u | i));
    }
}

TEST_CASE("the LAN inverse maps a subnet onto a port range", "[forward_table]")
{
    auto entries = expand({{forward("tcp", "10.0.0.0/24:22", "203.0.113.1:22000-22255", "lan"), "rule 1", 1}});
    REQUIRE(entries.size() == 256);
    for (int i : {0, 1, 255}) {
        INFO("host " << i);
        const FwdEntry &e = entries[i];
        CHECK(e.key.addr == ip(10, 0, 0, i));
        CHECK(e.key.port == htons(22));
        CHECK(e.key.proto == XNAT_PROTO_TCP);
        CHECK(e.key.side == XNAT_SIDE_LAN);
        CHECK(e.target.addr == ip(203, 0, 113, 1));
        CHECK(ntohs(e.target.port) == 22000 + i);
        CHECK(e.target.rule_id == 1);
    }
}

TEST_CASE("rules expand in order, each entry tagged with its rule", "[forward_table]")
{
    auto entries = expand({{forward("tcp", "203.0.113.1:22012", "10.0.0.12:22"), "rule 4", 4},
                           {forward("udp", "203.0.113.1:6000-6001", "10.0.0.20:6000"), "rule 9", 9},
                           {forward("tcp", "203.0.113.1:22012", "10.0.0.12:22", "lan"), "rule 5", 5}});
    REQUIRE(entries.size() == 4);
    CHECK(entries[0].target.rule_id == 4);
    CHECK(entries[1].target.rule_id == 9);
    CHECK(entries[2].target.rule_id == 9);
    CHECK(ntohs(entries[2].key.port) == 6001);
    CHECK(entries[3].target.rule_id == 5);
    CHECK(entries[3].key.side == XNAT_SIDE_LAN);

    CHECK(expand({}).empty());
}

TEST_CASE("overlapping rules are refused naming both", "[forward_table]")
{
    CHECK(expand_error({{forward("udp", "203.0.113.1:6000-6009", "10.0.0.20:6000"), "rule 3", 3},
                        {forward("udp", "203.0.113.1:6009-6010", "10.0.0.21:6009"), "rule 8", 8}}) ==
          "rule 8: overlaps rule 3 at udp 203.0.113.1:6009 on wan");
    CHECK(expand_error({{forward("tcp", "203.0.113.1:22012", "10.0.0.12:22"), "port_forwards[0]", 0},
                        {forward("tcp", "203.0.113.1:22012", "10.0.0.12:22"), "port_forwards[1]", 1}}) ==
          "port_forwards[1]: overlaps port_forwards[0] at tcp 203.0.113.1:22012 on wan");
    CHECK(expand_error({{forward("tcp", "10.0.0.5:22", "198.51.100.7:22", "lan"), "rule 0", 0},
                        {forward("tcp", "10.0.0.0/24:22", "203.0.113.1:22000-22255", "lan"), "rule 1", 1}}) ==
          "rule 1: overlaps rule 0 at tcp 10.0.0.5:22 on lan");
}

TEST_CASE("the rules may not name more pairs than the forward table holds", "[forward_table]")
{
    std::vector<LabelledForward> rules;
    for (int host = 1; host <= 4; ++host) {
        std::string from = "203.0.113." + std::to_string(host) + ":1-65535";
        rules.push_back({forward("tcp", from.c_str(), "10.0.0.1:1"), "rule", 0});
    }
    rules.push_back({forward("udp", "203.0.113.1:1-4", "10.0.0.1:1"), "rule", 0});
    // 4 * 65535 + 4 = 2^18 exactly: a full table is fine.
    CHECK(expand(rules).size() == XNAT_FWD_MAX_ENTRIES);

    rules.push_back({forward("udp", "203.0.113.2:1", "10.0.0.1:1"), "rule", 0});
    CHECK(expand_error(rules) ==
          "the rules name 262145 address:port pairs, more than the forward table holds (262144)");

    CHECK(expand_error({{forward("tcp", "10.0.0.0/8:22", "172.0.0.0/8:22", "lan"), "rule", 0}}) ==
          "the rules name 16777216 address:port pairs, more than the forward table holds (262144)");
}

TEST_CASE("rule records round-trip", "[forward_table]")
{
    PortForward game = forward("udp", "203.0.113.1:6000-6009", "10.0.0.20:6000", "lan");
    xnat_fwd_rule rec = to_rule_record(game);
    CHECK(rec.proto == XNAT_PROTO_UDP);
    CHECK(rec.side == XNAT_SIDE_LAN);
    CHECK(rec.from.addr == ip(203, 0, 113, 1));
    CHECK(rec.from.port_lo == 6000);
    CHECK(rec.from.port_hi == 6009);
    CHECK(rec.from.prefix_len == 32);
    CHECK(rec.to.addr == ip(10, 0, 0, 20));
    CHECK(rec.to.port_lo == 6000);
    CHECK(rec.to.port_hi == 6009);
    const uint8_t zero[3] = {};
    CHECK(rec.flags == 0);
    CHECK(std::memcmp(rec.pad, zero, sizeof(rec.pad)) == 0);
    CHECK(std::memcmp(rec.from.pad, zero, sizeof(rec.from.pad)) == 0);
    CHECK(from_rule_record(rec) == game);

    PortForward subnet = forward("tcp", "203.0.113.1:22000-22255", "10.0.0.0/24:22");
    xnat_fwd_rule srec = to_rule_record(subnet);
    CHECK(srec.to.prefix_len == 24);
    CHECK(srec.to.addr == ip(10, 0, 0, 0));
    CHECK(srec.side == XNAT_SIDE_WAN);
    CHECK(srec.proto == XNAT_PROTO_TCP);
    CHECK(from_rule_record(srec) == subnet);

    PortForward out = forward("tcp", "10.0.0.0/24:22", "203.0.113.1:22000-22255", "lan");
    CHECK(from_rule_record(to_rule_record(out)) == out);
}
