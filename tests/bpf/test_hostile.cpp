// Hostile packets: what an attacker or a broken host can send at the gateway. Each case checks
// the verdict, the bytes (untouched, or translated with every checksum verified by the
// independent oracle), the counter that names the outcome, and the connection table. The
// policy table is in docs/METRICS.md ("Hostile and malformed packets"); test_malformed.cpp covers
// the plain header-parsing refusals.
#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include <functional>

#include "bpf_harness.h"
#include "expect.h"
#include "scenario.h"
#include "xnat/counters.h"

using namespace xnat;
using namespace xnat::test;

namespace {

constexpr size_t kL3 = 14;

// Rewrites the IPv4 header checksum after a test has changed a header byte on purpose, so the
// packet is refused for the change and not for a bad checksum.
void fix_ip_check(Bytes &f)
{
    size_t ihl = static_cast<size_t>(f[kL3] & 0x0f) * 4;
    set16(f, kL3 + 10, 0);
    set16(f, kL3 + 10, internet_checksum(&f[kL3], ihl));
}

PacketSpec wan_udp(uint16_t dport = kUdpForwardPort)
{
    return client_udp(dport, {9, 8, 7, 6, 5, 4, 3, 2});
}

// An ICMP error from `from` to `to` quoting the IP packet of `quoted` (cut to quote_len).
PacketSpec icmp_error(const char *from, const char *to, const Bytes &quoted_frame_, size_t quote_len = 0)
{
    PacketSpec e;
    e.proto = kIcmp;
    e.saddr = ip(from);
    e.daddr = ip(to);
    e.icmp_type = kUnreach;
    e.icmp_code = 3;
    e.icmp_id = 0;
    e.icmp_seq = 0;
    e.payload = ip_packet(quoted_frame_, quote_len);
    return e;
}

// What a LAN packet looks like after masquerade and the fast path: the WAN address as source,
// TTL one less, MACs of the WAN hop.
PacketSpec masqueraded(PacketSpec s)
{
    s.saddr = ip(kWanAddr);
    s.ttl = static_cast<uint8_t>(s.ttl - 1);
    s.eth_dst = kRouterMac;
    s.eth_src = mac_of("wan0");
    return s;
}

std::vector<PortForward> forwards()
{
    return {fwd("tcp", "203.0.113.1:22012", "10.0.0.12:22"),
            fwd("udp", "203.0.113.1:6000-6009", "10.0.0.20:6000"),
            fwd("udp", "203.0.113.1:7000", "10.0.0.12:7000")};
}

struct FlagCase {
    const char *name;
    uint8_t flags;
};

// TCP flag combinations no legitimate opener sends. Only a bare SYN (with ECE/CWR/PSH/URG
// at most) may open a flow.
const FlagCase kIllegalOpeners[] = {
    {"SYN+FIN", kSyn | kFin},
    {"SYN+RST", kSyn | kRst},
    {"SYN+RST+ACK", kSyn | kRst | kAck},
    {"no flags (null scan)", 0},
    {"FIN alone (FIN scan)", kFin},
    {"Xmas (FIN+PSH+URG)", kFin | kPsh | 0x20},
    {"every flag", 0xff},
};

} // namespace

TEST_CASE("hostile: illegal TCP flag combinations open no flow, on either side")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    for (const FlagCase &c : kIllegalOpeners) {
        INFO(hook_name(hook) << ": " << c.name);
        NetGateway gw(hook, forwards(), {masq("10.0.0.0/24", kWanAddr)});

        // At a forwarded port from the WAN.
        Bytes in = build(client_tcp(c.flags));
        check_untouched(gw.from_wan(in), in, hook);
        // Out through masquerade from the LAN: no mapping may be taken either.
        PacketSpec out_spec = lan_host_to_remote(kTcp, 20000, 443);
        out_spec.tcp_flags = c.flags;
        Bytes out = build(out_spec);
        check_untouched(gw.from_lan(out), out, hook);

        CHECK(gw.fx.counter(XNAT_CNT_PASS_TCP_NOT_SYN) == 2);
        CHECK(gw.fx.counter(XNAT_CNT_NEW_FLOW) == 0);
        CHECK(gw.fx.ct_entries() == 0);
        CHECK(gw.fx.snat_mappings() == 0);
    }
}

TEST_CASE("hostile: a port scan of the public address passes untouched and leaves no state")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    NetGateway gw(hook, forwards(), {masq("10.0.0.0/24", kWanAddr)});
    uint64_t scanned = 0;
    for (uint32_t port = 1; port <= 65535; port += 97) {
        if (port == 22012 || port == 7000 || (port >= 6000 && port <= 6009))
            continue;
        PacketSpec s = client_tcp(kSyn, kClientPort, static_cast<uint16_t>(port));
        s.sport = static_cast<uint16_t>(50000 + (port & 0xff));
        Bytes in = build(s);
        RunResult r = gw.from_wan(in);
        REQUIRE(r.verdict == pass_verdict(hook));
        REQUIRE(hex(r.out) == hex(in));
        // The same scan over UDP.
        PacketSpec u = wan_udp(static_cast<uint16_t>(port));
        Bytes uin = build(u);
        REQUIRE(hex(gw.from_wan(uin).out) == hex(uin));
        scanned += 2;
    }
    CHECK(gw.fx.counter(XNAT_CNT_PASS_NO_MATCH) == scanned);
    CHECK(gw.fx.counter(XNAT_CNT_NEW_FLOW) == 0);
    CHECK(gw.fx.ct_entries() == 0);
    CHECK(gw.fx.snat_mappings() == 0);
}

TEST_CASE("hostile: later fragments whose first was never seen are not tied to a tracked flow")
{
    // Only a first fragment's translation makes later fragments translatable (test_fragments.cpp);
    // these, for the gateway's own address, go up to its stack untouched.
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    BpfFixture fx;
    fx.install(forwards());
    // The flow exists: a whole datagram opened it.
    fx.run(hook, Side::wan, build(wan_udp()));
    REQUIRE(fx.ct_entries() == 2);
    uint64_t packets_before = fx.conns().at(0).original.packets;

    struct Frag {
        const char *name;
        uint16_t frag;
    } frags[] = {
        {"last fragment first (out of order)", 370},
        {"middle fragment", 0x2000 | 185},
        {"a fragment of a datagram never seen", 0x2000 | 1},
    };
    uint64_t n = 0;
    for (const Frag &f : frags) {
        INFO(hook_name(hook) << ": " << f.name);
        PacketSpec s = wan_udp();
        s.frag = f.frag;
        Bytes in = build(s);
        check_untouched(fx.run(hook, Side::wan, in), in, hook);
        CHECK(fx.counter(XNAT_CNT_PASS_FRAGMENT) == ++n);
    }
    // A fragment aimed at no rule is counted the same, and none touched the flow or made one.
    PacketSpec stray = client_tcp(kSyn, kClientPort, 4444);
    stray.frag = 0x2000 | 1;
    Bytes in = build(stray);
    check_untouched(fx.run(hook, Side::wan, in), in, hook);
    CHECK(fx.counter(XNAT_CNT_PASS_FRAGMENT) == n + 1);
    CHECK(fx.counter(XNAT_CNT_NEW_FLOW) == 1);
    CHECK(fx.ct_entries() == 2);
    CHECK(fx.conns().at(0).original.packets == packets_before);
}

TEST_CASE("hostile: IP options are kept and every checksum still verifies after translation")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    NetGateway gw(hook, forwards(), {masq("10.0.0.0/24", kWanAddr)});
    // Record route (7), 39 bytes, with room for 9 addresses, then EOL: IHL 15, the longest.
    Bytes record_route(40, 0);
    record_route[0] = 7;
    record_route[1] = 39;
    record_route[2] = 4;

    SECTION("UDP to a forward, IHL 15")
    {
        PacketSpec in = wan_udp(7000);
        in.ip_options = record_route;
        PacketSpec want = in;
        want.daddr = ip("10.0.0.12");
        want.ttl = 63;
        want.eth_dst = kServerMac;
        want.eth_src = mac_of("lan0");
        RunResult r = gw.from_wan(build(in));
        CHECK(r.verdict == redirect_verdict(hook));
        check_frame(r.out, build(want));
        CHECK(gw.fx.ct_entries() == 2);
    }
    SECTION("masqueraded ICMP echo with options")
    {
        PacketSpec in = lan_host_to_remote(kIcmp, 0x1111);
        in.ip_options = {0x01, 0x01, 0x01, 0x00};
        RunResult r = gw.from_lan(build(in));
        CHECK(r.verdict == redirect_verdict(hook));
        check_frame(r.out, build(masqueraded(in)));
        CHECK(fields(r.out).icmp_id == 0x1111);
    }
    SECTION("masqueraded TCP SYN with options, and an ICMP error quoting it with its options")
    {
        PacketSpec in = lan_host_to_remote(kTcp, 20000, 443);
        in.ip_options = record_route;
        RunResult r = gw.from_lan(build(in));
        CHECK(r.verdict == redirect_verdict(hook));
        PacketSpec sent = masqueraded(in);
        check_frame(r.out, build(sent));

        RunResult e = gw.from_wan(build(icmp_error("198.51.100.254", kWanAddr, r.out)));
        CHECK(gw.fx.counter(XNAT_CNT_ICMP_ERROR_TRANSLATED) == 1);
        CHECK(fields(e.out).daddr == ip("10.0.0.5"));
        Bytes q = quoted_frame(e.out);
        CHECK(fields(q).saddr == ip("10.0.0.5"));
        CHECK(fields(q).sport == 20000);
        CHECK((q[kL3] & 0x0f) == 15);
        CHECK(ipv4_checksum_ok(e.out));
        CHECK(icmp_checksum_ok(e.out));
        CHECK(ipv4_checksum_ok(q));
        CHECK(l4_checksum_ok(q));
    }
}

TEST_CASE("hostile: a UDP datagram without checksum keeps it zero through masquerade, both ways")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    NetGateway gw(hook, {}, {masq("10.0.0.0/24", kWanAddr)});
    PacketSpec in = lan_host_to_remote(kUdp);
    in.udp_no_checksum = true;
    RunResult r = gw.from_lan(build(in));
    CHECK(r.verdict == redirect_verdict(hook));
    check_frame(r.out, build(masqueraded(in)), true);
    CHECK(fields(r.out).l4_check == 0);

    PacketSpec reply;
    reply.proto = kUdp;
    reply.saddr = ip("203.0.113.50");
    reply.daddr = ip(kWanAddr);
    reply.sport = 53;
    reply.dport = fields(r.out).sport;
    reply.udp_no_checksum = true;
    reply.payload = {5, 6, 7};
    PacketSpec want = reply;
    want.daddr = ip("10.0.0.5");
    want.dport = 20000;
    want.ttl = 63;
    want.eth_dst = kLanHostMac;
    want.eth_src = mac_of("lan0");
    RunResult back = gw.from_wan(build(reply));
    CHECK(back.verdict == redirect_verdict(hook));
    check_frame(back.out, build(want), true);
    CHECK(fields(back.out).l4_check == 0);

    // An ICMP error quoting the checksum-less datagram leaves the quoted zero alone.
    RunResult e = gw.from_wan(build(icmp_error("198.51.100.254", kWanAddr, r.out)));
    Bytes q = quoted_frame(e.out);
    CHECK(fields(q).saddr == ip("10.0.0.5"));
    CHECK(fields(q).l4_check == 0);
    CHECK(l4_checksum_ok(q, true));
    CHECK(icmp_checksum_ok(e.out));
}

TEST_CASE("hostile: ICMP errors with broken or foreign quotes are passed untouched")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    NetGateway gw(hook, {}, {masq("10.0.0.0/24", kWanAddr)});
    RunResult opened = gw.from_lan(build(lan_host_to_remote(kUdp)));
    REQUIRE(opened.verdict == redirect_verdict(hook));
    const Bytes sent = opened.out; // the flow's packet as the internet saw it

    struct Case {
        const char *name;
        std::function<Bytes()> frame;
        int counter;
    } cases[] = {
        {"quote of a flow that does not exist",
         [&] {
             PacketSpec other = masqueraded(lan_host_to_remote(kUdp, 20001));
             return build(icmp_error("198.51.100.254", kWanAddr, build(other)));
         },
         XNAT_CNT_PASS_ICMP_NO_FLOW},
        {"quote from a spoofer about a flow to someone else",
         [&] {
             PacketSpec other = masqueraded(lan_host_to_remote(kUdp));
             other.daddr = ip("203.0.113.51");
             return build(icmp_error("203.0.113.66", kWanAddr, build(other)));
         },
         XNAT_CNT_PASS_ICMP_NO_FLOW},
        {"quoted IP header cut at 19 bytes",
         [&] { return build(icmp_error("198.51.100.254", kWanAddr, sent, 19)); }, XNAT_CNT_PASS_MALFORMED},
        {"quoted L4 header cut at 4 bytes",
         [&] { return build(icmp_error("198.51.100.254", kWanAddr, sent, 24)); }, XNAT_CNT_PASS_MALFORMED},
        {"quoted IHL below 5",
         [&] {
             Bytes q = sent;
             q[kL3] = 0x44;
             return build(icmp_error("198.51.100.254", kWanAddr, q));
         },
         XNAT_CNT_PASS_MALFORMED},
        {"quoted IHL pointing past the quote",
         [&] {
             Bytes q = sent;
             q[kL3] = 0x4f;
             return build(icmp_error("198.51.100.254", kWanAddr, q, 40));
         },
         XNAT_CNT_PASS_MALFORMED},
        {"quoted non-first fragment (no ports to match)",
         [&] {
             Bytes q = sent;
             set16(q, kL3 + 6, 0x2000 | 3);
             fix_ip_check(q);
             return build(icmp_error("198.51.100.254", kWanAddr, q));
         },
         XNAT_CNT_PASS_ICMP_NO_FLOW},
        {"quoted protocol xnat does not track",
         [&] {
             Bytes q = sent;
             q[kL3 + 9] = 47;
             fix_ip_check(q);
             return build(icmp_error("198.51.100.254", kWanAddr, q));
         },
         XNAT_CNT_PASS_ICMP_NO_FLOW},
        {"error whose own ICMP header is cut short",
         [&] {
             Bytes f = build(icmp_error("198.51.100.254", kWanAddr, sent));
             f.resize(kL3 + 20 + 6);
             set16(f, kL3 + 2, 26);
             fix_ip_check(f);
             return f;
         },
         XNAT_CNT_PASS_MALFORMED},
        {"error whose IP total length ends inside the quote (rest is padding)",
         [&] {
             Bytes f = build(icmp_error("198.51.100.254", kWanAddr, sent));
             set16(f, kL3 + 2, 20 + 8 + 20 + 4);
             fix_ip_check(f);
             return f;
         },
         XNAT_CNT_PASS_MALFORMED},
        // The quoted header ends past the total length: the cut wins over its fragment offset
        // (difffuzz seed 111 step 1363).
        {"total length ends inside a quoted non-first fragment's IP header",
         [&] {
             Bytes q = sent;
             set16(q, kL3 + 6, 0x2000 | 3);
             fix_ip_check(q);
             Bytes f = build(icmp_error("198.51.100.254", kWanAddr, q, 21));
             set16(f, kL3 + 2, 20 + 8 + 20 - 3);
             fix_ip_check(f);
             return f;
         },
         XNAT_CNT_PASS_MALFORMED},
    };
    for (const Case &c : cases) {
        INFO(hook_name(hook) << ": " << c.name);
        uint64_t before = gw.fx.counter(c.counter);
        Bytes in = c.frame();
        check_untouched(gw.from_wan(in), in, hook);
        CHECK(gw.fx.counter(c.counter) == before + 1);
        CHECK(gw.fx.counter(XNAT_CNT_ICMP_ERROR_TRANSLATED) == 0);
        CHECK(gw.fx.ct_entries() == 2);
    }
}

TEST_CASE("hostile: an ICMP header in the Ethernet padding past the IP total length opens nothing")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    NetGateway gw(hook, {}, {masq("10.0.0.0/24", kWanAddr)});
    // The IP header says 24 bytes; the frame carries a whole echo request (as padding would).
    Bytes in = build(lan_host_to_remote(kIcmp, 0x2222));
    set16(in, kL3 + 2, 24);
    fix_ip_check(in);
    check_untouched(gw.from_lan(in), in, hook);
    CHECK(gw.fx.counter(XNAT_CNT_PASS_MALFORMED) == 1);
    CHECK(gw.fx.ct_entries() == 0);
    CHECK(gw.fx.snat_mappings() == 0);
}

TEST_CASE("hostile: spoofed RSTs from the WAN are judged against the window, both edges")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    BpfFixture fx;
    fx.install(forwards());
    auto state = [&] {
        auto conns = fx.conns();
        REQUIRE(conns.size() == 1);
        return conns[0].original.state;
    };
    PacketSpec server;
    server.saddr = ip("10.0.0.12");
    server.daddr = ip("198.51.100.2");
    server.sport = 22;
    server.dport = 40000;
    server.tcp_flags = kSyn | kAck;
    fx.run(hook, Side::wan, build(client_tcp()));    // client seq 1000: next 1001
    fx.run(hook, Side::lan, build(server));
    fx.run(hook, Side::wan, build(client_tcp(kAck)));
    REQUIRE(state() == XNAT_TCP_ESTABLISHED);
    auto packets = [&] {
        auto conns = fx.conns();
        REQUIRE(conns.size() == 1);
        return conns[0].original.packets + conns[0].reply.packets;
    };
    const uint64_t before = packets();

    for (uint32_t seq : {1001u + XNAT_RST_WINDOW + 1, 1001u - XNAT_RST_WINDOW - 1, 1001u + 0x80000000u}) {
        INFO("seq " << seq);
        PacketSpec rst = client_tcp(kRst);
        rst.seq = seq;
        RunResult r = fx.run(hook, Side::wan, build(rst));
        // Dropped: neither translated nor counted to the flow, state kept.
        CHECK(r.verdict == drop_verdict(hook));
        CHECK(state() == XNAT_TCP_ESTABLISHED);
        CHECK(packets() == before);
    }
    CHECK(fx.counter(XNAT_CNT_DROP_TCP_RST_WINDOW) == 3);

    PacketSpec edge = client_tcp(kRst);
    edge.seq = 1001u + XNAT_RST_WINDOW; // the last sequence number still believed
    fx.run(hook, Side::wan, build(edge));
    CHECK(state() == XNAT_TCP_CLOSE);
    CHECK(fx.counter(XNAT_CNT_DROP_TCP_RST_WINDOW) == 3);
    CHECK(fx.ct_entries() == 2);
}

TEST_CASE("hostile: TTL 0 and 1 are never forwarded by the fast path, the kernel answers")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    for (uint8_t ttl : {uint8_t{0}, uint8_t{1}}) {
        INFO(hook_name(hook) << " ttl " << int(ttl));
        NetGateway gw(hook, forwards(), {masq("10.0.0.0/24", kWanAddr)});

        // DNAT: handed to the kernel translated and with its TTL as it came; the kernel's time
        // exceeded quotes the translated packet and the egress program restores the quote.
        PacketSpec in = client_tcp();
        in.ttl = ttl;
        PacketSpec want = in;
        want.daddr = ip("10.0.0.12");
        want.dport = 22;
        RunResult r = gw.from_wan(build(in));
        CHECK(r.verdict == pass_verdict(hook));
        check_frame(r.out, build(want));
        CHECK(fields(r.out).ttl == ttl);
        CHECK(gw.fx.counter(XNAT_CNT_PASS_TTL) == 1);

        // Masquerade: handed over untranslated, so the error names the host's own address.
        PacketSpec out = lan_host_to_remote(kTcp, 20000, 443);
        out.ttl = ttl;
        Bytes out_frame = build(out);
        check_untouched(gw.from_lan(out_frame), out_frame, hook);
        CHECK(gw.fx.counter(XNAT_CNT_PASS_FOR_ERROR) == 1);

        CHECK(gw.fx.counter(XNAT_CNT_REDIRECTED) == 0);
        // XDP leaves both to tc, untouched, which decides them as above.
        CHECK(gw.fx.counter(XNAT_CNT_XDP_HANDOFF) == (hook == Hook::xdp ? 2u : 0u));
        // Both flows are tracked, as conntrack would: the next packet (traceroute's next
        // probe, or the retransmission) finds them.
        CHECK(gw.fx.ct_entries() == 4);
    }
}
