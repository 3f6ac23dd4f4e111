// Fragmented datagrams (RFC 4787 REQ-14): the first fragment is translated like any packet and
// its translation kept for the later ones, which carry no ports. Each datagram is built whole by
// the oracle (every checksum from scratch), cut into fragments here, sent through the datapath,
// and the fragments that come out are put back together, so the L4 checksum of the whole
// datagram is checked after translation, as the receiver checks it.
#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

#include "bpf_harness.h"
#include "expect.h"
#include "kernel/map_io.h"
#include "xnat/counters.h"
#include "xnat/frag.h"

using namespace xnat;
using namespace xnat::test;

namespace {

constexpr size_t kL3 = 14;
constexpr size_t kIpHdr = 20;

uint16_t get16(const Bytes &f, size_t off)
{
    return static_cast<uint16_t>(f[off] << 8 | f[off + 1]);
}

void fix_ip_checksum(Bytes &f)
{
    set16(f, kL3 + 10, 0);
    set16(f, kL3 + 10, internet_checksum(&f[kL3], kIpHdr));
}

// Cuts a whole frame (IPv4 without options) into fragments of `chunk` payload bytes (a multiple
// of 8), as a sender does for a link of MTU chunk + 20.
std::vector<Bytes> fragment(const Bytes &whole, size_t chunk = 1480)
{
    REQUIRE(chunk % 8 == 0);
    const size_t payload = whole.size() - kL3 - kIpHdr;
    std::vector<Bytes> out;
    for (size_t off = 0; off < payload; off += chunk) {
        size_t n = std::min(chunk, payload - off);
        // Sized first and copied into: GCC 12 reads an insert at the end of the copied header
        // as a write past it (a false -Warray-bounds).
        Bytes f(kL3 + kIpHdr + n);
        std::copy_n(whole.begin(), kL3 + kIpHdr, f.begin());
        std::copy_n(whole.begin() + static_cast<long>(kL3 + kIpHdr + off), n, f.begin() + static_cast<long>(kL3 + kIpHdr));
        set16(f, kL3 + 2, static_cast<uint16_t>(kIpHdr + n));
        set16(f, kL3 + 6, static_cast<uint16_t>((off + n < payload ? 0x2000 : 0) | off / 8));
        fix_ip_checksum(f);
        out.push_back(f);
    }
    return out;
}

// Puts fragments (as they left the datapath) back together, by offset, under the header of the
// first: the datagram its receiver reassembles.
Bytes reassemble(const std::vector<Bytes> &frags)
{
    std::map<size_t, Bytes> by_offset;
    for (const Bytes &f : frags)
        by_offset[size_t{get16(f, kL3 + 6) & 0x1fffu} * 8] = Bytes(f.begin() + kL3 + kIpHdr, f.end());
    REQUIRE(by_offset.count(0) == 1);
    const Bytes *first = nullptr;
    for (const Bytes &f : frags)
        if ((get16(f, kL3 + 6) & 0x1fff) == 0)
            first = &f;
    Bytes whole(first->begin(), first->begin() + kL3 + kIpHdr);
    for (auto &[off, data] : by_offset) {
        REQUIRE(off == whole.size() - kL3 - kIpHdr);
        whole.insert(whole.end(), data.begin(), data.end());
    }
    set16(whole, kL3 + 2, static_cast<uint16_t>(whole.size() - kL3));
    set16(whole, kL3 + 6, 0);
    fix_ip_checksum(whole);
    return whole;
}

Bytes pattern(size_t n, uint8_t seed)
{
    Bytes b(n);
    for (size_t i = 0; i < n; ++i)
        b[i] = static_cast<uint8_t>(seed + i * 7);
    return b;
}

PacketSpec datagram(const char *src, uint16_t sport, const char *dst, uint16_t dport, size_t size = 3000)
{
    PacketSpec s = flow_packet(kUdp, src, sport, dst, dport);
    s.frag = 0; // no DF: the sender fragments
    s.payload = pattern(size, static_cast<uint8_t>(sport));
    return s;
}

PacketSpec echo(const char *src, const char *dst, uint8_t type, uint16_t id, size_t size = 4000)
{
    PacketSpec s = flow_packet(kIcmp, src, 0, dst, 0);
    s.icmp_type = type;
    s.icmp_id = id;
    s.frag = 0;
    s.payload = pattern(size, 3);
    return s;
}

PacketSpec with_id(PacketSpec s, uint16_t id)
{
    s.ip_id = id;
    return s;
}

// Sends every fragment through one side; each must be redirected, with its IP header checksum
// right. Returns the fragments as they left.
std::vector<Bytes> send_all(NetGateway &gw, Side side, const std::vector<Bytes> &frags)
{
    std::vector<Bytes> out;
    for (const Bytes &f : frags) {
        RunResult r = side == Side::wan ? gw.from_wan(f) : gw.from_lan(f);
        INFO("fragment at offset " << (get16(f, kL3 + 6) & 0x1fff) * 8);
        CHECK(r.verdict == redirect_verdict(gw.hook));
        CHECK(ipv4_checksum_ok(r.out));
        CHECK(r.out.size() == f.size());
        out.push_back(r.out);
    }
    return out;
}

// The datagram that arrives: addresses and ports as expected, its payload intact, and its L4
// checksum, over the whole datagram, right.
void check_arrives(const std::vector<Bytes> &out, const PacketSpec &sent, const char *src, uint16_t sport,
                   const char *dst, uint16_t dport)
{
    for (const Bytes &f : out) {
        CHECK(fields(f).saddr == ip(src));
        CHECK(fields(f).daddr == ip(dst));
        CHECK(fields(f).ttl == sent.ttl - 1);
    }
    Bytes whole = reassemble(out);
    Fields got = fields(whole);
    CHECK(got.saddr == ip(src));
    CHECK(got.daddr == ip(dst));
    if (sent.proto == kIcmp) {
        CHECK(got.icmp_id == sport);
        CHECK(icmp_checksum_ok(whole));
    } else {
        CHECK(got.sport == sport);
        CHECK(got.dport == dport);
        CHECK(l4_checksum_ok(whole));
    }
    Bytes payload(whole.end() - static_cast<long>(sent.payload.size()), whole.end());
    CHECK(payload == sent.payload);
}

size_t frag_entries(const BpfFixture &fx)
{
    size_t n = 0;
    auto r = map_for_each_key<xnat_frag_key>(fx.maps().frags, "frags", [&](const xnat_frag_key &) { ++n; });
    REQUIRE(r);
    return n;
}

// The LAN masqueraded to the WAN address, and forwards to two LAN hosts.
struct Gateway : NetGateway {
    explicit Gateway(Hook h)
        : NetGateway(h,
                     {fwd("udp", "198.51.100.1:5000", "10.0.0.12:6000"),
                      fwd("udp", "198.51.100.1:5001", "10.0.0.5:6001")},
                     {masq("10.0.0.0/24", kWanAddr)})
    {
    }
};

} // namespace

TEST_CASE("fragments: a fragmented UDP datagram crosses a port forward both ways")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    Gateway gw(hook);

    PacketSpec in = datagram("198.51.100.2", 40000, "198.51.100.1", 5000);
    auto frags = fragment(build(in));
    REQUIRE(frags.size() == 3);
    auto out = send_all(gw, Side::wan, frags);
    check_arrives(out, in, "198.51.100.2", 40000, "10.0.0.12", 6000);
    for (const Bytes &f : out)
        CHECK(fields(f).eth_dst == kServerMac);

    PacketSpec reply = datagram("10.0.0.12", 6000, "198.51.100.2", 40000, 3500);
    auto back = send_all(gw, Side::lan, fragment(build(reply)));
    check_arrives(back, reply, "198.51.100.1", 5000, "198.51.100.2", 40000);
    for (const Bytes &f : back)
        CHECK(fields(f).eth_dst == kClientMac);

    CHECK(gw.fx.counter(XNAT_CNT_FRAG_TRACKED) == 2);
    CHECK(gw.fx.counter(XNAT_CNT_REDIRECTED) == 6);
    CHECK(gw.fx.counter(XNAT_CNT_NEW_FLOW) == 1);
    // The flow counts every fragment, bytes as sent.
    auto conns = gw.fx.conns();
    REQUIRE(conns.size() == 1);
    CHECK(conns[0].original.packets == 3);
    CHECK(conns[0].original.bytes == 3000 + 8 + 3 * 20);
    CHECK(conns[0].reply.packets == 3);
}

TEST_CASE("fragments: a fragmented UDP datagram crosses a masquerade both ways")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    Gateway gw(hook);

    PacketSpec in = datagram("10.0.0.5", 20000, "203.0.113.50", 53, 4000);
    auto out = send_all(gw, Side::lan, fragment(build(in)));
    REQUIRE(out.size() == 3);
    uint16_t ext = fields(reassemble(out)).sport;
    check_arrives(out, in, kWanAddr, ext, "203.0.113.50", 53);
    for (const Bytes &f : out)
        CHECK(fields(f).eth_dst == kRouterMac);

    PacketSpec reply = datagram("203.0.113.50", 53, kWanAddr, ext, 4000);
    auto back = send_all(gw, Side::wan, fragment(build(reply)));
    check_arrives(back, reply, "203.0.113.50", 53, "10.0.0.5", 20000);
    for (const Bytes &f : back)
        CHECK(fields(f).eth_dst == kLanHostMac);
    CHECK(gw.fx.counter(XNAT_CNT_DROP_FRAG_NO_FIRST) == 0);
}

TEST_CASE("fragments: a UDP datagram without a checksum keeps none across a masquerade")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    Gateway gw(hook);
    PacketSpec in = datagram("10.0.0.5", 20000, "203.0.113.50", 53);
    in.udp_no_checksum = true;
    auto out = send_all(gw, Side::lan, fragment(build(in)));
    Bytes whole = reassemble(out);
    CHECK(fields(whole).saddr == ip(kWanAddr));
    CHECK(fields(whole).l4_check == 0);
}

TEST_CASE("fragments: a fragmented ICMP echo and its reply cross a masquerade")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    Gateway gw(hook);

    PacketSpec ping = echo("10.0.0.5", "203.0.113.50", kEcho, 77);
    auto out = send_all(gw, Side::lan, fragment(build(ping)));
    REQUIRE(out.size() == 3);
    uint16_t id = fields(reassemble(out)).icmp_id;
    check_arrives(out, ping, kWanAddr, id, "203.0.113.50", 0);

    PacketSpec pong = echo("203.0.113.50", kWanAddr, kEchoReply, id);
    auto back = send_all(gw, Side::wan, fragment(build(pong)));
    check_arrives(back, pong, "203.0.113.50", 77, "10.0.0.5", 0);

    CHECK(gw.fx.counter(XNAT_CNT_FRAG_TRACKED) == 2);
}

TEST_CASE("fragments: a later fragment that overtakes its first is dropped, never sent untranslated")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    Gateway gw(hook);

    PacketSpec in = datagram("10.0.0.5", 20000, "203.0.113.50", 53);
    auto frags = fragment(build(in));
    RunResult early = gw.from_lan(frags[2]);
    CHECK(early.verdict == drop_verdict(hook));
    CHECK(gw.fx.counter(XNAT_CNT_DROP_FRAG_NO_FIRST) == 1);
    CHECK(gw.fx.ct_entries() == 0);

    // The rest of the datagram is translated; the sender's next datagram crosses whole.
    send_all(gw, Side::lan, {frags[0], frags[1]});
    PacketSpec next = with_id(in, 0x1235);
    auto out = send_all(gw, Side::lan, fragment(build(next)));
    check_arrives(out, next, kWanAddr, fields(out[0]).sport, "203.0.113.50", 53);

    // Fragments of a datagram for the gateway itself, whose first was never seen, go up to its
    // own stack untouched: the kernel reassembles what is its own.
    PacketSpec local = datagram("198.51.100.2", 40000, "198.51.100.1", 9999);
    Bytes later = fragment(build(local))[1];
    check_untouched(gw.from_wan(later), later, hook);
    CHECK(gw.fx.counter(XNAT_CNT_PASS_FRAGMENT) == 1);
    CHECK(gw.fx.counter(XNAT_CNT_DROP_FRAG_NO_FIRST) == 1);
}

TEST_CASE("fragments: two sources with the same IP ID keep their own translations")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    Gateway gw(hook);

    PacketSpec a = with_id(datagram("198.51.100.2", 40000, "198.51.100.1", 5000), 0x4242);
    PacketSpec b = with_id(datagram("203.0.113.50", 40000, "198.51.100.1", 5001), 0x4242);
    auto fa = fragment(build(a)), fb = fragment(build(b));
    std::vector<Bytes> out_a, out_b;
    // Interleaved: each later fragment must follow its own source's first.
    for (size_t i = 0; i < fa.size(); ++i) {
        out_a.push_back(send_all(gw, Side::wan, {fa[i]}).at(0));
        out_b.push_back(send_all(gw, Side::wan, {fb[i]}).at(0));
    }
    check_arrives(out_a, a, "198.51.100.2", 40000, "10.0.0.12", 6000);
    check_arrives(out_b, b, "203.0.113.50", 40000, "10.0.0.5", 6001);
    CHECK(gw.fx.counter(XNAT_CNT_FRAG_TRACKED) == 2);
    CHECK(gw.fx.counter(XNAT_CNT_DROP_FRAG_CLASH) == 0);
}

TEST_CASE("fragments: a first fragment cannot take over the ID of another translation in flight")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    Gateway gw(hook);

    PacketSpec a = with_id(datagram("198.51.100.2", 40000, "198.51.100.1", 5000), 0x4242);
    // Same source, destination, protocol and ID, to the other forward: another translation.
    PacketSpec b = with_id(datagram("198.51.100.2", 40001, "198.51.100.1", 5001), 0x4242);
    auto fa = fragment(build(a)), fb = fragment(build(b));
    std::vector<Bytes> out_a = send_all(gw, Side::wan, {fa[0]});
    RunResult clash = gw.from_wan(fb[0]);
    CHECK(clash.verdict == drop_verdict(hook));
    CHECK(gw.fx.counter(XNAT_CNT_DROP_FRAG_CLASH) == 1);
    // The first datagram's later fragments still reach its own server.
    for (size_t i = 1; i < fa.size(); ++i)
        out_a.push_back(send_all(gw, Side::wan, {fa[i]}).at(0));
    check_arrives(out_a, a, "198.51.100.2", 40000, "10.0.0.12", 6000);

    // Once the entry has expired, the ID is free for the other translation.
    gw.fx.advance_clock_s(XNAT_FRAG_LIFETIME_S + 1);
    auto out_b = send_all(gw, Side::wan, fb);
    check_arrives(out_b, b, "198.51.100.2", 40001, "10.0.0.5", 6001);
    CHECK(gw.fx.counter(XNAT_CNT_DROP_FRAG_CLASH) == 1);
}

TEST_CASE("fragments: a translation expires after its lifetime")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    Gateway gw(hook);
    PacketSpec in = datagram("10.0.0.5", 20000, "203.0.113.50", 53);
    auto frags = fragment(build(in));
    send_all(gw, Side::lan, {frags[0], frags[1]});
    gw.fx.advance_clock_s(XNAT_FRAG_LIFETIME_S - 1);
    send_all(gw, Side::lan, {frags[1]}); // still within its lifetime
    gw.fx.advance_clock_s(2);
    CHECK(gw.from_lan(frags[2]).verdict == drop_verdict(hook));
    CHECK(gw.fx.counter(XNAT_CNT_DROP_FRAG_NO_FIRST) == 1);
}

TEST_CASE("fragments: a first fragment too short for its L4 header is malformed, and stays untouched")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    Gateway gw(hook);
    Bytes f = fragment(build(datagram("10.0.0.5", 20000, "203.0.113.50", 53)))[0];
    f.resize(kL3 + kIpHdr + 4);
    set16(f, kL3 + 2, kIpHdr + 4);
    fix_ip_checksum(f);
    check_untouched(gw.from_lan(f), f, hook);
    CHECK(gw.fx.counter(XNAT_CNT_PASS_MALFORMED) == 1);
    CHECK(gw.fx.counter(XNAT_CNT_FRAG_TRACKED) == 0);
    CHECK(frag_entries(gw.fx) == 0);
}

TEST_CASE("fragments: a flood of first fragments stays within the table and a datagram still crosses")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    Gateway gw(hook);
    const uint32_t flood = XNAT_FRAG_MAX_ENTRIES + 2048;
    PacketSpec in = datagram("10.0.0.5", 20000, "203.0.113.50", 53, 1600);
    for (uint32_t id = 0; id < flood; ++id) {
        Bytes first = fragment(build(with_id(in, static_cast<uint16_t>(id))))[0];
        if (gw.from_lan(first).verdict != redirect_verdict(hook))
            FAIL("first fragment " << id << " not sent");
    }
    CHECK(gw.fx.counter(XNAT_CNT_FRAG_TRACKED) == flood);
    size_t entries = frag_entries(gw.fx);
    CHECK(entries <= XNAT_FRAG_MAX_ENTRIES);
    CHECK(entries >= XNAT_FRAG_MAX_ENTRIES / 2);
    CHECK(gw.fx.ct_entries() == 2); // one flow: the flood made no state beyond the LRU

    PacketSpec next = with_id(in, static_cast<uint16_t>(flood));
    next.payload = pattern(3000, 9);
    auto out = send_all(gw, Side::lan, fragment(build(next)));
    check_arrives(out, next, kWanAddr, fields(out[0]).sport, "203.0.113.50", 53);
    CHECK(frag_entries(gw.fx) <= XNAT_FRAG_MAX_ENTRIES);
}

TEST_CASE("fragments: a datagram no rule translates goes to the kernel whole, later fragments too")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    // An excluded destination: the kernel routes the LAN host's datagram out of the WAN as it is.
    NetGateway gw(hook, {}, {masq("10.0.0.0/24", kWanAddr, 1024, 65535, false, {"203.0.113.0/24"})});
    auto frags = fragment(build(datagram("10.0.0.5", 20000, "203.0.113.50", 53)));
    for (const Bytes &f : frags)
        check_untouched(gw.from_lan(f), f, hook);
    CHECK(gw.fx.counter(XNAT_CNT_PASS_NO_MATCH) == 1);
    CHECK(gw.fx.counter(XNAT_CNT_PASS_FRAGMENT) == 2);
    CHECK(gw.fx.counter(XNAT_CNT_DROP_FRAG_NO_FIRST) == 0);
    CHECK(gw.fx.counter(XNAT_CNT_FRAG_TRACKED) == 1);
    CHECK(gw.fx.ct_entries() == 0);
}
