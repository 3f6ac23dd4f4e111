// The port mapping agreement (RFC 6886 section 3.9, RFC 6887): a LAN endpoint that
// xnat-portmapd mapped to wan:EXT sends from EXT, so that peers see one address for it. The
// datapath takes EXT from the reverse map (XNAT_MAP_MAPPED) only after checking the forward
// table in force; anything that does not hold up gets the usual port choice. And the control
// plane keeps the reverse map in step with the rules.
#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include <functional>
#include <optional>
#include <set>
#include <string>

#include "bpf_harness.h"
#include "core/stored_rule.h"
#include "expect.h"
#include "kernel/map_io.h"
#include "kernel/rule_store.h"
#include "scenario.h"
#include "table_case.h"
#include "xnat/abi.h"
#include "xnat/counters.h"
#include "xnat/maps.h"
#include "xnat/rules.h"

using namespace xnat;
using namespace xnat::test;

namespace {

// The LAN host's mapping: wan:31000 -> 10.0.0.5:20000. The port mapping range lies outside
// the masquerade range (the config refuses an overlap), so source NAT alone never picks 31000,
// and the internal port 20000 is one masquerade would keep.
constexpr uint16_t kExt = 31000, kInt = 20000;
constexpr uint16_t kMasqLo = 1024, kMasqHi = 29999;

PortForward mapped(const char *proto = "tcp", const char *from = "198.51.100.1:31000",
                   const char *to = "10.0.0.5:20000")
{
    PortForward f = fwd(proto, from, to);
    f.from_wan = true; // xnat-portmapd's forwards are wan:EXT, installed on the WAN's address
    f.mapped = true;
    return f;
}

std::vector<Masquerade> lan_masq(uint16_t lo = kMasqLo, uint16_t hi = kMasqHi)
{
    return {masq("10.0.0.0/24", kWanAddr, lo, hi)};
}

// Publishes the forwards and masquerade as xnat-load does, then writes the reverse map from
// `reverse_from` (the forwards themselves unless told): the map as the control plane would
// have left it for that rule set, which the stale cases make differ from the one in force.
void install(BpfFixture &fx, const std::vector<PortForward> &fwds, const std::vector<Masquerade> &masqs,
             const std::optional<std::vector<PortForward>> &reverse_from = std::nullopt)
{
    fx.install(fwds, masqs);
    Config c;
    c.port_forwards = reverse_from.value_or(fwds);
    auto r = write_mapped_ports(fx.maps(), rules_from_config(c));
    REQUIRE(r);
}

std::vector<std::pair<xnat_mapped_key, uint16_t>> reverse_entries(const BpfFixture &fx)
{
    auto entries = map_dump<xnat_mapped_key, uint16_t>(fx.maps().mapped, XNAT_STR(XNAT_MAP_MAPPED));
    REQUIRE(entries);
    return *entries;
}

uint16_t ext_port(const RunResult &r)
{
    return fields(r.out).sport;
}

std::optional<xnat_snat_mapping> mapping_at(const BpfFixture &fx, uint16_t port, uint8_t proto = kTcp)
{
    xnat_snat_key k{};
    k.addr = htonl(ip(kWanAddr));
    k.port = htons(port);
    k.proto = proto;
    auto m = map_lookup<xnat_snat_key, xnat_snat_mapping>(fx.maps().snat, k, "snat");
    REQUIRE(m);
    return *m;
}

std::optional<uint16_t> eim_hint(const BpfFixture &fx, const char *host, uint16_t port, uint8_t proto = kTcp)
{
    xnat_eim_key k{};
    k.int_addr = htonl(ip(host));
    k.ext_addr = htonl(ip(kWanAddr));
    k.int_port = htons(port);
    k.proto = proto;
    auto h = map_lookup<xnat_eim_key, uint16_t>(fx.maps().eim, k, "eim");
    REQUIRE(h);
    if (!*h)
        return std::nullopt;
    return ntohs(**h);
}

PacketSpec routed_to_wan(PacketSpec s)
{
    s.ttl = static_cast<uint8_t>(s.ttl - 1);
    s.eth_dst = kRouterMac;
    s.eth_src = mac_of("wan0");
    return s;
}

// The LAN host's packet as it leaves the WAN: from the WAN address and `port`.
PacketSpec leaving_from(PacketSpec s, uint16_t port)
{
    s.saddr = ip(kWanAddr);
    s.sport = port;
    return routed_to_wan(s);
}

PacketSpec routed_to_lan(PacketSpec s, const Mac &to)
{
    s.ttl = static_cast<uint8_t>(s.ttl - 1);
    s.eth_dst = to;
    s.eth_src = mac_of("lan0");
    return s;
}

// The outbound first packet of the mapped endpoint, as a table case: the frame that must leave
// (built by the oracle, checksums and all), one new flow, one new mapping.
TableCase first_packet(const char *description, uint8_t proto, uint16_t want_port,
                       std::function<void(Target &)> setup, std::function<void(Target &)> then = {})
{
    PacketSpec in = lan_host_to_remote(proto, kInt, proto == kTcp ? 80 : 3478);
    return {description, Side::lan, in, leaving_from(in, want_port), Verdict::redirect, XNAT_CNT_REDIRECTED,
            {XNAT_CNT_NEW_FLOW}, 2, 1, std::move(setup), std::move(then)};
}

std::vector<TableCase> cases()
{
    std::vector<TableCase> list;
    list.push_back(first_packet(
        "a SYN from a mapped endpoint leaves from its mapped port", kTcp, kExt,
        [](Target &t) { install(t.fx, {mapped()}, lan_masq()); },
        [](Target &t) {
            auto m = mapping_at(t.fx, kExt);
            REQUIRE(m);
            CHECK(m->int_addr == htonl(ip(kLanHost)));
            CHECK(m->int_port == htons(kInt));
            CHECK(m->refs == 1);
            CHECK(eim_hint(t.fx, kLanHost, kInt) == kExt);
        }));
    list.push_back(first_packet("a UDP datagram from a mapped endpoint leaves from its mapped port", kUdp, kExt,
                                [](Target &t) { install(t.fx, {mapped("udp")}, lan_masq()); }));
    list.push_back(first_packet("without a reverse entry, the flow keeps its own port as before", kTcp, kInt,
                                [](Target &t) {
                                    install(t.fx, {mapped()}, lan_masq(), std::vector<PortForward>{});
                                    REQUIRE(reverse_entries(t.fx).empty());
                                }));
    list.push_back(first_packet("a reverse entry whose forward is gone is ignored", kTcp, kInt, [](Target &t) {
        install(t.fx, {}, lan_masq(), std::vector<PortForward>{mapped()});
        REQUIRE(reverse_entries(t.fx).size() == 1);
    }));
    list.push_back(first_packet(
        "a reverse entry whose forward now targets another host is ignored", kTcp, kInt, [](Target &t) {
            install(t.fx, {mapped("tcp", "198.51.100.1:31000", "10.0.0.6:20000")}, lan_masq(),
                    std::vector<PortForward>{mapped()});
        }));
    list.push_back(first_packet(
        "a reverse entry whose forward now targets another port of the host is ignored", kTcp, kInt,
        [](Target &t) {
            install(t.fx, {mapped("tcp", "198.51.100.1:31000", "10.0.0.5:20001")}, lan_masq(),
                    std::vector<PortForward>{mapped()});
        }));
    list.push_back(first_packet(
        "a reverse entry whose forward moved to another address than masquerade's is ignored", kTcp, kInt,
        [](Target &t) {
            install(t.fx, {mapped("tcp", "203.0.113.1:31000", "10.0.0.5:20000")}, lan_masq(),
                    std::vector<PortForward>{mapped()});
        }));
    list.push_back(first_packet("a reverse entry of another protocol is not this flow's", kUdp, kInt,
                                [](Target &t) { install(t.fx, {mapped("tcp")}, lan_masq()); }));
    list.push_back(first_packet(
        "a mapping at the mapped port that belongs to another endpoint is not shared", kTcp, kInt,
        [](Target &t) {
            install(t.fx, {mapped()}, lan_masq());
            xnat_snat_key k{};
            k.addr = htonl(ip(kWanAddr));
            k.port = htons(kExt);
            k.proto = kTcp;
            xnat_snat_mapping other{};
            other.int_addr = htonl(ip("10.0.0.9"));
            other.int_port = htons(kInt);
            other.refs = 1;
            REQUIRE(map_update(t.fx.maps().snat, k, other, "snat", BPF_NOEXIST));
        },
        [](Target &t) {
            auto m = mapping_at(t.fx, kExt);
            REQUIRE(m);
            CHECK(m->int_addr == htonl(ip("10.0.0.9"))); // untouched
            CHECK(m->refs == 1);
        }));
    return list;
}

} // namespace

TEST_CASE("port mapping agreement: packet in, frame out, counter, connections and mappings, per case")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    TestNet::get(); // the expected frames carry the test network's MACs
    for (const TableCase &c : cases()) {
        NetGateway gw(hook, {}, {});
        Target t{gw.fx, hook, gw.net.wan0, gw.net.lan0};
        run_case(c, t);
    }
}

TEST_CASE("port mapping agreement: the mapped endpoint keeps its port across destinations (EIM)")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    NetGateway gw(hook, {}, {});
    install(gw.fx, {mapped()}, lan_masq());
    uint16_t a = ext_port(gw.from_lan(build(lan_to(kLanHost, kInt, "203.0.113.50", 80))));
    uint16_t b = ext_port(gw.from_lan(build(lan_to(kLanHost, kInt, "203.0.113.51", 443))));
    CHECK(a == kExt);
    CHECK(b == kExt);
    CHECK(gw.fx.snat_mappings() == 1);
    auto m = mapping_at(gw.fx, kExt);
    REQUIRE(m);
    CHECK(m->refs == 2);
    CHECK(gw.fx.conns().size() == 2);
    // The second peer's reply comes back to the endpoint through that mapping.
    PacketSpec reply = lan_to("203.0.113.51", 443, kWanAddr, kExt);
    reply.tcp_flags = kSyn | kAck;
    RunResult r = gw.from_wan(build(reply));
    CHECK(r.verdict == redirect_verdict(hook));
    PacketSpec want = reply;
    want.daddr = ip(kLanHost);
    want.dport = kInt;
    check_frame(r.out, build(routed_to_lan(want, kLanHostMac)));
}

TEST_CASE("port mapping agreement: an endpoint mapped while it had a port moves its new flows to the mapped one")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    NetGateway gw(hook, {}, {});
    install(gw.fx, {}, lan_masq());
    CHECK(ext_port(gw.from_lan(build(lan_to(kLanHost, kInt, "203.0.113.50", 80)))) == kInt);
    install(gw.fx, {mapped()}, lan_masq());
    CHECK(ext_port(gw.from_lan(build(lan_to(kLanHost, kInt, "203.0.113.51", 80)))) == kExt);
    CHECK(eim_hint(gw.fx, kLanHost, kInt) == kExt);
    // The older flow keeps its own mapping until it ends.
    CHECK(gw.fx.snat_mappings() == 2);
    CHECK(ext_port(gw.from_lan(build(lan_to(kLanHost, kInt, "203.0.113.50", 80)))) == kInt);
}

TEST_CASE("port mapping agreement: no other endpoint is ever given the mapped port")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    NetGateway gw(hook, {}, {});
    // A masquerade range of four ports around the mapped one, so that source NAT would pick it
    // if anything let it: three other flows take the other three, the fourth finds none.
    install(gw.fx, {mapped()}, lan_masq(kExt - 2, kExt + 1));
    std::set<uint16_t> used;
    const char *others[][2] = {{"10.0.0.6", "31000"}, {"10.0.0.5", "31000"}, {"10.0.0.6", "20000"}};
    for (const auto &o : others) {
        RunResult r = gw.from_lan(build(lan_to(o[0], static_cast<uint16_t>(std::stoi(o[1])), kRemote, 80)));
        REQUIRE(r.verdict == redirect_verdict(hook));
        used.insert(ext_port(r));
    }
    CHECK(used == std::set<uint16_t>{kExt - 2, kExt - 1, kExt + 1});
    RunResult refused = gw.from_lan(build(lan_to("10.0.0.7", kInt, kRemote, 80)));
    CHECK(refused.verdict == drop_verdict(hook));
    CHECK(gw.fx.counter(XNAT_CNT_DROP_PORTS_EXHAUSTED) == 1);
    // The mapped endpoint still gets its port.
    CHECK(ext_port(gw.from_lan(build(lan_to(kLanHost, kInt, kRemote, 80)))) == kExt);
}

TEST_CASE("port mapping agreement: add_rule and delete_rule keep the reverse map in step")
{
    BpfFixture fx;
    REQUIRE(reverse_entries(fx).empty());
    auto added = add_rule(fx.maps(), mapped());
    REQUIRE(added);
    auto entries = reverse_entries(fx);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].first.int_addr == htonl(ip(kLanHost)));
    CHECK(entries[0].first.int_port == htons(kInt));
    CHECK(entries[0].first.proto == kTcp);
    CHECK(entries[0].first.pad == 0);
    CHECK(entries[0].second == htons(kExt));

    // Nothing else gets an entry: an operator's forward, a mapped LAN-side one, a port range.
    REQUIRE(add_rule(fx.maps(), fwd("tcp", "198.51.100.1:31001", "10.0.0.6:22")));
    PortForward lan_side = fwd("udp", "10.0.0.1:5000", "10.0.0.7:5000", "lan");
    lan_side.mapped = true;
    REQUIRE(add_rule(fx.maps(), lan_side));
    PortForward range = mapped("udp", "198.51.100.1:31010-31011", "10.0.0.8:20000-20001");
    REQUIRE(add_rule(fx.maps(), range));
    CHECK(reverse_entries(fx).size() == 1);
    // A second mapped forward, UDP this time, adds its own.
    REQUIRE(add_rule(fx.maps(), mapped("udp", "198.51.100.1:31002", "10.0.0.5:20000")));
    CHECK(reverse_entries(fx).size() == 2);

    ForwardFrom from;
    from.wan = true;
    from.ep.port_lo = from.ep.port_hi = kExt;
    auto removed = delete_rule(fx.maps(), Proto::tcp, Side::wan, from);
    REQUIRE(removed);
    CHECK(removed->fwd.mapped);
    entries = reverse_entries(fx);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].first.proto == kUdp);
    from.ep.port_lo = from.ep.port_hi = 31002;
    REQUIRE(delete_rule(fx.maps(), Proto::udp, Side::wan, from));
    CHECK(reverse_entries(fx).empty());
}

TEST_CASE("port mapping agreement: a rule set written whole leaves exactly its entries")
{
    BpfFixture fx;
    std::vector<StoredRule> rules = {{0, mapped()}, {1, mapped("udp", "198.51.100.1:31002", "10.0.0.6:4000")}};
    REQUIRE(write_rule_records(fx.maps(), rules));
    CHECK(reverse_entries(fx).size() == 2);
    // Two mapped forwards to one endpoint: the lower id keeps the key.
    rules = {{3, mapped("tcp", "198.51.100.1:31005", "10.0.0.5:20000")}, {2, mapped()}};
    REQUIRE(write_rule_records(fx.maps(), rules));
    auto entries = reverse_entries(fx);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].second == htons(kExt));
    REQUIRE(write_rule_records(fx.maps(), {}));
    CHECK(reverse_entries(fx).empty());
}

TEST_CASE("port mapping agreement: a flow after add_rule of a mapped forward leaves from its port")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    NetGateway gw(hook, {}, lan_masq());
    REQUIRE(add_rule(gw.fx.maps(), mapped()));
    CHECK(ext_port(gw.from_lan(build(lan_to(kLanHost, kInt, kRemote, 80)))) == kExt);
    ForwardFrom from;
    from.wan = true;
    from.ep.port_lo = from.ep.port_hi = kExt;
    REQUIRE(delete_rule(gw.fx.maps(), Proto::tcp, Side::wan, from));
    // Another endpoint of the host, after the mapping is gone: the usual choice.
    CHECK(ext_port(gw.from_lan(build(lan_to(kLanHost, 20001, kRemote, 80)))) == 20001);
}
