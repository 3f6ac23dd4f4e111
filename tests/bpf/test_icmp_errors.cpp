// ICMP errors about translated flows (RFC 5508): the quoted packet is restored to the form its
// recipient sent, with its IP and L4 checksums, the outer addresses follow, and the ICMP
// checksum covers it all. Every checksum is checked by the independent oracle, the quoted
// packet's included.
#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include "bpf_harness.h"
#include "expect.h"
#include "xnat/abi.h"
#include "xnat/counters.h"

using namespace xnat;
using namespace xnat::test;

namespace {

PacketSpec udp(const char *src, uint16_t sport, const char *dst, uint16_t dport, uint8_t ttl = 64)
{
    PacketSpec s = flow_packet(kUdp, src, sport, dst, dport);
    s.ttl = ttl;
    s.payload = {'q', 'u', 'o', 't', 'e'};
    return s;
}

// An ICMP error from `from` to `to` quoting `quoted` (whole, or cut to `quote_len` bytes).
PacketSpec icmp_error(const char *from, const char *to, uint8_t type, uint8_t code, const PacketSpec &quoted,
                      size_t quote_len = 0)
{
    PacketSpec e;
    e.proto = kIcmp;
    e.saddr = ip(from);
    e.daddr = ip(to);
    e.icmp_type = type;
    e.icmp_code = code;
    e.icmp_id = 0;
    e.icmp_seq = type == kUnreach && code == 4 ? 1280 : 0; // frag-needed carries the next-hop MTU
    e.payload = ip_packet(build(quoted), quote_len);
    return e;
}

// The quoted packet survived as a packet: its own IP and L4 checksums verify.
void check_quote(const Bytes &out, bool quote_is_whole = true)
{
    Bytes q = quoted_frame(out);
    CHECK(ipv4_checksum_ok(q));
    if (quote_is_whole) {
        if (fields(q).proto == kIcmp)
            CHECK(icmp_checksum_ok(q));
        else
            CHECK(l4_checksum_ok(q));
    }
}

// Runs packet specs through a gateway on the test network.
struct Gateway : NetGateway {
    Gateway(Hook h, std::vector<PortForward> fwds, std::vector<Masquerade> masqs)
        : NetGateway(h, std::move(fwds), std::move(masqs))
    {
    }
    RunResult from_lan(const PacketSpec &s) { return NetGateway::from_lan(build(s)); }
    RunResult from_wan(const PacketSpec &s) { return NetGateway::from_wan(build(s)); }
};

} // namespace

TEST_CASE("icmp: a router's frag-needed about a masqueraded flow reaches the LAN host")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    Gateway gw(hook, {}, {masq("10.0.0.0/24", kWanAddr)});
    REQUIRE(fields(gw.from_lan(udp("10.0.0.5", 20000, "203.0.113.50", 3478)).out).saddr == ip(kWanAddr));

    // As it left the gateway: source NATed, TTL 63.
    PacketSpec sent = udp(kWanAddr, 20000, "203.0.113.50", 3478, 63);
    PacketSpec err = icmp_error("198.51.100.254", kWanAddr, kUnreach, 4, sent);
    PacketSpec want = icmp_error("198.51.100.254", "10.0.0.5", kUnreach, 4,
                                 udp("10.0.0.5", 20000, "203.0.113.50", 3478, 63));
    want.ttl = 63;
    want.eth_dst = kLanHostMac;
    want.eth_src = mac_of("lan0");
    RunResult r = gw.from_wan(err);
    CHECK(r.verdict == redirect_verdict(hook));
    check_frame(r.out, build(want));
    check_quote(r.out);
    CHECK(gw.fx.counter(XNAT_CNT_ICMP_ERROR_TRANSLATED) == 1);
}

TEST_CASE("icmp: a port unreachable from a forwarded server comes from the public address")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    Gateway gw(hook, {fwd("udp", "203.0.113.1:6001", "10.0.0.5:6001")}, {});
    REQUIRE(fields(gw.from_wan(udp("198.51.100.2", 40000, "203.0.113.1", 6001)).out).daddr == ip("10.0.0.5"));

    PacketSpec arrived = udp("198.51.100.2", 40000, "10.0.0.5", 6001, 63);
    PacketSpec err = icmp_error("10.0.0.5", "198.51.100.2", kUnreach, 3, arrived);
    // The client hears from the address it talked to, about the packet it sent.
    PacketSpec want = icmp_error("203.0.113.1", "198.51.100.2", kUnreach, 3,
                                 udp("198.51.100.2", 40000, "203.0.113.1", 6001, 63));
    want.ttl = 63;
    want.eth_dst = kClientMac;
    want.eth_src = mac_of("wan0");
    RunResult r = gw.from_lan(err);
    CHECK(r.verdict == redirect_verdict(hook));
    check_frame(r.out, build(want));
    check_quote(r.out);
}

TEST_CASE("icmp: time exceeded quoting a masqueraded echo restores the identifier")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    Gateway gw(hook, {}, {masq("10.0.0.0/24", kWanAddr)});
    PacketSpec ping;
    ping.proto = kIcmp;
    ping.saddr = ip("10.0.0.5");
    ping.daddr = ip("203.0.113.50");
    ping.icmp_type = kEcho;
    ping.icmp_id = 0x1234;
    ping.payload = {1, 2, 3, 4, 5, 6, 7, 8};
    gw.from_lan(ping);
    PacketSpec other = ping;
    other.saddr = ip("10.0.0.6");
    uint16_t ext_id = fields(gw.from_lan(other).out).icmp_id;
    REQUIRE(ext_id != 0x1234); // the second pinger got another identifier

    PacketSpec sent = other;
    sent.saddr = ip(kWanAddr);
    sent.icmp_id = ext_id;
    sent.ttl = 1;
    PacketSpec err = icmp_error("198.51.100.254", kWanAddr, kTimeExceeded, 0, sent);
    RunResult r = gw.from_wan(err);
    Fields outer = fields(r.out);
    CHECK(outer.daddr == ip("10.0.0.6"));
    CHECK(outer.saddr == ip("198.51.100.254"));
    Bytes q = quoted_frame(r.out);
    CHECK(fields(q).saddr == ip("10.0.0.6"));
    CHECK(fields(q).icmp_id == 0x1234);
    CHECK(ipv4_checksum_ok(r.out));
    CHECK(icmp_checksum_ok(r.out));
    check_quote(r.out);
}

TEST_CASE("icmp: an error quoting only 8 bytes of TCP is translated all the same")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    Gateway gw(hook, {}, {masq("10.0.0.0/24", kWanAddr)});
    PacketSpec syn;
    syn.saddr = ip("10.0.0.5");
    syn.daddr = ip("203.0.113.50");
    syn.sport = 20000;
    syn.dport = 443;
    gw.from_lan(syn);
    PacketSpec sent = syn;
    sent.saddr = ip(kWanAddr);
    sent.ttl = 63;
    RunResult r = gw.from_wan(icmp_error("198.51.100.254", kWanAddr, kUnreach, 1, sent, 28));
    Bytes q = quoted_frame(r.out);
    CHECK(fields(r.out).daddr == ip("10.0.0.5"));
    CHECK(fields(q).saddr == ip("10.0.0.5"));
    CHECK(fields(q).sport == 20000);
    CHECK(ipv4_checksum_ok(q));
    CHECK(icmp_checksum_ok(r.out));
}

TEST_CASE("icmp: errors about no flow, or with a broken quote, are left alone")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    Gateway gw(hook, {}, {masq("10.0.0.0/24", kWanAddr)});
    Bytes unknown = build(icmp_error("198.51.100.254", kWanAddr, kUnreach, 4, udp(kWanAddr, 9999, "203.0.113.50", 53)));
    check_untouched(gw.fx.run(hook, Side::wan, unknown, gw.net.wan0), unknown, hook);
    CHECK(gw.fx.counter(XNAT_CNT_PASS_ICMP_NO_FLOW) == 1);

    gw.from_lan(udp("10.0.0.5", 20000, "203.0.113.50", 53));
    Bytes cut = build(icmp_error("198.51.100.254", kWanAddr, kUnreach, 4, udp(kWanAddr, 20000, "203.0.113.50", 53), 12));
    check_untouched(gw.fx.run(hook, Side::wan, cut, gw.net.wan0), cut, hook);
    CHECK(gw.fx.counter(XNAT_CNT_PASS_MALFORMED) == 1);
    CHECK(gw.fx.counter(XNAT_CNT_ICMP_ERROR_TRANSLATED) == 0);
}

TEST_CASE("icmp: the egress program mends the errors the gateway's own kernel sends")
{
    Gateway gw(Hook::tc, {fwd("udp", "203.0.113.1:6001", "10.0.0.5:6001")}, {});
    gw.from_wan(udp("198.51.100.2", 40000, "203.0.113.1", 6001));

    // The kernel got the translated datagram, found it too big for the LAN link, and answers
    // the client from its WAN address, quoting what it holds.
    PacketSpec held = udp("198.51.100.2", 40000, "10.0.0.5", 6001, 64);
    PacketSpec err = icmp_error(kWanAddr, "198.51.100.2", kUnreach, 4, held);
    PacketSpec want = icmp_error("203.0.113.1", "198.51.100.2", kUnreach, 4,
                                 udp("198.51.100.2", 40000, "203.0.113.1", 6001, 64));
    RunResult r = gw.fx.run_egress(build(err));
    CHECK(r.verdict == kTcOk);
    check_frame(r.out, build(want));
    check_quote(r.out);
    CHECK(gw.fx.counter(XNAT_CNT_ICMP_ERROR_TRANSLATED) == 1);

    // Anything else crosses egress untouched and uncounted.
    Bytes plain = build(udp("198.51.100.1", 1000, "198.51.100.2", 2000));
    RunResult p = gw.fx.run_egress(plain);
    CHECK(p.verdict == kTcOk);
    CHECK(hex(p.out) == hex(plain));
    CHECK(gw.fx.counter(XNAT_CNT_PASS_NO_MATCH) == 0);
}
