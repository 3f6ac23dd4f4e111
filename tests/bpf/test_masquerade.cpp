// Masquerade (source NAT) and hairpin: external ports and their mappings, filtering, and that
// mappings live exactly as long as the flows holding them. Runs against the test network, since
// masquerade applies only to flows routed out of the WAN interface.
#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include <set>

#include "bpf_harness.h"
#include "expect.h"
#include "kernel/map_io.h"
#include "kernel/rule_store.h"
#include "xnat/abi.h"
#include "xnat/counters.h"

using namespace xnat;
using namespace xnat::test;

namespace {

// The gateway most cases here need: the LAN masqueraded to the WAN address.
struct Gateway : NetGateway {
    explicit Gateway(Hook h, std::vector<Masquerade> masqs = {masq("10.0.0.0/24", kWanAddr)},
                     std::vector<PortForward> fwds = {}, uint32_t max_connections = 1024)
        : NetGateway(h, std::move(fwds), std::move(masqs), max_connections)
    {
    }
};

uint16_t ext_port(const RunResult &r)
{
    return fields(r.out).sport;
}

uint32_t mapping_refs(const BpfFixture &fx, uint16_t port, uint8_t proto = kTcp)
{
    xnat_snat_key k{};
    k.addr = htonl(ip(kWanAddr));
    k.port = htons(port);
    k.proto = proto;
    auto m = map_lookup<xnat_snat_key, xnat_snat_mapping>(fx.maps().snat, k, "snat");
    REQUIRE(m);
    return *m ? (*m)->refs : 0;
}

} // namespace

TEST_CASE("masquerade: a LAN flow leaves with the WAN address and its own port, and replies return")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    Gateway gw(hook);

    PacketSpec in = lan_to("10.0.0.5", 20000, "203.0.113.50", 80);
    PacketSpec want = in;
    want.saddr = ip(kWanAddr);
    want.ttl = 63;
    want.eth_dst = kRouterMac;
    want.eth_src = mac_of("wan0");
    RunResult r = gw.from_lan(build(in));
    CHECK(r.verdict == redirect_verdict(hook));
    check_frame(r.out, build(want));
    CHECK(gw.fx.snat_mappings() == 1);
    CHECK(mapping_refs(gw.fx, 20000) == 1);

    PacketSpec reply = lan_to("203.0.113.50", 80, kWanAddr, 20000);
    reply.tcp_flags = kSyn | kAck;
    PacketSpec reply_want = lan_to("203.0.113.50", 80, "10.0.0.5", 20000);
    reply_want.tcp_flags = kSyn | kAck;
    reply_want.ttl = 63;
    reply_want.eth_dst = kLanHostMac;
    reply_want.eth_src = mac_of("lan0");
    RunResult back = gw.from_wan(build(reply));
    CHECK(back.verdict == redirect_verdict(hook));
    check_frame(back.out, build(reply_want));

    auto conns = gw.fx.conns();
    REQUIRE(conns.size() == 1);
    CHECK(conns[0].original.peer.daddr == htonl(ip(kWanAddr)));
    CHECK(conns[0].original.peer.dport == htons(20000));
    CHECK(conns[0].original.state == XNAT_TCP_SYN_RECV);
    CHECK((conns[0].original.nat & XNAT_NAT_SNAT));
}

TEST_CASE("masquerade: ports the gateway uses itself, or that a forward owns, are never handed out")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    Gateway gw(hook, {masq("10.0.0.0/24", kWanAddr)},
               {fwd("tcp", "198.51.100.1:20001", "10.0.0.12:22")});
    uint16_t local = ext_port(gw.from_lan(build(lan_to("10.0.0.5", 40000, "203.0.113.50", 80))));
    CHECK((local < kLocalPortLo || local > kLocalPortHi));
    uint16_t owned = ext_port(gw.from_lan(build(lan_to("10.0.0.5", 20001, "203.0.113.50", 80))));
    CHECK(owned != 20001);
    CHECK(owned >= 1024);
}

TEST_CASE("masquerade: one internal endpoint keeps one external port across destinations (EIM)")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    Gateway gw(hook);
    uint16_t a = ext_port(gw.from_lan(build(lan_to("10.0.0.5", 40000, "203.0.113.50", 80))));
    uint16_t b = ext_port(gw.from_lan(build(lan_to("10.0.0.5", 40000, "203.0.113.51", 443))));
    uint16_t c = ext_port(gw.from_lan(build(lan_to("10.0.0.5", 40000, "192.0.2.200", 443))));
    CHECK(a == b);
    CHECK(gw.fx.snat_mappings() == 1);
    CHECK(mapping_refs(gw.fx, a) == 2);
    (void)c; // 192.0.2.0/24 is unreachable here: not routed out of the WAN, so not masqueraded
    CHECK(gw.fx.counter(XNAT_CNT_PASS_NO_MATCH) == 1);
}

TEST_CASE("masquerade: two hosts with the same source port get distinct external ports")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    Gateway gw(hook);
    uint16_t a = ext_port(gw.from_lan(build(lan_to("10.0.0.5", 20000, "203.0.113.50", 80))));
    uint16_t b = ext_port(gw.from_lan(build(lan_to("10.0.0.6", 20000, "203.0.113.50", 80))));
    CHECK(a == 20000);
    CHECK(b != 20000);
    CHECK(b >= 1024);
    CHECK((b < kLocalPortLo || b > kLocalPortHi));
    CHECK(gw.fx.snat_mappings() == 2);
}

TEST_CASE("masquerade: an exhausted port range refuses the flow with a counter, never a shared port")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    Gateway gw(hook, {masq("10.0.0.0/24", kWanAddr, 2000, 2003)});
    std::set<uint16_t> used;
    for (uint16_t host = 10; host < 14; ++host) {
        std::string src = "10.0.0." + std::to_string(host);
        RunResult r = gw.from_lan(build(lan_to(src.c_str(), 5555, "203.0.113.50", 80)));
        REQUIRE(r.verdict == redirect_verdict(hook));
        used.insert(ext_port(r));
    }
    CHECK(used == std::set<uint16_t>{2000, 2001, 2002, 2003});
    RunResult r = gw.from_lan(build(lan_to("10.0.0.20", 5555, "203.0.113.50", 80)));
    CHECK(r.verdict == drop_verdict(hook));
    CHECK(gw.fx.counter(XNAT_CNT_DROP_PORTS_EXHAUSTED) == 1);
    CHECK(gw.fx.conns().size() == 4);
    CHECK(gw.fx.snat_mappings() == 4);
    // An existing endpoint still gets its mapping for a new destination.
    CHECK(gw.from_lan(build(lan_to("10.0.0.10", 5555, "203.0.113.51", 80))).verdict == redirect_verdict(hook));
}

TEST_CASE("masquerade: excluded destinations and other sources are left alone")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    Gateway gw(hook, {masq("10.0.0.0/24", kWanAddr, 1024, 65535, false, {"203.0.113.0/25"})});
    Bytes excluded = build(lan_to("10.0.0.5", 20000, "203.0.113.50", 80));
    RunResult r = gw.from_lan(excluded);
    CHECK(r.verdict == pass_verdict(hook));
    CHECK(hex(r.out) == hex(excluded));
    Bytes other_source = build(lan_to("10.0.9.5", 20000, "203.0.113.200", 80));
    r = gw.from_lan(other_source);
    CHECK(hex(r.out) == hex(other_source));
    CHECK(gw.fx.counter(XNAT_CNT_PASS_NO_MATCH) == 2);
    // Outside the excluded /25 the rule applies.
    CHECK(fields(gw.from_lan(build(lan_to("10.0.0.5", 20000, "203.0.113.200", 80))).out).saddr == ip(kWanAddr));
    CHECK(gw.fx.snat_mappings() == 1);
}

TEST_CASE("masquerade: filtering is address- and port-dependent unless endpoint-independent is asked")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    bool eif = GENERATE(false, true);
    INFO(hook_name(hook) << (eif ? " endpoint-independent" : " address-port-dependent"));
    Gateway gw(hook, {masq("10.0.0.0/24", kWanAddr, 1024, 65535, eif)});
    PacketSpec out = lan_to("10.0.0.5", 20000, "203.0.113.50", 3478, kUdp);
    REQUIRE(ext_port(gw.from_lan(build(out))) == 20000);

    // A stranger writes to the mapped port.
    PacketSpec stranger = lan_to("203.0.113.99", 5000, kWanAddr, 20000, kUdp);
    Bytes frame = build(stranger);
    RunResult r = gw.from_wan(frame);
    if (!eif) {
        check_untouched(r, frame, hook);
        CHECK(gw.fx.counter(XNAT_CNT_PASS_NO_MATCH) == 1);
        CHECK(gw.fx.conns().size() == 1);
    } else {
        CHECK(fields(r.out).daddr == ip("10.0.0.5"));
        CHECK(fields(r.out).dport == 20000);
        CHECK(gw.fx.conns().size() == 2);
        CHECK(mapping_refs(gw.fx, 20000, kUdp) == 2);
        // The internal host's answer to the stranger leaves through the same mapping.
        PacketSpec answer = lan_to("10.0.0.5", 20000, "203.0.113.99", 5000, kUdp);
        RunResult a = gw.from_lan(build(answer));
        CHECK(fields(a.out).saddr == ip(kWanAddr));
        CHECK(fields(a.out).sport == 20000);
    }
}

TEST_CASE("masquerade: a mapping lives exactly as long as the flows that hold it")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    Gateway gw(hook);
    gw.from_lan(build(lan_to("10.0.0.5", 20000, "203.0.113.50", 3478, kUdp)));
    gw.from_lan(build(lan_to("10.0.0.5", 20000, "203.0.113.51", 3478, kUdp)));
    gw.from_lan(build(lan_to("10.0.0.6", 20000, "203.0.113.50", 3478, kUdp)));
    REQUIRE(gw.fx.snat_mappings() == 2);

    SECTION("expiry")
    {
        gw.fx.advance_clock_s(303);
        gw.from_wan(build(lan_to("203.0.113.50", 3478, kWanAddr, 20000, kUdp)));
        CHECK(gw.fx.counter(XNAT_CNT_CT_EXPIRED) == 1);
        CHECK(mapping_refs(gw.fx, 20000, kUdp) == 1); // the flow to .51 still holds it
        gw.from_wan(build(lan_to("203.0.113.51", 3478, kWanAddr, 20000, kUdp)));
        CHECK(gw.fx.counter(XNAT_CNT_CT_EXPIRED) == 2);
        CHECK(gw.fx.snat_mappings() == 1);
    }
    SECTION("flush")
    {
        CHECK(gw.fx.flush() == 3);
        CHECK(gw.fx.ct_entries() == 0);
        CHECK(gw.fx.snat_mappings() == 0);
    }
}

TEST_CASE("masquerade: ICMP echo is translated by its identifier")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    Gateway gw(hook);
    PacketSpec ping = lan_to("10.0.0.5", 0, "203.0.113.50", 0, kIcmp);
    ping.icmp_type = kEcho;
    ping.icmp_id = 0x1234;
    ping.sport = 0x1234;
    PacketSpec want = ping;
    want.saddr = ip(kWanAddr);
    want.ttl = 63;
    want.eth_dst = kRouterMac;
    want.eth_src = mac_of("wan0");
    RunResult r = gw.from_lan(build(ping));
    CHECK(r.verdict == redirect_verdict(hook));
    check_frame(r.out, build(want));

    PacketSpec pong = lan_to("203.0.113.50", 0, kWanAddr, 0, kIcmp);
    pong.icmp_type = kEchoReply;
    pong.icmp_id = 0x1234;
    PacketSpec pong_want = pong;
    pong_want.daddr = ip("10.0.0.5");
    pong_want.ttl = 63;
    pong_want.eth_dst = kLanHostMac;
    pong_want.eth_src = mac_of("lan0");
    check_frame(gw.from_wan(build(pong)).out, build(pong_want));

    // A second host pinging with the same identifier gets another one.
    PacketSpec ping2 = ping;
    ping2.saddr = ip("10.0.0.6");
    RunResult r2 = gw.from_lan(build(ping2));
    CHECK(fields(r2.out).icmp_id != 0x1234);
    CHECK(icmp_checksum_ok(r2.out));
    auto conns = gw.fx.conns();
    CHECK(conns.size() == 2);
}

TEST_CASE("masquerade: a UDP datagram without checksum keeps a zero checksum")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    Gateway gw(hook);
    PacketSpec in = lan_to("10.0.0.5", 20000, "203.0.113.50", 53, kUdp);
    in.udp_no_checksum = true;
    RunResult r = gw.from_lan(build(in));
    CHECK(fields(r.out).saddr == ip(kWanAddr));
    CHECK(fields(r.out).l4_check == 0);
    CHECK(ipv4_checksum_ok(r.out));
}

TEST_CASE("hairpin: a LAN host reaches a forward through the public address")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    Gateway gw(hook, {}, {fwd("tcp", "203.0.113.1:22012", "10.0.0.12:22")});

    PacketSpec in = lan_to("10.0.0.5", 20000, "203.0.113.1", 22012);
    RunResult r = gw.from_lan(build(in));
    CHECK(r.verdict == redirect_verdict(hook));
    Fields f = fields(r.out);
    // Towards the server, from the public address: the server's reply must come back here.
    CHECK(f.saddr == ip("203.0.113.1"));
    CHECK(f.daddr == ip("10.0.0.12"));
    CHECK(f.dport == 22);
    CHECK(f.eth_dst == kServerMac);
    CHECK(f.eth_src == mac_of("lan0"));
    CHECK(ipv4_checksum_ok(r.out));
    CHECK(l4_checksum_ok(r.out));

    PacketSpec reply = lan_to("10.0.0.12", 22, "203.0.113.1", f.sport);
    reply.tcp_flags = kSyn | kAck;
    PacketSpec reply_want = lan_to("203.0.113.1", 22012, "10.0.0.5", 20000);
    reply_want.tcp_flags = kSyn | kAck;
    reply_want.ttl = 63;
    reply_want.eth_dst = kLanHostMac;
    reply_want.eth_src = mac_of("lan0");
    RunResult back = gw.from_lan(build(reply));
    CHECK(back.verdict == redirect_verdict(hook));
    check_frame(back.out, build(reply_want));
    auto conns = gw.fx.conns();
    REQUIRE(conns.size() == 1);
    CHECK((conns[0].original.nat & XNAT_NAT_HAIRPIN));
    CHECK(gw.fx.flush() == 1);
    CHECK(gw.fx.snat_mappings() == 0);
}

TEST_CASE("policy: a source-NATed packet the kernel must answer with an error goes untranslated")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    Gateway gw(hook, {masq("10.0.0.0/24", kWanAddr)}, {fwd("udp", "198.51.100.1:6000", "10.0.0.5:6000")});

    SECTION("TTL expiring on a masqueraded flow")
    {
        PacketSpec in = lan_to("10.0.0.5", 20000, "203.0.113.50", 80);
        in.ttl = 1;
        Bytes frame = build(in);
        check_untouched(gw.from_lan(frame), frame, hook);
        CHECK(gw.fx.counter(XNAT_CNT_PASS_FOR_ERROR) == 1);
    }
    SECTION("too big for the WAN link, DF set, on a masqueraded flow")
    {
        PacketSpec in = lan_to("10.0.0.5", 20000, "203.0.113.50", 80, kUdp);
        in.payload.assign(1600, 7);
        Bytes frame = build(in);
        check_untouched(gw.from_lan(frame), frame, hook);
        CHECK(gw.fx.counter(XNAT_CNT_PASS_FOR_ERROR) == 1);
    }
    SECTION("too big without DF: translated, since the kernel fragments and forwards it")
    {
        PacketSpec in = lan_to("10.0.0.5", 20000, "203.0.113.50", 80, kUdp);
        in.payload.assign(1600, 7);
        in.frag = 0; // DF clear
        RunResult r = gw.from_lan(build(in));
        CHECK(r.verdict == pass_verdict(hook));
        CHECK(fields(r.out).saddr == ip(kWanAddr));
        CHECK(gw.fx.counter(XNAT_CNT_PASS_FRAG_NEEDED) == 1);
    }
    SECTION("TTL expiring on a forwarded flow is handed over translated")
    {
        PacketSpec in = lan_to("203.0.113.50", 5000, kWanAddr, 6000, kUdp);
        in.ttl = 1;
        RunResult r = gw.from_wan(build(in));
        CHECK(fields(r.out).daddr == ip("10.0.0.5"));
        CHECK(gw.fx.counter(XNAT_CNT_PASS_TTL) == 1);
    }
}

TEST_CASE("masquerade: flows count against their masquerade rule")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    Gateway gw(hook, {masq("10.0.0.0/25", kWanAddr), masq("10.0.0.128/25", kWanAddr)});
    gw.from_lan(build(lan_to("10.0.0.5", 20000, "203.0.113.50", 80)));
    gw.from_lan(build(lan_to("10.0.0.6", 20000, "203.0.113.50", 80)));
    gw.from_lan(build(lan_to("10.0.0.200", 20000, "203.0.113.50", 80)));
    auto hits = read_rule_hits(gw.fx.maps());
    REQUIRE(hits);
    CHECK((*hits)[XNAT_MAX_RULES + 0] == 2);
    CHECK((*hits)[XNAT_MAX_RULES + 1] == 1);
}
