// Port-forward DNAT: input packet -> verdict, output bytes and connection entries, for both
// hooks. The fixture has no interfaces configured, so every translated packet is handed to
// the kernel (pass_fib): these tests are about the translation itself.
#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include <cstring>

#include "bpf_harness.h"
#include "expect.h"
#include "kernel/rule_store.h"
#include "scenario.h"
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

} // namespace

TEST_CASE("dnat: a TCP SYN to a forward is rewritten and creates both halves")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO("hook " << hook_name(hook));
    BpfFixture fx;
    fx.install(rules());

    PacketSpec in = client_tcp();
    in.payload = {'h', 'e', 'l', 'l', 'o'};
    PacketSpec want = in;
    want.daddr = ip("10.0.0.12");
    want.dport = 22;

    RunResult r = fx.run(hook, Side::wan, build(in));
    CHECK(r.verdict == pass_verdict(hook));
    check_frame(r.out, build(want));
    CHECK(fx.counter(XNAT_CNT_PASS_FIB) == 1);
    CHECK(fx.counter(XNAT_CNT_NEW_FLOW) == 1);

    REQUIRE(fx.ct_entries() == 2);
    auto conns = fx.conns();
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

TEST_CASE("dnat: replies are reverse-translated on the LAN side and drive TCP state")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO("hook " << hook_name(hook));
    BpfFixture fx;
    fx.install(rules());
    REQUIRE(fx.run(hook, Side::wan, build(client_tcp())).verdict == pass_verdict(hook));

    // Server 10.0.0.12:22 answers the client; the client must see the public address.
    PacketSpec synack;
    synack.saddr = ip("10.0.0.12");
    synack.daddr = ip("198.51.100.2");
    synack.sport = 22;
    synack.dport = 40000;
    synack.tcp_flags = kSyn | kAck;
    PacketSpec want = synack;
    want.saddr = ip("203.0.113.1");
    want.sport = 22012;
    RunResult r = fx.run(hook, Side::lan, build(synack));
    CHECK(r.verdict == pass_verdict(hook));
    check_frame(r.out, build(want));
    CHECK(fx.conns().at(0).original.state == XNAT_TCP_SYN_RECV);
    CHECK(fx.conns().at(0).reply.packets == 1);

    PacketSpec ack = client_tcp();
    ack.tcp_flags = kAck;
    fx.run(hook, Side::wan, build(ack));
    CHECK(fx.conns().at(0).original.state == XNAT_TCP_ESTABLISHED);
    CHECK(fx.counter(XNAT_CNT_NEW_FLOW) == 1);
}

TEST_CASE("dnat: a UDP port range keeps each port's offset, and replies come back")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    uint16_t port = GENERATE(as<uint16_t>{}, 6000, 6005, 6009);
    INFO("hook " << hook_name(hook) << " port " << port);
    BpfFixture fx;
    fx.install(rules());

    PacketSpec in;
    in.proto = kUdp;
    in.saddr = ip("198.51.100.2");
    in.daddr = ip("203.0.113.1");
    in.sport = 5555;
    in.dport = port;
    in.payload.assign(100, 0xab);
    PacketSpec want = in;
    want.daddr = ip("10.0.0.20");
    check_frame(fx.run(hook, Side::wan, build(in)).out, build(want));

    PacketSpec reply = reversed(want, 0);
    PacketSpec reply_want = reversed(in, 0);
    check_frame(fx.run(hook, Side::lan, build(reply)).out, build(reply_want));
    auto conns = fx.conns();
    REQUIRE(conns.size() == 1);
    CHECK(conns[0].original.flags & XNAT_CT_F_SEEN_REPLY);
    CHECK(conns[0].original.peer.sport == be16(port));
}

TEST_CASE("dnat: ports outside the range, and other protocols, are not translated")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    BpfFixture fx;
    fx.install(rules());
    PacketSpec in;
    in.proto = kUdp;
    in.saddr = ip("198.51.100.2");
    in.daddr = ip("203.0.113.1");
    in.sport = 5555;
    in.dport = 6010;
    Bytes frame = build(in);
    check_untouched(fx.run(hook, Side::wan, frame), frame, hook);

    PacketSpec tcp = client_tcp();
    tcp.dport = 6005; // the range is a UDP rule
    frame = build(tcp);
    check_untouched(fx.run(hook, Side::wan, frame), frame, hook);
    CHECK(fx.counter(XNAT_CNT_PASS_NO_MATCH) == 2);
    CHECK(fx.ct_entries() == 0);
}

TEST_CASE("dnat: a UDP datagram without checksum keeps a zero checksum")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    BpfFixture fx;
    fx.install(rules());
    PacketSpec in;
    in.proto = kUdp;
    in.saddr = ip("198.51.100.2");
    in.daddr = ip("203.0.113.1");
    in.sport = 5555;
    in.dport = 6001;
    in.udp_no_checksum = true;
    in.payload = {9, 9, 9};
    PacketSpec want = in;
    want.daddr = ip("10.0.0.20");
    RunResult r = fx.run(hook, Side::wan, build(in));
    check_frame(r.out, build(want), true);
    CHECK(fields(r.out).l4_check == 0);
}

TEST_CASE("dnat: a UDP checksum that becomes zero is sent as 0xffff")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    BpfFixture fx;
    fx.install(rules());
    PacketSpec want;
    want.proto = kUdp;
    want.saddr = ip("198.51.100.2");
    want.daddr = ip("10.0.0.20");
    want.sport = 5555;
    want.dport = 6002;
    want.payload = {0, 0, 1, 2, 3, 4};
    // Putting the packet's own checksum into a payload word makes its sum all ones: the
    // computed checksum is then 0, which UDP must transmit as 0xffff.
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

    PacketSpec in = want;
    in.daddr = ip("203.0.113.1");
    RunResult r = fx.run(hook, Side::wan, build(in));
    check_frame(r.out, build(want));
    CHECK(fields(r.out).l4_check == 0xffff);
}

TEST_CASE("dnat: a LAN-side rule applies on LAN ingress only")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    BpfFixture fx;
    fx.install(rules());
    // The seed's gateway B: LAN host 10.0.1.13 asks for 10.0.0.12:22, which lives behind a
    // remote gateway's public forward 198.51.100.7:22012.
    PacketSpec in;
    in.saddr = ip("10.0.1.13");
    in.daddr = ip("10.0.0.12");
    in.sport = 2182;
    in.dport = 22;
    PacketSpec want = in;
    want.daddr = ip("198.51.100.7");
    want.dport = 22012;

    Bytes frame = build(in);
    check_untouched(fx.run(hook, Side::wan, frame), frame, hook);
    CHECK(fx.ct_entries() == 0);

    check_frame(fx.run(hook, Side::lan, frame).out, build(want));
    auto conns = fx.conns();
    REQUIRE(conns.size() == 1);
    CHECK(conns[0].original.nat == XNAT_NAT_DNAT);
    CHECK(conns[0].original.peer.saddr == be32(ip("198.51.100.7")));
    CHECK(conns[0].original.peer.sport == be16(22012));
}

TEST_CASE("dnat: IPv4 options are stepped over, not mistaken for the L4 header")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    BpfFixture fx;
    fx.install(rules());
    PacketSpec in = client_tcp();
    in.ip_options = {0x01, 0x01, 0x01, 0x00}; // NOP NOP NOP EOL
    PacketSpec want = in;
    want.daddr = ip("10.0.0.12");
    want.dport = 22;
    check_frame(fx.run(hook, Side::wan, build(in)).out, build(want));
}

TEST_CASE("dnat: TTL 1 is handed to the kernel translated, TTL untouched")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    BpfFixture fx;
    fx.install(rules());
    PacketSpec in = client_tcp();
    in.ttl = 1;
    PacketSpec want = in;
    want.daddr = ip("10.0.0.12");
    want.dport = 22;
    RunResult r = fx.run(hook, Side::wan, build(in));
    CHECK(r.verdict == pass_verdict(hook));
    check_frame(r.out, build(want));
    CHECK(fields(r.out).ttl == 1);
    CHECK(fx.counter(XNAT_CNT_PASS_TTL) == 1);
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
