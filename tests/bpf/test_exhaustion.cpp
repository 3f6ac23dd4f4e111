// State exhaustion: a full table evicts unassured flows (never assured ones, both halves at once,
// their mappings and host charges given back), per-host quotas, and the ICMP refusals that can
// answer a flow refused for lack of room (RFC 5508 REQ-8), checked with the independent checksum
// oracle of packet.h.
#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <set>
#include <thread>

#include "bpf_harness.h"
#include "kernel/map_io.h"
#include "scenario.h"
#include "xnat/counters.h"
#include "xnat/hosts.h"

using namespace xnat;
using namespace xnat::test;

namespace {

void handshake(BpfFixture &fx, Hook hook, uint16_t sport)
{
    fx.run(hook, Side::wan, build(client_tcp(kSyn, sport)));
    fx.run(hook, Side::lan, build(server_tcp(kSyn | kAck, sport)));
    fx.run(hook, Side::wan, build(client_tcp(kAck, sport)));
}

std::set<uint16_t> client_ports(const BpfFixture &fx)
{
    std::set<uint16_t> ports;
    for (const Connection &c : fx.conns()) {
        CHECK_FALSE(c.reply_missing);
        ports.insert(ntohs(c.original_key.sport));
    }
    return ports;
}

struct Held {
    uint32_t flows = 0, ports = 0;
    bool present = false;
};

Held host_use(const BpfFixture &fx, const char *addr)
{
    auto v = map_lookup<uint32_t, xnat_host>(fx.maps().hosts, htonl(ip(addr)), "hosts");
    REQUIRE(v);
    if (!*v)
        return {};
    return {xnat_host_flows((*v)->use), xnat_host_ports((*v)->use), true};
}

bool mapping_exists(const BpfFixture &fx, uint16_t port, uint8_t proto)
{
    xnat_snat_key k{};
    k.addr = htonl(ip(kWanAddr));
    k.port = htons(port);
    k.proto = proto;
    auto m = map_lookup<xnat_snat_key, xnat_snat_mapping>(fx.maps().snat, k, "snat");
    REQUIRE(m);
    return m->has_value();
}

} // namespace

TEST_CASE("early drop: a full table evicts the oldest unassured flow, never an assured one")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    BpfFixture fx(16);
    fx.install({fwd("tcp", "203.0.113.1:22012", "10.0.0.12:22")});
    for (uint16_t port = 1000; port < 1004; ++port)
        handshake(fx, hook, port); // assured
    for (uint16_t port = 1004; port < 1016; ++port)
        fx.run(hook, Side::wan, build(client_tcp(kSyn, port))); // half-open
    REQUIRE(fx.ct_entries() == 32);

    // The next SYN takes the place of the oldest half-open flow, both of its halves.
    RunResult r = fx.run(hook, Side::wan, build(client_tcp(kSyn, 2000)));
    CHECK(r.verdict == pass_verdict(hook)); // translated; the test network has no route
    CHECK(fx.counter(XNAT_CNT_CT_EARLY_DROP) == 1);
    CHECK(fx.counter(XNAT_CNT_DROP_CT_FULL) == 0);
    CHECK(fx.counter(XNAT_CNT_FLOW_ENDED) == 1);
    CHECK(fx.ct_entries() == 32);
    std::set<uint16_t> ports = client_ports(fx);
    CHECK_FALSE(ports.count(1004));
    CHECK(ports.count(2000));
    CHECK(ports.count(1005));

    // Twelve more: the eleven older half-open flows go first, then 2000; the four assured stay.
    for (uint16_t port = 3000; port < 3012; ++port)
        fx.run(hook, Side::wan, build(client_tcp(kSyn, port)));
    CHECK(fx.counter(XNAT_CNT_CT_EARLY_DROP) == 13);
    CHECK(fx.counter(XNAT_CNT_DROP_CT_FULL) == 0);
    ports = client_ports(fx);
    std::set<uint16_t> want = {1000, 1001, 1002, 1003};
    for (uint16_t port = 3000; port < 3012; ++port)
        want.insert(port);
    CHECK(ports == want);
    CHECK(fx.ct_entries() == 32);
    // An assured flow still translates.
    RunResult ack = fx.run(hook, Side::wan, build(client_tcp(kAck, 1002)));
    CHECK(fields(ack.out).daddr == ip("10.0.0.12"));

    // With every flow assured there is nothing left to evict: the table refuses.
    for (uint16_t port = 3000; port < 3012; ++port) {
        fx.run(hook, Side::lan, build(server_tcp(kSyn | kAck, port)));
        fx.run(hook, Side::wan, build(client_tcp(kAck, port)));
    }
    RunResult refused = fx.run(hook, Side::wan, build(client_tcp(kSyn, 4000)));
    CHECK(refused.verdict == drop_verdict(hook));
    CHECK(fx.counter(XNAT_CNT_DROP_CT_FULL) == 1);
    CHECK(fx.counter(XNAT_CNT_CT_EARLY_DROP) == 13);
    CHECK(client_ports(fx) == want);
}

TEST_CASE("early drop: an evicted masquerade flow gives back its mapping and its host's charge")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    NetGateway gw(hook, {}, {masq("10.0.0.0/24", kWanAddr)}, 8);
    for (uint16_t port = 5000; port < 5008; ++port)
        REQUIRE(gw.from_lan(build(lan_to("10.0.0.5", port, "203.0.113.50", 53, kUdp))).verdict == redirect_verdict(hook));
    // A reply assures 5000's flow (the oldest); 5001 becomes the oldest unassured.
    gw.from_wan(build(lan_to("203.0.113.50", 53, kWanAddr, 5000, kUdp)));
    REQUIRE(gw.fx.snat_mappings() == 8);
    Held before = host_use(gw.fx, "10.0.0.5");
    CHECK(before.flows == 8);
    CHECK(before.ports == 8);

    RunResult r = gw.from_lan(build(lan_to("10.0.0.6", 6000, "203.0.113.50", 53, kUdp)));
    CHECK(r.verdict == redirect_verdict(hook));
    CHECK(gw.fx.counter(XNAT_CNT_CT_EARLY_DROP) == 1);
    CHECK_FALSE(mapping_exists(gw.fx, 5001, kUdp));
    CHECK(mapping_exists(gw.fx, 5000, kUdp));
    CHECK(mapping_exists(gw.fx, 6000, kUdp));
    CHECK(gw.fx.snat_mappings() == 8);
    Held a = host_use(gw.fx, "10.0.0.5"), b = host_use(gw.fx, "10.0.0.6");
    CHECK(a.flows == 7);
    CHECK(a.ports == 7);
    CHECK(b.flows == 1);
    CHECK(b.ports == 1);
}

TEST_CASE("host quota: connections beyond a host's quota are refused, other hosts go on")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    NetGateway gw(hook, {}, {masq("10.0.0.0/24", kWanAddr)});
    gw.fx.configure([](xnat_config &c) {
        c.host_max_flows = 3;
        c.refusal_icmp = 0;
    });
    // One internal endpoint, three destinations: one mapping (EIM), three flows.
    for (const char *dst : {"203.0.113.50", "203.0.113.51", "203.0.113.52"})
        REQUIRE(gw.from_lan(build(lan_to("10.0.0.5", 5000, dst, 53, kUdp))).verdict == redirect_verdict(hook));
    RunResult r = gw.from_lan(build(lan_to("10.0.0.5", 5000, "203.0.113.53", 53, kUdp)));
    CHECK(r.verdict == drop_verdict(hook));
    CHECK(gw.fx.counter(XNAT_CNT_DROP_HOST_FLOWS) == 1);
    // A new port is refused too: the connection quota is checked first.
    CHECK(gw.from_lan(build(lan_to("10.0.0.5", 5001, "203.0.113.50", 53, kUdp))).verdict == drop_verdict(hook));
    CHECK(gw.fx.counter(XNAT_CNT_DROP_HOST_FLOWS) == 2);
    CHECK(gw.fx.counter(XNAT_CNT_DROP_HOST_PORTS) == 0);
    CHECK(gw.fx.counter(XNAT_CNT_NEW_FLOW) == 3);
    Held a = host_use(gw.fx, "10.0.0.5");
    CHECK(a.flows == 3);
    CHECK(a.ports == 1);
    // Nothing was left behind by the refusals.
    CHECK(gw.fx.snat_mappings() == 1);
    CHECK(gw.fx.ct_entries() == 6);

    CHECK(gw.from_lan(build(lan_to("10.0.0.6", 5000, "203.0.113.50", 53, kUdp))).verdict == redirect_verdict(hook));
    CHECK(host_use(gw.fx, "10.0.0.6").flows == 1);

    // Ended flows give their share back.
    gw.fx.flush();
    a = host_use(gw.fx, "10.0.0.5");
    CHECK(a.present);
    CHECK(a.flows == 0);
    CHECK(a.ports == 0);
    CHECK(gw.from_lan(build(lan_to("10.0.0.5", 5000, "203.0.113.53", 53, kUdp))).verdict == redirect_verdict(hook));
}

TEST_CASE("host quota: external ports beyond a host's quota are refused; reusing a mapping is free")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    NetGateway gw(hook, {}, {masq("10.0.0.0/24", kWanAddr)});
    gw.fx.configure([](xnat_config &c) {
        c.host_max_ports = 2;
        c.refusal_icmp = 0;
    });
    for (uint16_t port : {uint16_t{5000}, uint16_t{5001}})
        REQUIRE(gw.from_lan(build(lan_to("10.0.0.5", port, "203.0.113.50", 53, kUdp))).verdict == redirect_verdict(hook));
    CHECK(gw.from_lan(build(lan_to("10.0.0.5", 5002, "203.0.113.50", 53, kUdp))).verdict == drop_verdict(hook));
    // ICMP identifiers and TCP ports count the same.
    CHECK(gw.from_lan(build(lan_to("10.0.0.5", 5003, "203.0.113.50", 80))).verdict == drop_verdict(hook));
    CHECK(gw.fx.counter(XNAT_CNT_DROP_HOST_PORTS) == 2);
    CHECK(gw.fx.counter(XNAT_CNT_DROP_PORTS_EXHAUSTED) == 0);
    // The same internal endpoint to another destination keeps its mapping: no new port.
    CHECK(gw.from_lan(build(lan_to("10.0.0.5", 5001, "203.0.113.60", 53, kUdp))).verdict == redirect_verdict(hook));
    CHECK(gw.fx.counter(XNAT_CNT_DROP_HOST_PORTS) == 2);
    Held a = host_use(gw.fx, "10.0.0.5");
    CHECK(a.flows == 3);
    CHECK(a.ports == 2);
    CHECK(gw.fx.snat_mappings() == 2);
    // Another host is not held back by the first one's quota.
    for (uint16_t port : {uint16_t{5000}, uint16_t{5001}})
        CHECK(gw.from_lan(build(lan_to("10.0.0.6", port, "203.0.113.50", 53, kUdp))).verdict == redirect_verdict(hook));
    CHECK(host_use(gw.fx, "10.0.0.6").ports == 2);
    CHECK(gw.fx.snat_mappings() == 4);
}

TEST_CASE("host quota: the sweeper reclaims host entries that hold nothing")
{
    NetGateway gw(Hook::tc, {}, {masq("10.0.0.0/24", kWanAddr)});
    gw.fx.set_sweep_interval_ms(100);
    gw.from_lan(build(lan_to("10.0.0.5", 5000, "203.0.113.50", 53, kUdp)));
    REQUIRE(host_use(gw.fx, "10.0.0.5").flows == 1);
    gw.fx.advance_clock_s(10);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    CHECK(host_use(gw.fx, "10.0.0.5").present); // it holds a flow
    gw.fx.flush();
    gw.fx.advance_clock_s(3); // two idle ticks
    bool gone = false;
    for (int i = 0; i < 50 && !gone; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        gone = !host_use(gw.fx, "10.0.0.5").present;
    }
    CHECK(gone);
    // And a new flow makes it anew.
    CHECK(gw.from_lan(build(lan_to("10.0.0.5", 5000, "203.0.113.50", 53, kUdp))).verdict == redirect_verdict(Hook::tc));
    CHECK(host_use(gw.fx, "10.0.0.5").flows == 1);
}

namespace {

// What a transmitter does to a CHECKSUM_PARTIAL skb: sum from the L4 header to the end, write
// the folded complement into the field. Applied to the quote, the L4 header in the error.
void finish_partial(Bytes &icmp_frame, size_t quoted_l4, size_t field)
{
    uint16_t c = internet_checksum(&icmp_frame[quoted_l4], icmp_frame.size() - quoted_l4);
    icmp_frame[field] = static_cast<uint8_t>(c >> 8);
    icmp_frame[field + 1] = static_cast<uint8_t>(c);
}

// The pseudo-header sum a local socket leaves in a CHECKSUM_PARTIAL TCP segment.
void make_partial(Bytes &frame)
{
    size_t l4 = 14 + 20;
    uint8_t pseudo[12];
    std::copy(frame.begin() + 26, frame.begin() + 34, pseudo);
    pseudo[8] = 0;
    pseudo[9] = frame[23];
    uint16_t len = static_cast<uint16_t>(((frame[16] << 8) | frame[17]) - 20);
    pseudo[10] = static_cast<uint8_t>(len >> 8);
    pseudo[11] = static_cast<uint8_t>(len);
    uint16_t folded = static_cast<uint16_t>(~internet_checksum(pseudo, sizeof(pseudo)));
    frame[l4 + 16] = static_cast<uint8_t>(folded >> 8);
    frame[l4 + 17] = static_cast<uint8_t>(folded);
}

} // namespace

TEST_CASE("refusal: a flow refused for lack of room is answered with ICMP admin-prohibited, rate-limited")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    NetGateway gw(hook, {}, {masq("10.0.0.0/24", kWanAddr)});
    gw.fx.configure([](xnat_config &c) {
        c.host_max_ports = 1;
        c.refusal_icmp = XNAT_REFUSAL_ICMP_SIDE(XNAT_SIDE_LAN);
        c.refusal_icmp_rate = 2;
        c.lan_addr = htonl(ip("10.0.0.1"));
    });
    REQUIRE(gw.from_lan(build(lan_to("10.0.0.5", 40000, "203.0.113.50", 80))).verdict == redirect_verdict(hook));

    PacketSpec spec = lan_to("10.0.0.5", 40001, "203.0.113.50", 80);
    spec.ip_options = {0x01, 0x01, 0x01, 0x00}; // NOPs and an end: the quote takes them too
    Bytes syn = build(spec);
    RunResult r = gw.from_lan(syn);
    CHECK(r.verdict == reflect_verdict(hook));
    CHECK(gw.fx.counter(XNAT_CNT_DROP_HOST_PORTS) == 1);
    CHECK(gw.fx.counter(XNAT_CNT_REFUSAL_ICMP_SENT) == 1);
    const size_t quote = 24 + 20; // the IP header with options, and the TCP header
    REQUIRE(r.out.size() == 14 + 28 + quote);
    Fields f = fields(r.out);
    CHECK(f.eth_dst == spec.eth_src);
    CHECK(f.eth_src == spec.eth_dst);
    CHECK(f.saddr == ip("10.0.0.1"));
    CHECK(f.daddr == ip("10.0.0.5"));
    CHECK(f.proto == kIcmp);
    CHECK(f.ttl == 64);
    CHECK(r.out[15] == 0xc0);
    CHECK(r.out[34] == 3);  // destination unreachable
    CHECK(r.out[35] == 13); // communication administratively prohibited
    CHECK(ipv4_checksum_ok(r.out));
    CHECK(icmp_checksum_ok(r.out));
    CHECK(Bytes(r.out.begin() + 42, r.out.end()) == Bytes(syn.begin() + 14, syn.begin() + 14 + quote));
    CHECK(gw.fx.ct_entries() == 2); // the refused flow left nothing

    // UDP quotes 8 bytes of its header; the second answer of the tick is the last.
    RunResult u = gw.from_lan(build(lan_to("10.0.0.5", 5000, "203.0.113.50", 53, kUdp)));
    CHECK(u.verdict == reflect_verdict(hook));
    CHECK(u.out.size() == 14 + 28 + 20 + 8);
    CHECK(icmp_checksum_ok(u.out));
    RunResult limited = gw.from_lan(build(lan_to("10.0.0.5", 5001, "203.0.113.50", 53, kUdp)));
    CHECK(limited.verdict == drop_verdict(hook));
    CHECK(gw.fx.counter(XNAT_CNT_REFUSAL_ICMP_LIMITED) == 1);
    CHECK(gw.fx.counter(XNAT_CNT_REFUSAL_ICMP_SENT) == 2);
    CHECK(gw.fx.counter(XNAT_CNT_DROP_HOST_PORTS) == 3);
    gw.fx.advance_clock_s(2);
    CHECK(gw.from_lan(build(lan_to("10.0.0.5", 5001, "203.0.113.50", 53, kUdp))).verdict == reflect_verdict(hook));

    // Without a LAN address the error comes from where the packet was going.
    gw.fx.configure([](xnat_config &c) { c.lan_addr = 0; });
    CHECK(fields(gw.from_lan(build(lan_to("10.0.0.5", 40002, "203.0.113.50", 80))).out).saddr == ip("203.0.113.50"));
}

TEST_CASE("refusal: a checksum-partial segment's error checks out once the transmitter finishes it")
{
    NetGateway gw(Hook::tc, {}, {masq("10.0.0.0/24", kWanAddr)});
    gw.fx.configure([](xnat_config &c) {
        c.host_max_ports = 1;
        c.refusal_icmp = XNAT_REFUSAL_ICMP_SIDE(XNAT_SIDE_LAN);
        c.refusal_icmp_rate = 10;
    });
    gw.from_lan(build(lan_to("10.0.0.5", 40000, "203.0.113.50", 80)));
    Bytes syn = build(lan_to("10.0.0.5", 40001, "203.0.113.50", 80));
    make_partial(syn);
    RunResult r = gw.from_lan(syn);
    REQUIRE(r.verdict == kTcRedirect);
    REQUIRE(r.out.size() == 14 + 28 + 40);
    // As sent, the quoted checksum is unfinished; the transmitter finishes it, and then the
    // ICMP checksum must hold.
    finish_partial(r.out, 42 + 20, 42 + 20 + 16);
    CHECK(icmp_checksum_ok(r.out));
    CHECK(ipv4_checksum_ok(r.out));
}

TEST_CASE("refusal: off on the WAN side unless asked; then a full table answers from the forward's address")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    // Wired to the test network: the answer is redirected to the interface it came in on.
    NetGateway gw(hook, {fwd("tcp", "203.0.113.1:22012", "10.0.0.12:22")}, {}, 4);
    BpfFixture &fx = gw.fx;
    fx.configure([](xnat_config &c) {
        c.refusal_icmp = XNAT_REFUSAL_ICMP_SIDE(XNAT_SIDE_LAN); // the default
        c.refusal_icmp_rate = 100;
    });
    for (uint16_t port = 1000; port < 1004; ++port) {
        gw.from_wan(build(client_tcp(kSyn, port)));
        gw.from_lan(build(server_tcp(kSyn | kAck, port)));
        gw.from_wan(build(client_tcp(kAck, port)));
    }
    CHECK(gw.from_wan(build(client_tcp(kSyn, 2000))).verdict == drop_verdict(hook));
    CHECK(fx.counter(XNAT_CNT_DROP_CT_FULL) == 1);
    CHECK(fx.counter(XNAT_CNT_REFUSAL_ICMP_SENT) == 0);

    fx.configure([](xnat_config &c) { c.refusal_icmp |= XNAT_REFUSAL_ICMP_SIDE(XNAT_SIDE_WAN); });
    RunResult r = gw.from_wan(build(client_tcp(kSyn, 2001)));
    CHECK(r.verdict == reflect_verdict(hook));
    CHECK(fields(r.out).saddr == ip("203.0.113.1"));
    CHECK(fields(r.out).daddr == ip("198.51.100.2"));
    CHECK(icmp_checksum_ok(r.out));
    CHECK(fx.counter(XNAT_CNT_DROP_CT_FULL) == 2);
    CHECK(fx.counter(XNAT_CNT_REFUSAL_ICMP_SENT) == 1);
}

namespace {

// The table's flows as the counters account for them: each flow is counted once when made
// (new_flow) and once when ended (flow_ended), whichever path ends it.
void check_counted_flows(const BpfFixture &fx, const char *stage)
{
    INFO(stage);
    size_t flows = fx.conns().size();
    CHECK(fx.ct_entries() == 2 * flows);
    CHECK(fx.counter(XNAT_CNT_NEW_FLOW) - fx.counter(XNAT_CNT_FLOW_ENDED) == flows);
}

} // namespace

TEST_CASE("counters: new_flow - flow_ended is the flows in the table, through early drop, refusal, expiry and flush")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    BpfFixture fx(16);
    fx.install({fwd("tcp", "203.0.113.1:22012", "10.0.0.12:22")});
    for (uint16_t port = 1000; port < 1004; ++port)
        handshake(fx, hook, port);
    for (uint16_t port = 1004; port < 1010; ++port)
        fx.run(hook, Side::wan, build(client_tcp(kSyn, port)));
    check_counted_flows(fx, "10 flows made");
    REQUIRE(fx.conns().size() == 10);

    for (uint16_t port = 2000; port < 2012; ++port) // 6 fill the table, 6 evict
        fx.run(hook, Side::wan, build(client_tcp(kSyn, port)));
    REQUIRE(fx.counter(XNAT_CNT_CT_EARLY_DROP) == 6);
    check_counted_flows(fx, "early drops");

    for (uint16_t port = 2000; port < 2012; ++port) {
        fx.run(hook, Side::lan, build(server_tcp(kSyn | kAck, port)));
        fx.run(hook, Side::wan, build(client_tcp(kAck, port)));
    }
    REQUIRE(fx.run(hook, Side::wan, build(client_tcp(kSyn, 4000))).verdict == drop_verdict(hook));
    check_counted_flows(fx, "a refusal");

    // Past every timeout, a packet of a dead flow ends it on lookup and makes a new one.
    fx.advance_clock_s(8000);
    fx.run(hook, Side::wan, build(client_tcp(kSyn, 1000)));
    REQUIRE(fx.counter(XNAT_CNT_CT_EXPIRED) == 1);
    check_counted_flows(fx, "expiry on lookup");

    CHECK(fx.flush(ip("10.0.0.12")) == 16);
    check_counted_flows(fx, "flush");
    CHECK(fx.conns().empty());
}
