#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <string>

#include "core/conn_filter.h"
#include "ct_key.h"

using namespace xnat;
using Catch::Matchers::Contains;
using Catch::Matchers::EndsWith;

namespace {

using namespace xnat::test;

constexpr uint32_t kClient = 0x0a000002u; // 10.0.0.2
constexpr uint32_t kPublic = 0xcb007101u; // 203.0.113.1
constexpr uint32_t kServer = 0x0a00000cu; // 10.0.0.12
constexpr uint32_t kRemote = 0xc6336402u; // 198.51.100.2
constexpr uint32_t kWan = 0xc6336401u;    // 198.51.100.1

// The example of the brief: 10.0.0.2:40000 -> 203.0.113.1:22012 (hairpin to 10.0.0.12:22).
Connection tcp_flow(uint8_t state, uint8_t flags)
{
    Connection c;
    c.original_key = key(kClient, kPublic, 40000, 22012, XNAT_PROTO_TCP);
    c.original.peer = key(kServer, kClient, 22, 40000, XNAT_PROTO_TCP);
    c.original.state = state;
    c.original.flags = flags;
    c.original.packets = 12;
    c.original.bytes = 3456;
    c.original.last_seen = 1000;
    c.reply.packets = 10;
    c.reply.bytes = 5678;
    c.reply.last_seen = 1000;
    return c;
}

Connection udp_flow(uint8_t flags)
{
    Connection c;
    c.original_key = key(kServer, kRemote, 5000, 53, XNAT_PROTO_UDP);
    c.original.peer = key(kRemote, kWan, 53, 61000, XNAT_PROTO_UDP);
    c.original.flags = flags;
    c.original.packets = 1;
    c.original.bytes = 60;
    c.original.last_seen = 1000;
    c.reply.last_seen = 1000;
    return c;
}

// Echo request id 77 from 10.0.0.12, masqueraded to id 1500.
Connection icmp_flow()
{
    Connection c;
    c.original_key = key(kServer, kRemote, 77, 0, XNAT_PROTO_ICMP);
    c.original.peer = key(kRemote, kWan, 0, 1500, XNAT_PROTO_ICMP);
    c.original.flags = XNAT_CT_F_SEEN_REPLY;
    c.original.packets = 3;
    c.original.bytes = 252;
    c.original.last_seen = 1000;
    c.reply.packets = 3;
    c.reply.bytes = 252;
    c.reply.last_seen = 1000;
    return c;
}

ConnFilter filter(const char *proto, const char *addr, const char *port, const char *state)
{
    auto f = parse_conn_filter(proto, addr, port, state);
    REQUIRE(f);
    return *f;
}

} // namespace

// A TCP flow reset in state CLOSE after `orig` packets from the originator and `reply` back.
Connection reset_flow(uint64_t orig, uint64_t reply, uint8_t flags)
{
    Connection c = tcp_flow(XNAT_TCP_CLOSE, flags);
    c.original.packets = orig;
    c.reply.packets = reply;
    return c;
}

TEST_CASE("format_conntrack matches conntrack -L (accounting off, the default)", "[conntrack]")
{
    uint64_t now = 1000 * kTick;
    CHECK(format_conntrack(tcp_flow(XNAT_TCP_ESTABLISHED, XNAT_CT_F_SEEN_REPLY | XNAT_CT_F_ASSURED), kTimeouts, now) ==
          "tcp      6 7440 ESTABLISHED src=10.0.0.2 dst=203.0.113.1 sport=40000 dport=22012 "
          "src=10.0.0.12 dst=10.0.0.2 sport=22 dport=40000 [ASSURED] mark=0 use=1");
    CHECK(format_conntrack(tcp_flow(XNAT_TCP_SYN_SENT, 0), kTimeouts, now, ConntrackCounters::off) ==
          "tcp      6 120 SYN_SENT src=10.0.0.2 dst=203.0.113.1 sport=40000 dport=22012 [UNREPLIED] "
          "src=10.0.0.12 dst=10.0.0.2 sport=22 dport=40000 mark=0 use=1");
    CHECK(format_conntrack(udp_flow(0), kTimeouts, now) ==
          "udp      17 30 src=10.0.0.12 dst=198.51.100.2 sport=5000 dport=53 [UNREPLIED] "
          "src=198.51.100.2 dst=198.51.100.1 sport=53 dport=61000 mark=0 use=1");
    CHECK(format_conntrack(udp_flow(XNAT_CT_F_SEEN_REPLY | XNAT_CT_F_ASSURED), kTimeouts, now) ==
          "udp      17 300 src=10.0.0.12 dst=198.51.100.2 sport=5000 dport=53 "
          "src=198.51.100.2 dst=198.51.100.1 sport=53 dport=61000 [ASSURED] mark=0 use=1");
    CHECK(format_conntrack(icmp_flow(), kTimeouts, now) ==
          "icmp     1 60 src=10.0.0.12 dst=198.51.100.2 type=8 code=0 id=77 "
          "src=198.51.100.2 dst=198.51.100.1 type=0 code=0 id=1500 mark=0 use=1");
}

TEST_CASE("format_conntrack with counters matches conntrack -L with nf_conntrack_acct=1", "[conntrack]")
{
    uint64_t now = 1000 * kTick;
    const auto on = ConntrackCounters::on;
    CHECK(format_conntrack(tcp_flow(XNAT_TCP_ESTABLISHED, XNAT_CT_F_SEEN_REPLY | XNAT_CT_F_ASSURED), kTimeouts, now, on) ==
          "tcp      6 7440 ESTABLISHED src=10.0.0.2 dst=203.0.113.1 sport=40000 dport=22012 packets=12 "
          "bytes=3456 src=10.0.0.12 dst=10.0.0.2 sport=22 dport=40000 packets=10 bytes=5678 [ASSURED] "
          "mark=0 use=1");
    CHECK(format_conntrack(tcp_flow(XNAT_TCP_SYN_SENT, 0), kTimeouts, now, on) ==
          "tcp      6 120 SYN_SENT src=10.0.0.2 dst=203.0.113.1 sport=40000 dport=22012 packets=12 "
          "bytes=3456 [UNREPLIED] src=10.0.0.12 dst=10.0.0.2 sport=22 dport=40000 packets=10 bytes=5678 "
          "mark=0 use=1");
    CHECK(format_conntrack(udp_flow(0), kTimeouts, now, on) ==
          "udp      17 30 src=10.0.0.12 dst=198.51.100.2 sport=5000 dport=53 packets=1 bytes=60 "
          "[UNREPLIED] src=198.51.100.2 dst=198.51.100.1 sport=53 dport=61000 packets=0 bytes=0 "
          "mark=0 use=1");
    CHECK_THAT(format_conntrack(udp_flow(XNAT_CT_F_SEEN_REPLY | XNAT_CT_F_ASSURED), kTimeouts, now, on),
               Contains("packets=0 bytes=0 [ASSURED] mark=0 use=1") && !Contains("UNREPLIED"));
    CHECK(format_conntrack(icmp_flow(), kTimeouts, now, on) ==
          "icmp     1 60 src=10.0.0.12 dst=198.51.100.2 type=8 code=0 id=77 packets=3 bytes=252 "
          "src=198.51.100.2 dst=198.51.100.1 type=0 code=0 id=1500 packets=3 bytes=252 mark=0 use=1");
}

TEST_CASE("[ASSURED] is the datapath's assured bit, whatever the state", "[conntrack]")
{
    uint64_t now = 1000 * kTick;
    const uint8_t r = XNAT_CT_F_SEEN_REPLY, a = XNAT_CT_F_ASSURED;
    // Established once, then closing or reset: the bit stays, and so does the mark.
    CHECK(conntrack_assured(tcp_flow(XNAT_TCP_FIN_WAIT, r | a | XNAT_CT_F_FIN_ORIG)));
    CHECK(conntrack_assured(reset_flow(3, 1, r | a)));
    CHECK_THAT(format_conntrack(reset_flow(3, 1, r | a), kTimeouts, now),
               Contains(" 10 CLOSE src=") && EndsWith(" [ASSURED] mark=0 use=1"));
    // Reset during the handshake: replied, never assured.
    CHECK_FALSE(conntrack_assured(reset_flow(2, 1, r)));
    CHECK_THAT(format_conntrack(reset_flow(1, 1, r), kTimeouts, now),
               !Contains("ASSURED") && !Contains("UNREPLIED") && Contains(" 10 CLOSE src="));
    CHECK_FALSE(conntrack_assured(tcp_flow(XNAT_TCP_SYN_RECV, r)));
    CHECK(conntrack_assured(udp_flow(r | a)));
    CHECK_FALSE(conntrack_assured(udp_flow(0)));
}

TEST_CASE("conns filters select by protocol, address, port and state", "[conntrack]")
{
    Connection tcp = tcp_flow(XNAT_TCP_ESTABLISHED, XNAT_CT_F_SEEN_REPLY);
    Connection udp = udp_flow(0);
    Connection icmp = icmp_flow();

    CHECK(filter("", "", "", "").matches(tcp));
    CHECK(filter("tcp", "", "", "").matches(tcp));
    CHECK_FALSE(filter("udp", "", "", "").matches(tcp));
    CHECK(filter("icmp", "", "", "").matches(icmp));

    // Addresses of either tuple: the original's destination and the reply's source.
    CHECK(filter("", "203.0.113.1", "", "").matches(tcp));
    CHECK(filter("", "10.0.0.12", "", "").matches(tcp));
    CHECK(filter("", "198.51.100.1", "", "").matches(udp)); // only in the reply tuple
    CHECK_FALSE(filter("", "198.51.100.1", "", "").matches(tcp));

    CHECK(filter("", "", "22", "").matches(tcp));    // reply tuple
    CHECK(filter("", "", "22012", "").matches(tcp)); // original tuple
    CHECK(filter("", "", "61000", "").matches(udp));
    CHECK_FALSE(filter("", "", "80", "").matches(tcp));
    CHECK_FALSE(filter("", "", "77", "").matches(icmp)); // echo ids are not ports

    CHECK(filter("", "", "", "established").matches(tcp));
    CHECK(filter("", "", "", "UNREPLIED").matches(udp));
    CHECK_FALSE(filter("", "", "", "REPLIED").matches(udp));
    CHECK(filter("", "", "", "REPLIED").matches(icmp));

    // Combined: all must hold.
    CHECK(filter("tcp", "10.0.0.2", "40000", "ESTABLISHED").matches(tcp));
    CHECK_FALSE(filter("tcp", "10.0.0.2", "40000", "SYN_SENT").matches(tcp));
    CHECK_FALSE(filter("udp", "10.0.0.2", "", "").matches(tcp));
}

TEST_CASE("bad filter values name their option", "[conntrack]")
{
    auto err = [](const char *p, const char *a, const char *port, const char *s) {
        auto f = parse_conn_filter(p, a, port, s);
        REQUIRE_FALSE(f);
        CHECK(f.error().kind == ErrorKind::invalid_input);
        return f.error().message;
    };
    CHECK_THAT(err("sctp", "", "", ""), Contains("--proto: 'sctp'"));
    CHECK_THAT(err("", "10.0.0.300", "", ""), Contains("--addr"));
    CHECK_THAT(err("", "", "0", ""), Contains("--port: '0'"));
    CHECK_THAT(err("", "", "65536", ""), Contains("--port: '65536'"));
    CHECK_THAT(err("", "", "22x", ""), Contains("--port: '22x'"));
    CHECK_THAT(err("", "", "", "OPEN"), Contains("--state: 'OPEN'") && Contains("ESTABLISHED"));
}
