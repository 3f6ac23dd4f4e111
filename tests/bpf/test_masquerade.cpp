// Masquerade (source NAT) and hairpin: external ports and their mappings, filtering, and that
// mappings live exactly as long as the flows holding them. Runs against the test network, since
// masquerade applies only to flows routed out of the WAN interface. What one packet decides is a
// table of cases (table_case.h); what depends on a chosen port or on several flows stays a sequence.
#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include <functional>
#include <set>

#include "bpf_harness.h"
#include "expect.h"
#include "kernel/map_io.h"
#include "kernel/rule_store.h"
#include "scenario.h"
#include "table_case.h"
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

// Routed out of the WAN interface to the internet's router, one hop fewer.
PacketSpec routed_to_wan(PacketSpec s)
{
    s.ttl = static_cast<uint8_t>(s.ttl - 1);
    s.eth_dst = kRouterMac;
    s.eth_src = mac_of("wan0");
    return s;
}

// Routed out of the LAN interface to the LAN host at `to`, one hop fewer.
PacketSpec routed_to_lan(PacketSpec s, const Mac &to)
{
    s.ttl = static_cast<uint8_t>(s.ttl - 1);
    s.eth_dst = to;
    s.eth_src = mac_of("lan0");
    return s;
}

PacketSpec masqueraded(PacketSpec s)
{
    s.saddr = ip(kWanAddr);
    return routed_to_wan(s);
}

PacketSpec with(PacketSpec s, const std::function<void(PacketSpec &)> &change)
{
    change(s);
    return s;
}

// Replaces the gateway's rules, for a case that needs other ones than Gateway's.
std::function<void(Target &)> rules(std::vector<Masquerade> masqs, std::vector<PortForward> fwds = {})
{
    return [masqs, fwds](Target &t) { t.fx.install(fwds, masqs); };
}

// A setup of rules, then earlier packets from the LAN.
std::function<void(Target &)> after(std::function<void(Target &)> setup, std::vector<PacketSpec> from_lan)
{
    return [setup, from_lan](Target &t) {
        if (setup)
            setup(t);
        for (const PacketSpec &p : from_lan)
            t.send(Side::lan, p);
    };
}

PacketSpec syn_ack(PacketSpec s)
{
    s.tcp_flags = kSyn | kAck;
    return s;
}

PacketSpec ttl(PacketSpec s, uint8_t value)
{
    s.ttl = value;
    return s;
}

// More than the WAN link's MTU takes; DF unless told.
PacketSpec too_big(bool df = true)
{
    PacketSpec s = lan_host_to_remote(kUdp, 20000, 80);
    s.payload.assign(1600, 7);
    if (!df)
        s.frag = 0;
    return s;
}

PacketSpec echo(const char *src, uint16_t id)
{
    PacketSpec s = lan_to(src, id, kRemote, 0, kIcmp);
    s.icmp_type = kEcho;
    s.icmp_id = id;
    return s;
}

PacketSpec echo_reply(const char *dst, uint16_t id)
{
    PacketSpec s = lan_to(kRemote, 0, dst, 0, kIcmp);
    s.icmp_type = kEchoReply;
    s.icmp_id = id;
    return s;
}

// The cases filtering decides: a stranger writing to a mapped UDP port, and the internal host's
// answer, under address-and-port-dependent or endpoint-independent filtering.
void add_filtering_cases(std::vector<TableCase> &list, bool eif)
{
    PacketSpec out = lan_host_to_remote(kUdp, 20000, 3478);
    auto mapped = [eif, out](Target &t) {
        t.fx.install({}, {masq("10.0.0.0/24", kWanAddr, 1024, 65535, eif)});
        REQUIRE(ext_port(t.send(Side::lan, out)) == 20000);
    };
    PacketSpec stranger = lan_to("203.0.113.99", 5000, kWanAddr, 20000, kUdp);
    if (!eif) {
        list.push_back({"address-port-dependent filtering keeps a stranger out", Side::wan, stranger, std::nullopt,
                        Verdict::pass, XNAT_CNT_PASS_NO_MATCH, {}, 0, 0, mapped,
                        [](Target &t) { CHECK(t.fx.conns().size() == 1); }});
        return;
    }
    PacketSpec in = with(stranger, [](PacketSpec &s) { s.daddr = ip(kLanHost); });
    list.push_back({"endpoint-independent filtering lets a stranger in through the mapping", Side::wan, stranger,
                    routed_to_lan(in, kLanHostMac), Verdict::redirect, XNAT_CNT_REDIRECTED, {XNAT_CNT_NEW_FLOW}, 2,
                    0, mapped, [](Target &t) {
                        CHECK(t.fx.conns().size() == 2);
                        CHECK(mapping_refs(t.fx, 20000, kUdp) == 2);
                    }});
    PacketSpec answer = lan_to(kLanHost, 20000, "203.0.113.99", 5000, kUdp);
    list.push_back({"the internal host's answer to the stranger leaves through the same mapping", Side::lan,
                    answer, masqueraded(answer), Verdict::redirect, XNAT_CNT_REDIRECTED, {}, 0, 0,
                    [mapped, stranger](Target &t) {
                        mapped(t);
                        t.send(Side::wan, stranger);
                    }});
}

std::vector<TableCase> cases()
{
    PacketSpec web = lan_host_to_remote(kTcp, 20000, 80);
    PacketSpec web_reply = syn_ack(lan_to(kRemote, 80, kWanAddr, 20000));
    auto excluding = rules({masq("10.0.0.0/24", kWanAddr, 1024, 65535, false, {"203.0.113.0/25"})});
    PacketSpec outside_exclusion = lan_to(kLanHost, 20000, "203.0.113.200", 80);
    PacketSpec no_checksum = with(lan_host_to_remote(kUdp, 20000, 53), [](PacketSpec &s) { s.udp_no_checksum = true; });
    auto hairpin = rules({}, {fwd("tcp", "203.0.113.1:22012", "10.0.0.12:22")});
    PacketSpec to_forward = lan_to(kLanHost, 20000, kForwardAddr, kSshForwardPort);
    // Towards the server, from the public address: the server's reply must come back here.
    PacketSpec hairpinned = routed_to_lan(
        with(to_forward,
             [](PacketSpec &s) {
                 s.saddr = ip(kForwardAddr);
                 s.daddr = ip(kSshServer);
                 s.dport = kSshPort;
             }),
        kServerMac);
    auto policy = rules({masq("10.0.0.0/24", kWanAddr)}, {fwd("udp", "198.51.100.1:6000", "10.0.0.5:6000")});
    PacketSpec to_forward_ttl1 = ttl(lan_to(kRemote, 5000, kWanAddr, 6000, kUdp), 1);

    std::vector<TableCase> list = {
        {"a LAN flow leaves with the WAN address and its own port", Side::lan, web, masqueraded(web),
         Verdict::redirect, XNAT_CNT_REDIRECTED, {XNAT_CNT_NEW_FLOW}, 2, 1, {},
         [](Target &t) { CHECK(mapping_refs(t.fx, 20000) == 1); }},
        {"the reply returns to the LAN host", Side::wan, web_reply,
         routed_to_lan(syn_ack(lan_to(kRemote, 80, kLanHost, 20000)), kLanHostMac), Verdict::redirect,
         XNAT_CNT_REDIRECTED, {}, 0, 0, after({}, {web}),
         [](Target &t) {
             auto conns = t.fx.conns();
             REQUIRE(conns.size() == 1);
             CHECK(conns[0].original.peer.daddr == htonl(ip(kWanAddr)));
             CHECK(conns[0].original.peer.dport == htons(20000));
             CHECK(conns[0].original.state == XNAT_TCP_SYN_RECV);
             CHECK((conns[0].original.nat & XNAT_NAT_SNAT));
         }},
        {"an excluded destination is left alone", Side::lan, web, std::nullopt, Verdict::pass,
         XNAT_CNT_PASS_NO_MATCH, {}, 0, 0, excluding},
        {"another source is left alone", Side::lan, lan_to("10.0.9.5", 20000, "203.0.113.200", 80), std::nullopt,
         Verdict::pass, XNAT_CNT_PASS_NO_MATCH, {}, 0, 0, excluding},
        {"outside the excluded destinations the rule applies", Side::lan, outside_exclusion,
         masqueraded(outside_exclusion), Verdict::redirect, XNAT_CNT_REDIRECTED, {XNAT_CNT_NEW_FLOW}, 2, 1,
         excluding},
        {"ICMP echo is translated by its identifier", Side::lan, echo(kLanHost, 0x1234),
         masqueraded(echo(kLanHost, 0x1234)), Verdict::redirect, XNAT_CNT_REDIRECTED, {XNAT_CNT_NEW_FLOW}, 2, 1},
        {"the echo reply returns by its identifier", Side::wan, echo_reply(kWanAddr, 0x1234),
         routed_to_lan(echo_reply(kLanHost, 0x1234), kLanHostMac), Verdict::redirect, XNAT_CNT_REDIRECTED, {}, 0,
         0, after({}, {echo(kLanHost, 0x1234)})},
        {"a UDP datagram without checksum keeps a zero checksum", Side::lan, no_checksum, masqueraded(no_checksum),
         Verdict::redirect, XNAT_CNT_REDIRECTED, {XNAT_CNT_NEW_FLOW}, 2, 1, {}, {}, true},
        {"hairpin: a LAN host reaches a forward through the public address", Side::lan, to_forward, hairpinned,
         Verdict::redirect, XNAT_CNT_REDIRECTED, {XNAT_CNT_NEW_FLOW}, 2, 1, hairpin},
        {"hairpin: the server's reply returns to the LAN host from the forward", Side::lan,
         syn_ack(lan_to(kSshServer, kSshPort, kForwardAddr, 20000)),
         routed_to_lan(syn_ack(lan_to(kForwardAddr, kSshForwardPort, kLanHost, 20000)), kLanHostMac),
         Verdict::redirect, XNAT_CNT_REDIRECTED, {}, 0, 0, after(hairpin, {to_forward}),
         [](Target &t) {
             auto conns = t.fx.conns();
             REQUIRE(conns.size() == 1);
             CHECK((conns[0].original.nat & XNAT_NAT_HAIRPIN));
             CHECK(t.fx.flush() == 1);
             CHECK(t.fx.snat_mappings() == 0);
         }},
        // A source-NATed packet the kernel must answer with an error goes untranslated, so that
        // the error reaches the host that sent it. Its flow is made all the same: the route is
        // known only once the flow, and so the translated source, is.
        {"policy: TTL expiring on a masqueraded flow", Side::lan, ttl(web, 1), std::nullopt, Verdict::pass,
         XNAT_CNT_PASS_FOR_ERROR, {XNAT_CNT_NEW_FLOW}, 2, 1, policy},
        {"policy: too big for the WAN link, DF set, on a masqueraded flow", Side::lan, too_big(), std::nullopt,
         Verdict::pass, XNAT_CNT_PASS_FOR_ERROR, {XNAT_CNT_NEW_FLOW}, 2, 1, policy},
        {"policy: too big without DF: translated, since the kernel fragments and forwards it", Side::lan,
         too_big(false), with(too_big(false), [](PacketSpec &s) { s.saddr = ip(kWanAddr); }), Verdict::pass,
         XNAT_CNT_PASS_FRAG_NEEDED, {XNAT_CNT_NEW_FLOW}, 2, 1, policy},
        {"policy: TTL expiring on a forwarded flow is handed over translated", Side::wan, to_forward_ttl1,
         with(to_forward_ttl1, [](PacketSpec &s) { s.daddr = ip(kLanHost); }), Verdict::pass, XNAT_CNT_PASS_TTL,
         {XNAT_CNT_NEW_FLOW}, 2, 0, policy},
    };
    add_filtering_cases(list, false);
    add_filtering_cases(list, true);
    return list;
}

} // namespace

TEST_CASE("masquerade: packet in, frame out, counter, connections and mappings, per case")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    TestNet::get(); // the expected frames carry the test network's MACs
    for (const TableCase &c : cases()) {
        Gateway gw(hook, {masq("10.0.0.0/24", kWanAddr)}, {}, c.max_connections);
        Target t{gw.fx, hook, gw.net.wan0, gw.net.lan0};
        run_case(c, t);
    }
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

TEST_CASE("masquerade: a second host pinging with the same identifier gets another one")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    Gateway gw(hook);
    gw.from_lan(build(echo(kLanHost, 0x1234)));
    gw.from_wan(build(echo_reply(kWanAddr, 0x1234)));
    RunResult r2 = gw.from_lan(build(echo("10.0.0.6", 0x1234)));
    CHECK(fields(r2.out).icmp_id != 0x1234);
    CHECK(icmp_checksum_ok(r2.out));
    auto conns = gw.fx.conns();
    CHECK(conns.size() == 2);
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
