// Port-forward DNAT: input packet -> verdict, output bytes, counters and connection entries,
// for both hooks, as a table of cases (table_case.h). The fixture has no interfaces configured,
// so every translated packet is handed to the kernel (pass_fib): these tests are about the
// translation itself.
#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <functional>

#include "bpf_harness.h"
#include "expect.h"
#include "kernel/rule_store.h"
#include "scenario.h"
#include "table_case.h"
#include "xnat/counters.h"

using namespace xnat;
using namespace xnat::test;

namespace {

std::vector<PortForward> rules()
{
    return {fwd("tcp", "203.0.113.1:22012", "10.0.0.12:22"),
            fwd("udp", "203.0.113.1:6000-6009", "10.0.0.20:6000"),
            fwd("tcp", "10.0.0.12:22", "198.51.100.7:22012", "lan")};
}


uint32_t be32(uint32_t host) { return htonl(host); }
uint16_t be16(uint16_t host) { return htons(host); }

PacketSpec to_udp_server(PacketSpec s)
{
    s.daddr = ip(kUdpServer);
    return s;
}

// The seed's gateway B: LAN host 10.0.1.13 asks for 10.0.0.12:22, which lives behind a remote
// gateway's public forward 198.51.100.7:22012.
PacketSpec to_remote_forward()
{
    return flow_packet(kTcp, "10.0.1.13", 2182, kSshServer, kSshPort);
}

// A datagram that leaves the DNAT with the checksum 0xffff. Putting the packet's own checksum
// into a payload word makes its sum all ones: the computed checksum is then 0, which UDP must
// transmit as 0xffff.
PacketSpec udp_summing_to_zero()
{
    PacketSpec want = to_udp_server(client_udp(6002, {0, 0, 1, 2, 3, 4}));
    want.udp_no_checksum = true;
    Bytes probe = build(want);
    size_t l4 = fields(probe).l4_off;
    size_t seg = probe.size() - l4;
    uint32_t pseudo = (want.saddr >> 16) + (want.saddr & 0xffff) + (want.daddr >> 16) +
                      (want.daddr & 0xffff) + kUdp + static_cast<uint32_t>(seg);
    uint16_t c = internet_checksum(&probe[l4], seg, pseudo);
    want.payload[0] = static_cast<uint8_t>(c >> 8);
    want.payload[1] = static_cast<uint8_t>(c);
    want.udp_no_checksum = false;
    REQUIRE(fields(build(want)).l4_check == 0xffff);
    return want;
}

PacketSpec with(PacketSpec s, const std::function<void(PacketSpec &)> &change)
{
    change(s);
    return s;
}

uint8_t state(const BpfFixture &fx)
{
    auto conns = fx.conns();
    REQUIRE(conns.size() == 1);
    return conns[0].original.state;
}

void check_syn_flow(Target &t)
{
    auto conns = t.fx.conns();
    REQUIRE(conns.size() == 1);
    const Connection &c = conns[0];
    CHECK(c.original_key.saddr == be32(ip("198.51.100.2")));
    CHECK(c.original_key.daddr == be32(ip("203.0.113.1")));
    CHECK(c.original_key.sport == be16(40000));
    CHECK(c.original_key.dport == be16(22012));
    CHECK(c.original_key.proto == kTcp);
    CHECK(c.original.peer.saddr == be32(ip("10.0.0.12")));
    CHECK(c.original.peer.daddr == be32(ip("198.51.100.2")));
    CHECK(c.original.peer.sport == be16(22));
    CHECK(c.original.peer.dport == be16(40000));
    CHECK(c.original.state == XNAT_TCP_SYN_SENT);
    CHECK(c.original.dir == XNAT_DIR_ORIGINAL);
    CHECK(c.original.packets == 1);
    CHECK(c.original.bytes == 45);
    CHECK_FALSE(c.reply_missing);
    CHECK(c.reply.dir == XNAT_DIR_REPLY);
    CHECK(c.reply.packets == 0);
    CHECK(std::memcmp(&c.reply.peer, &c.original_key, sizeof(c.original_key)) == 0);
}

void add_udp_range_cases(std::vector<TableCase> &list, uint16_t port)
{
    PacketSpec in = client_udp(port, Bytes(100, 0xab));
    list.push_back({"a UDP port in a range keeps its offset", Side::wan, in, to_udp_server(in), Verdict::pass,
                    XNAT_CNT_PASS_FIB, {XNAT_CNT_NEW_FLOW}, 2});
    list.push_back({"a reply from a port in a range comes back from that port", Side::lan,
                    reversed(to_udp_server(in), 0), reversed(in, 0), Verdict::pass, XNAT_CNT_PASS_FIB, {}, 0, 0,
                    [in](Target &t) { t.send(Side::wan, in); },
                    [port](Target &t) {
                        auto conns = t.fx.conns();
                        REQUIRE(conns.size() == 1);
                        CHECK(conns[0].original.flags & XNAT_CT_F_SEEN_REPLY);
                        CHECK(conns[0].original.peer.sport == be16(port));
                    }});
}

std::vector<TableCase> cases()
{
    PacketSpec hello = with(client_tcp(), [](PacketSpec &s) { s.payload = {'h', 'e', 'l', 'l', 'o'}; });
    auto syn_sent = [](Target &t) { REQUIRE(t.send(Side::wan, client_tcp()).verdict == pass_verdict(t.hook)); };
    std::vector<TableCase> list = {
        {"a TCP SYN to a forward is rewritten and creates both halves", Side::wan, hello, to_ssh_server(hello),
         Verdict::pass, XNAT_CNT_PASS_FIB, {XNAT_CNT_NEW_FLOW}, 2, 0, {}, check_syn_flow},
        {"the server's SYN+ACK is reverse-translated on the LAN side", Side::lan, server_tcp(kSyn | kAck),
         from_ssh_forward(server_tcp(kSyn | kAck)), Verdict::pass, XNAT_CNT_PASS_FIB, {}, 0, 0, syn_sent,
         [](Target &t) {
             CHECK(state(t.fx) == XNAT_TCP_SYN_RECV);
             CHECK(t.fx.conns().at(0).reply.packets == 1);
         }},
        {"the client's ACK completes the handshake", Side::wan, client_tcp(kAck), to_ssh_server(client_tcp(kAck)),
         Verdict::pass, XNAT_CNT_PASS_FIB, {}, 0, 0,
         [syn_sent](Target &t) {
             syn_sent(t);
             t.send(Side::lan, server_tcp(kSyn | kAck));
         },
         [](Target &t) { CHECK(state(t.fx) == XNAT_TCP_ESTABLISHED); }},
        {"a UDP port outside the range is not translated", Side::wan, client_udp(6010), std::nullopt, Verdict::pass,
         XNAT_CNT_PASS_NO_MATCH, {}, 0},
        {"TCP to a UDP range's port is not translated", Side::wan, client_tcp(kSyn, kClientPort, 6005), std::nullopt,
         Verdict::pass, XNAT_CNT_PASS_NO_MATCH, {}, 0},
        {"a UDP datagram without checksum keeps a zero checksum", Side::wan,
         with(client_udp(6001, {9, 9, 9}), [](PacketSpec &s) { s.udp_no_checksum = true; }),
         with(to_udp_server(client_udp(6001, {9, 9, 9})), [](PacketSpec &s) { s.udp_no_checksum = true; }),
         Verdict::pass, XNAT_CNT_PASS_FIB, {XNAT_CNT_NEW_FLOW}, 2, 0, {}, {}, true},
        {"a UDP checksum that becomes zero is sent as 0xffff", Side::wan,
         with(udp_summing_to_zero(), [](PacketSpec &s) { s.daddr = ip(kForwardAddr); }), udp_summing_to_zero(),
         Verdict::pass, XNAT_CNT_PASS_FIB, {XNAT_CNT_NEW_FLOW}, 2},
        {"a LAN-side rule does not apply on WAN ingress", Side::wan, to_remote_forward(), std::nullopt,
         Verdict::pass, XNAT_CNT_PASS_NO_MATCH, {}, 0},
        {"a LAN-side rule applies on LAN ingress", Side::lan, to_remote_forward(),
         with(to_remote_forward(),
              [](PacketSpec &s) {
                  s.daddr = ip("198.51.100.7");
                  s.dport = 22012;
              }),
         Verdict::pass, XNAT_CNT_PASS_FIB, {XNAT_CNT_NEW_FLOW}, 2, 0, {},
         [](Target &t) {
             auto conns = t.fx.conns();
             REQUIRE(conns.size() == 1);
             CHECK(conns[0].original.nat == XNAT_NAT_DNAT);
             CHECK(conns[0].original.peer.saddr == be32(ip("198.51.100.7")));
             CHECK(conns[0].original.peer.sport == be16(22012));
         }},
        {"IPv4 options are stepped over, not mistaken for the L4 header", Side::wan,
         with(client_tcp(), [](PacketSpec &s) { s.ip_options = {0x01, 0x01, 0x01, 0x00}; }), // NOP NOP NOP EOL
         to_ssh_server(with(client_tcp(), [](PacketSpec &s) { s.ip_options = {0x01, 0x01, 0x01, 0x00}; })),
         Verdict::pass, XNAT_CNT_PASS_FIB, {XNAT_CNT_NEW_FLOW}, 2},
        // The kernel, not the DNAT, answers an expiring TTL; it must see the translated packet.
        {"TTL 1 is handed to the kernel translated, TTL untouched", Side::wan,
         with(client_tcp(), [](PacketSpec &s) { s.ttl = 1; }),
         to_ssh_server(with(client_tcp(), [](PacketSpec &s) { s.ttl = 1; })), Verdict::pass, XNAT_CNT_PASS_TTL,
         {XNAT_CNT_NEW_FLOW}, 2},
    };
    for (uint16_t port : std::initializer_list<uint16_t>{6000, 6005, 6009})
        add_udp_range_cases(list, port);
    return list;
}

} // namespace

TEST_CASE("dnat: packet in, frame out, counter and connection table, per case")
{
    run_cases(cases(), GENERATE(Hook::xdp, Hook::tc), rules());
}

TEST_CASE("dnat: each rule counts the flows it made")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    BpfFixture fx;
    fx.install(rules());
    for (uint16_t sport = 40000; sport < 40003; ++sport) {
        PacketSpec s = client_tcp();
        s.sport = sport;
        fx.run(hook, Side::wan, build(s));
        fx.run(hook, Side::wan, build(s)); // a retransmitted SYN is the same flow
    }
    PacketSpec u;
    u.proto = kUdp;
    u.saddr = ip("198.51.100.2");
    u.daddr = ip("203.0.113.1");
    u.sport = 5555;
    u.dport = 6004;
    fx.run(hook, Side::wan, build(u));
    auto hits = read_rule_hits(fx.maps());
    REQUIRE(hits);
    CHECK((*hits)[0] == 3);
    CHECK((*hits)[1] == 1);
    CHECK((*hits)[2] == 0);
}
