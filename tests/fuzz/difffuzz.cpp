// xnat-difffuzz: differential fuzzing of the real BPF object against the reference model
// (tests/model). Random packets in both directions, malformed ones, rule changes, flushes and
// clock steps go to both; after every step the verdict, the output bytes, the outcome
// counters, the connection table and the source-NAT mappings must agree. A seed replays a run
// exactly: the datapath's port choices come from a test PRNG seeded from it, and the run stays
// on one CPU so the LRU hint map's per-CPU free lists, hence its evictions, are the same.
//
// Needs root (BPF_PROG_TEST_RUN); runs in a network namespace of its own with the BPF tests'
// test network (tests/bpf/bpf_harness.cpp), so route lookups are the same for every run.
#include <arpa/inet.h>
#include <sched.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <bpf/libbpf.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bpf_harness.h"
#include "kernel/map_io.h"
#include "nat_model.h"
#include "packet.h"
#include "xnat/counters.h"
#include "xnat/hosts.h"

using namespace xnat;
using namespace xnat::test;
using model::Action;
using model::NatModel;

namespace {

constexpr uint64_t kTickNs = 1ull << XNAT_TICK_SHIFT;

const char *counter_name(int i)
{
#define XNAT_COUNTER_NAME_(id, kind, name, help) name,
    static const char *names[] = {XNAT_COUNTER_LIST(XNAT_COUNTER_NAME_)};
#undef XNAT_COUNTER_NAME_
    return i >= 0 && i < XNAT_CNT_COUNT ? names[i] : "?";
}

std::string addr(uint32_t be)
{
    return format_ipv4_be(be);
}

std::string key_str(const xnat_ct_key &k)
{
    return std::to_string(k.proto) + " " + addr(k.saddr) + ":" + std::to_string(ntohs(k.sport)) + " -> " +
           addr(k.daddr) + ":" + std::to_string(ntohs(k.dport));
}

std::string entry_str(const xnat_ct_entry &e)
{
    std::ostringstream o;
    o << "peer[" << key_str(e.peer) << "] pkts " << e.packets << " bytes " << e.bytes << " last " << e.last_seen
      << " dir " << int{e.dir} << " state " << int{e.state} << " flags 0x" << std::hex << int{e.flags} << " nat 0x"
      << int{e.nat} << std::dec << " next_seq " << e.next_seq << " known " << int{e.seq_known} << " rule " << e.rule;
    return o.str();
}

uint64_t coarse_now_ns()
{
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// The test network's routes (bpf_harness.cpp TestNet), as the model sees them.
model::Route route_of(const TestNet &net, uint32_t a)
{
    model::Route r;
    auto in = [&](const char *prefix) { return parse_prefix(prefix)->contains(a); };
    if (a == ip("198.51.100.1") || a == ip("203.0.113.1") || a == ip("10.0.0.1"))
        r.kind = model::RouteKind::local;
    else if (in("192.0.2.0/24"))
        r.kind = model::RouteKind::unreachable;
    else if (in("10.0.0.0/24")) {
        r.ifindex = net.lan0;
        r.kind = model::RouteKind::no_neigh;
        if (a == ip("10.0.0.5"))
            r = {model::RouteKind::neigh, net.lan0, kLanHostMac};
        else if (a == ip("10.0.0.12"))
            r = {model::RouteKind::neigh, net.lan0, kServerMac};
    } else if (in("198.51.100.0/24")) {
        r.ifindex = net.wan0;
        r.kind = model::RouteKind::no_neigh;
        if (a == ip("198.51.100.2"))
            r = {model::RouteKind::neigh, net.wan0, kClientMac};
        else if (a == ip("198.51.100.254"))
            r = {model::RouteKind::neigh, net.wan0, kRouterMac};
    } else {
        r = {model::RouteKind::neigh, net.wan0, kRouterMac}; // the default route
    }
    return r;
}

struct Rng {
    std::mt19937_64 g;
    explicit Rng(uint64_t seed) : g(seed) {}
    uint64_t below(uint64_t n) { return n ? g() % n : 0; }
    bool chance(unsigned percent) { return below(100) < percent; }
    template <typename T> const T &pick(const std::vector<T> &v) { return v[below(v.size())]; }
};

struct RuleSet {
    std::vector<PortForward> fwds;
    std::vector<Masquerade> masqs;
    std::string text;
};

RuleSet random_rules(Rng &rng)
{
    struct F {
        const char *proto, *from, *to, *side;
    };
    static const std::vector<F> templates = {
        {"tcp", "203.0.113.1:22012", "10.0.0.12:22", "wan"},
        {"tcp", "203.0.113.1:8080-8081", "10.0.0.5:80", "wan"},
        {"udp", "203.0.113.1:6000-6003", "10.0.0.12:6000", "wan"},
        {"udp", "198.51.100.1:5353", "10.0.0.7:53", "wan"},
        {"tcp", "198.51.100.1:2222", "10.0.0.12:22", "wan"},
        {"tcp", "203.0.113.1:2000", "203.0.113.50:80", "wan"},
        {"udp", "198.51.100.1:20001", "10.0.0.12:20001", "wan"},
        {"tcp", "198.51.100.1:20000", "10.0.0.5:22", "wan"},
        {"tcp", "198.51.100.1:30001", "10.0.0.12:22", "wan"},
        {"udp", "10.0.0.1:53", "198.51.100.2:53", "lan"},
        {"tcp", "10.0.0.1:8443", "10.0.0.12:443", "lan"},
        {"tcp", "203.0.113.99:443", "203.0.113.50:443", "lan"},
    };
    RuleSet r;
    for (const F &f : templates)
        if (rng.chance(55)) {
            r.fwds.push_back(fwd(f.proto, f.from, f.to, f.side));
            r.text += std::string(f.proto) + " " + f.from + " -> " + f.to + " on " + f.side + "; ";
        }
    struct Range {
        uint16_t lo, hi;
    };
    static const std::vector<Range> ranges = {{1024, 65535}, {2000, 2003}, {20000, 20001}, {30000, 30003}};
    if (rng.chance(85)) {
        Range p = rng.pick(ranges);
        bool eif = rng.chance(50);
        std::vector<const char *> ex;
        if (rng.chance(30))
            ex.push_back("203.0.113.0/25");
        r.masqs.push_back(masq("10.0.0.0/24", kWanAddr, p.lo, p.hi, eif, ex));
        r.text += "masq 10.0.0.0/24 -> " + std::string(kWanAddr) + " " + std::to_string(p.lo) + "-" +
                  std::to_string(p.hi) + (eif ? " eif" : "") + (ex.empty() ? "" : " not 203.0.113.0/25") + "; ";
    }
    if (rng.chance(40)) {
        bool eif = rng.chance(50);
        r.masqs.push_back(masq("10.0.0.12/32", "203.0.113.1", 30000, 30003, eif));
        r.text += std::string("masq 10.0.0.12/32 -> 203.0.113.1 30000-30003") + (eif ? " eif" : "") + "; ";
    }
    return r;
}

void set16(Bytes &f, size_t off, uint16_t v)
{
    f[off] = static_cast<uint8_t>(v >> 8);
    f[off + 1] = static_cast<uint8_t>(v);
}

uint16_t get16(const Bytes &f, size_t off)
{
    return static_cast<uint16_t>((f[off] << 8) | f[off + 1]);
}

struct Generated {
    Side side = Side::wan;
    Bytes frame;
    std::string what;
};

// One random packet: mostly ones that belong to flows the model knows or hit rules and
// mappings, the rest strangers and malformed frames.
Generated random_packet(Rng &rng, NatModel &m, Hook hook, const RuleSet &rules)
{
    static const std::vector<const char *> wan_src = {"203.0.113.50", "203.0.113.99", "198.51.100.2",
                                                      "198.51.100.7", "192.0.2.200", "10.0.0.5"};
    static const std::vector<const char *> wan_dst = {"203.0.113.1", "198.51.100.1", "203.0.113.50", "10.0.0.12",
                                                      "10.0.0.1"};
    static const std::vector<const char *> lan_src = {"10.0.0.5", "10.0.0.12", "10.0.0.7", "10.0.9.5"};
    static const std::vector<const char *> lan_dst = {"203.0.113.50", "203.0.113.99", "198.51.100.2",
                                                      "198.51.100.7", "192.0.2.200",  "203.0.113.1",
                                                      "198.51.100.1", "10.0.0.1",     "10.0.0.12", "10.0.0.5"};
    static const std::vector<uint16_t> ports = {22,   53,   80,    443,   1500,  2000,  2001,  2222,  5353,  6000,
                                                6001, 6003, 8080,  8081,  8443,  20000, 20001, 22012, 30000, 30001,
                                                40000};
    static const std::vector<uint8_t> tcp_flags = {kSyn,         kSyn | kAck, kAck,         kAck | kPsh, kFin | kAck,
                                                   kRst,         kRst | kAck, kSyn | kFin,  0,           kFin,
                                                   kSyn | kRst};
    Generated g;
    PacketSpec s;
    const xnat_ct_entry *half = nullptr;
    uint8_t scripted = 0;
    unsigned kind = static_cast<unsigned>(rng.below(100));
    if (kind < 45 && !m.ct().empty()) {
        // A packet of a tracked flow, in either direction.
        auto it = m.ct().begin();
        std::advance(it, static_cast<long>(rng.below(m.ct().size())));
        // Most picks go to a TCP flow still opening or closing, so that handshakes complete and
        // established flows close (in a random pick UDP, ICMP and ended flows crowd them out).
        if (rng.chance(60)) {
            std::vector<model::CtTable::const_iterator> live;
            for (auto c = m.ct().begin(); c != m.ct().end(); ++c)
                if (c->first.proto == kTcp && c->second.dir == XNAT_DIR_ORIGINAL &&
                    c->second.state >= XNAT_TCP_SYN_SENT && c->second.state <= XNAT_TCP_CLOSE_WAIT)
                    live.push_back(c);
            if (!live.empty())
                it = rng.pick(live);
        }
        xnat_ct_key k = it->first;
        half = &it->second;
        // Mostly, a TCP flow takes its next regular step: handshake, data, close, reopen.
        auto orig = half->dir == XNAT_DIR_ORIGINAL ? it : m.ct().find(half->peer);
        if (k.proto == kTcp && orig != m.ct().end() && rng.chance(85)) {
            bool from_orig = rng.chance(50);
            switch (orig->second.state) {
            case XNAT_TCP_SYN_SENT:
                from_orig = false;
                scripted = kSyn | kAck;
                break;
            case XNAT_TCP_SYN_RECV: // the client's ACK, or the server repeating itself
                from_orig = rng.chance(75);
                scripted = from_orig ? kAck : rng.chance(50) ? kAck : kSyn | kAck;
                break;
            case XNAT_TCP_ESTABLISHED:
                scripted = rng.chance(80) ? kAck | kPsh : rng.chance(80) ? kFin | kAck : kRst;
                break;
            case XNAT_TCP_FIN_WAIT:
                from_orig = false;
                scripted = kFin | kAck;
                break;
            case XNAT_TCP_CLOSE_WAIT:
                from_orig = true;
                scripted = kFin | kAck;
                break;
            default: // TIME_WAIT, CLOSE: the client comes back
                from_orig = true;
                scripted = kSyn;
                break;
            }
            k = from_orig ? orig->first : orig->second.peer;
            auto h = m.ct().find(k);
            if (h != m.ct().end())
                half = &h->second;
        }
        s.proto = k.proto;
        s.saddr = ntohl(k.saddr);
        s.daddr = ntohl(k.daddr);
        s.sport = ntohs(k.sport);
        s.dport = ntohs(k.dport);
        bool from_lan = parse_prefix("10.0.0.0/16")->contains(s.saddr);
        g.side = from_lan != rng.chance(8) ? Side::lan : Side::wan;
        g.what = "flow ";
    } else if (kind < 53 && !m.ct().empty()) {
        // An ICMP error about a packet of a tracked flow, quoting it as it left translated.
        auto it = m.ct().begin();
        std::advance(it, static_cast<long>(rng.below(m.ct().size())));
        const xnat_ct_key &pk = it->second.peer; // the translation is the peer's key reversed
        PacketSpec q;
        q.proto = pk.proto;
        q.saddr = ntohl(pk.daddr);
        q.daddr = ntohl(pk.saddr);
        q.sport = ntohs(pk.dport);
        q.dport = ntohs(pk.sport);
        q.tcp_flags = kAck;
        q.seq = static_cast<uint32_t>(rng.g());
        q.ttl = 1;
        if (q.proto == kIcmp) {
            q.icmp_type = q.sport ? kEcho : kEchoReply;
            q.icmp_id = q.sport | q.dport;
        }
        if (q.proto == kUdp && rng.chance(20))
            q.udp_no_checksum = true;
        if (rng.chance(15))
            q.sport = static_cast<uint16_t>(q.sport + 1); // about no flow
        if (rng.chance(8))
            q.frag = 0x2010; // a later fragment
        Bytes quoted = build(q);
        size_t quote_len = rng.chance(50) ? 28 : rng.chance(90) ? 0 : 20 + rng.below(8);
        s.proto = kIcmp;
        static const std::vector<uint8_t> types = {kUnreach, kUnreach, kTimeExceeded, 12};
        s.icmp_type = rng.pick(types);
        s.icmp_code = static_cast<uint8_t>(rng.below(5));
        s.icmp_id = 0;
        s.icmp_seq = static_cast<uint16_t>(rng.chance(30) ? 1400 : 0);
        s.payload = ip_packet(quoted, quote_len);
        bool lan = parse_prefix("10.0.0.0/16")->contains(q.daddr);
        s.saddr = rng.chance(50) ? q.daddr : ip(lan ? "10.0.0.12" : "198.51.100.254");
        s.daddr = q.saddr;
        s.sport = s.dport = 0;
        g.side = lan != rng.chance(5) ? Side::lan : Side::wan;
        g.what = "icmp error type " + std::to_string(s.icmp_type) + " quoting " + format_ipv4(q.saddr) + ":" +
                 std::to_string(q.sport) + " -> " + format_ipv4(q.daddr) + ":" + std::to_string(q.dport) + " (" +
                 std::to_string(q.proto) + ", " + std::to_string(s.payload.size()) + " bytes) ";
    } else if (kind < 60 && !m.snat().empty()) {
        // A stranger writing to a source-NAT mapping (endpoint-independent filtering).
        auto it = m.snat().begin();
        std::advance(it, static_cast<long>(rng.below(m.snat().size())));
        s.proto = it->first.proto;
        s.saddr = ip(rng.pick(wan_src));
        s.daddr = ntohl(it->first.addr);
        s.sport = rng.pick(ports);
        s.dport = ntohs(it->first.port);
        g.side = Side::wan;
        g.what = "mapping ";
    } else {
        g.side = rng.chance(50) ? Side::wan : Side::lan;
        s.proto = rng.chance(50) ? kTcp : rng.chance(70) ? kUdp : kIcmp;
        s.saddr = ip(rng.pick(g.side == Side::wan ? wan_src : lan_src));
        s.daddr = ip(rng.pick(g.side == Side::wan ? wan_dst : lan_dst));
        s.sport = rng.chance(30) ? static_cast<uint16_t>(40000 + rng.below(2)) : rng.pick(ports);
        s.dport = rng.pick(ports);
        if (!rules.fwds.empty() && rng.chance(50)) {
            // Aimed at a forward: from its own side, or (hairpin) from the LAN at a WAN one.
            const PortForward &f = rng.pick(rules.fwds);
            g.side = rng.chance(75) ? f.side : Side::lan;
            s.proto = static_cast<uint8_t>(f.proto);
            s.saddr = ip(rng.pick(g.side == Side::wan ? wan_src : lan_src));
            s.daddr = f.from.addr;
            s.dport = static_cast<uint16_t>(f.from.port_lo + rng.below(f.from.ports()));
        }
        g.what = "fresh ";
    }
    if (s.proto == kIcmp && !g.what.starts_with("icmp error")) {
        // An echo tuple is (id, 0) for a request and (0, id) for a reply.
        if (g.what == "fresh ")
            s.icmp_type = rng.chance(80) ? kEcho : rng.chance(50) ? kEchoReply : uint8_t{13};
        else
            s.icmp_type = s.sport ? kEcho : kEchoReply;
        s.icmp_id = s.sport | s.dport;
        if (s.icmp_type == kEcho && g.what == "fresh ")
            s.icmp_id = s.sport;
    }
    if (s.proto == kTcp) {
        static const std::vector<uint8_t> flow_flags = {kAck, kAck, kAck | kPsh, kSyn | kAck, kSyn | kAck, kFin | kAck,
                                                        kFin | kAck, kSyn, kRst, kRst | kAck};
        // Fresh TCP is a SYN often enough to open flows for the handshake steps above.
        s.tcp_flags = scripted                  ? scripted
                      : !half && rng.chance(30) ? kSyn
                                                : rng.pick(half && rng.chance(80) ? flow_flags : tcp_flags);
        if (half && half->seq_known && rng.chance(70)) {
            static const std::vector<int64_t> deltas = {0, 0, 1, -1, 100, -100, 65536, 65537, -65537, 1 << 20};
            s.seq = static_cast<uint32_t>(half->next_seq + static_cast<uint64_t>(rng.pick(deltas)));
        } else {
            s.seq = static_cast<uint32_t>(rng.g());
        }
    }
    if (!g.what.starts_with("icmp error")) {
        s.payload.resize(rng.below(4) == 0 ? rng.below(40) : 0);
        for (auto &b : s.payload)
            b = static_cast<uint8_t>(rng.g());
    }
    if (rng.chance(4))
        s.ttl = static_cast<uint8_t>(rng.below(3));
    if (rng.chance(4))
        s.ip_options = {0x01, 0x01, 0x01, 0x00};
    if (s.proto == kUdp && rng.chance(10))
        s.udp_no_checksum = true;
    s.frag = rng.chance(50) ? 0x4000 : 0;
    g.frame = build(s);
    g.what += std::to_string(s.proto) + " " + format_ipv4(s.saddr) + ":" + std::to_string(s.sport) + " -> " +
              format_ipv4(s.daddr) + ":" + std::to_string(s.dport) + (g.side == Side::wan ? " on wan" : " on lan");
    if (s.proto == kTcp)
        g.what += " flags 0x" + std::to_string(s.tcp_flags) + " seq " + std::to_string(s.seq);

    Bytes &f = g.frame;
    const size_t l3 = 14, l4 = 14 + 20 + s.ip_options.size();
    if (rng.chance(scripted ? 4 : 12)) { // a scripted step mostly arrives intact, to move its flow on
        unsigned how = static_cast<unsigned>(rng.below(13));
        size_t min_len = hook == Hook::tc ? 34 : 14; // no skb from a shorter IPv4 frame
        switch (how) {
        case 0:
            f.resize(min_len + rng.below(f.size() - min_len));
            g.what += " [truncated]";
            break;
        case 1:
            f[l3] = static_cast<uint8_t>(0x40 | (rng.chance(50) ? rng.below(5) : 15));
            g.what += " [bad ihl]";
            break;
        case 2:
            f[l3] = static_cast<uint8_t>(0x60 | (f[l3] & 0x0f));
            g.what += " [version 6]";
            break;
        case 3:
            set16(f, l3 + 2, static_cast<uint16_t>(get16(f, l3 + 2) + 1 + rng.below(20)));
            g.what += " [tot_len too long]";
            break;
        case 4:
            set16(f, l3 + 2, static_cast<uint16_t>(rng.below(20)));
            g.what += " [tot_len below ihl]";
            break;
        case 5:
            set16(f, l3 + 6, static_cast<uint16_t>(rng.chance(50) ? 0x2000 : 0x0001 + rng.below(100)));
            g.what += " [fragment]";
            break;
        case 6:
            set16(f, 12, rng.chance(50) ? 0x86dd : 0x0806);
            g.what += " [not ipv4]";
            break;
        case 7:
            if (s.proto == kTcp)
                f[l4 + 12] = static_cast<uint8_t>((rng.chance(50) ? rng.below(5) : 6 + rng.below(10)) << 4);
            else if (s.proto == kUdp)
                set16(f, l4 + 4, static_cast<uint16_t>(rng.chance(50) ? rng.below(8) : get16(f, l4 + 4) + 1));
            g.what += " [bad l4 length]";
            break;
        case 8: // Ethernet padding: bytes past the IP packet
            f.resize(f.size() + 1 + rng.below(20), 0);
            g.what += " [padded]";
            break;
        case 9: { // a shorter IP packet inside the same frame: its L4 header cut by tot_len
            size_t cut = 1 + rng.below(8);
            set16(f, l3 + 2, static_cast<uint16_t>(get16(f, l3 + 2) - std::min<size_t>(cut, get16(f, l3 + 2))));
            g.what += " [tot_len cuts l4]";
            break;
        }
        case 10:
            f[l3 + 10] ^= static_cast<uint8_t>(1 + rng.below(255));
            g.what += " [bad ip checksum]";
            break;
        case 11: {
            size_t off = l4 + (s.proto == kTcp ? 16 : s.proto == kUdp ? 6 : 2);
            if (off + 1 < f.size())
                f[off + 1] ^= static_cast<uint8_t>(1 + rng.below(255));
            g.what += " [bad l4 checksum]";
            break;
        }
        default:
            f[l3 + 9] = rng.chance(50) ? 47 : 132; // GRE, SCTP
            g.what += " [other protocol]";
            break;
        }
    }
    return g;
}

struct Differ {
    uint64_t seed = 0;
    uint64_t step = 0;
    std::string what;
    bool failed = false;

    void fail(const std::string &msg)
    {
        if (!failed)
            std::printf("MISMATCH seed %" PRIu64 " step %" PRIu64 ": %s\n  step was: %s\n", seed, step, msg.c_str(),
                        what.c_str());
        else
            std::printf("  also: %s\n", msg.c_str());
        failed = true;
    }
};

bool csum_equiv(uint16_t a, uint16_t b)
{
    return a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0);
}

void compare_frames(Differ &d, const Bytes &got, const model::Outcome &want)
{
    if (got.size() != want.frame.size()) {
        d.fail("output length " + std::to_string(got.size()) + ", model " + std::to_string(want.frame.size()));
        return;
    }
    Bytes a = got, e = want.frame;
    std::string csum_msg;
    for (const auto &c : want.csums) {
        uint16_t g = get16(a, c.off), w = get16(e, c.off);
        bool ok = c.udp && w == 0 ? g == 0 : (csum_equiv(g, w) && !(c.udp && g == 0));
        if (!ok)
            csum_msg += "checksum at " + std::to_string(c.off) + ": got " + std::to_string(g) + " model " +
                        std::to_string(w) + "; ";
        a[c.off] = a[c.off + 1] = e[c.off] = e[c.off + 1] = 0;
    }
    if (a != e)
        d.fail("output bytes differ\n  got:\n" + hex(got) + "\n  model:\n" + hex(want.frame));
    else if (!csum_msg.empty())
        d.fail(csum_msg + "\n  got:\n" + hex(got) + "\n  model:\n" + hex(want.frame));
}

void compare_counters(Differ &d, const CounterValues &before, const CounterValues &after,
                      const std::map<int, uint64_t> &want)
{
    for (int i = 0; i < XNAT_CNT_COUNT; ++i) {
        uint64_t got = after[static_cast<size_t>(i)] - before[static_cast<size_t>(i)];
        auto it = want.find(i);
        uint64_t w = it == want.end() ? 0 : it->second;
        if (got != w)
            d.fail(std::string("counter ") + counter_name(i) + ": datapath +" + std::to_string(got) + ", model +" +
                   std::to_string(w));
    }
}

// What the mapping-hint LRU may have evicted. The run stays on one CPU. Every update (new key or
// not) takes a node from this CPU's free list; when that is empty the kernel refills it with up
// to `refill` free nodes and evicts inactive entries to make up any shortfall. So a hint can be
// lost only in a step that wrote one, with fewer than `refill` nodes free. Since Linux 6.16 the
// refill is clamp(capacity / possible CPUs / 2, 1, 128); before, 128, which is more than the
// fuzzer's maps hold, so there only the first rule is checked.
struct HintWatch {
    size_t capacity = 0;
    size_t refill = 128;
    size_t size_before = 0;     // hints at the start of the step
    uint64_t writes_before = 0; // the model's hint writes at the start of the step
};

size_t lru_refill(size_t capacity)
{
    utsname u{};
    unsigned major = 0, minor = 0;
    int cpus = libbpf_num_possible_cpus();
    if (::uname(&u) != 0 || std::sscanf(u.release, "%u.%u", &major, &minor) != 2 || cpus <= 0 ||
        major * 1000 + minor < 6016)
        return 128;
    return std::clamp<size_t>(capacity / static_cast<size_t>(cpus) / 2, 1, 128);
}

void compare_tables(Differ &d, BpfFixture &fx, NatModel &m, const std::vector<Connection> &conns, HintWatch &hw)
{
    size_t entries = fx.ct_entries();
    if (entries != m.ct().size())
        d.fail("ct entries: datapath " + std::to_string(entries) + ", model " + std::to_string(m.ct().size()));
    size_t model_origs = 0;
    for (const auto &[k, e] : m.ct())
        model_origs += e.dir == XNAT_DIR_ORIGINAL;
    if (conns.size() != model_origs)
        d.fail("flows: datapath " + std::to_string(conns.size()) + ", model " + std::to_string(model_origs));
    for (const Connection &c : conns) {
        auto it = m.ct().find(c.original_key);
        if (it == m.ct().end()) {
            d.fail("datapath flow not in model: " + key_str(c.original_key) + " " + entry_str(c.original));
            continue;
        }
        if (std::memcmp(&it->second, &c.original, sizeof(c.original)) != 0)
            d.fail("original half of " + key_str(c.original_key) + "\n    datapath " + entry_str(c.original) +
                   "\n    model    " + entry_str(it->second));
        auto r = m.ct().find(c.original.peer);
        if (c.reply_missing != (r == m.ct().end()))
            d.fail("reply half presence differs for " + key_str(c.original_key));
        else if (!c.reply_missing && std::memcmp(&r->second, &c.reply, sizeof(c.reply)) != 0)
            d.fail("reply half of " + key_str(c.original_key) + "\n    datapath " + entry_str(c.reply) +
                   "\n    model    " + entry_str(r->second));
    }

    MapSet maps = fx.maps();
    size_t n_snat = 0;
    auto walked = map_for_each_key<xnat_snat_key>(maps.snat, "snat", [&](const xnat_snat_key &k) {
        ++n_snat;
        auto v = map_lookup<xnat_snat_key, xnat_snat_mapping>(maps.snat, k, "snat");
        std::string name = std::to_string(k.proto) + " " + addr(k.addr) + ":" + std::to_string(ntohs(k.port));
        auto it = m.snat().find(k);
        if (!v || !*v)
            return;
        if (it == m.snat().end()) {
            d.fail("datapath mapping not in model: " + name + " refs " + std::to_string((*v)->refs));
            return;
        }
        const xnat_snat_mapping &g = **v;
        const model::Mapping &w = it->second;
        if (g.int_addr != w.int_addr || g.int_port != w.int_port || g.flags != w.flags || g.refs != w.refs)
            d.fail("mapping " + name + ": datapath " + addr(g.int_addr) + ":" + std::to_string(ntohs(g.int_port)) +
                   " flags " + std::to_string(g.flags) + " refs " + std::to_string(g.refs) + ", model " +
                   addr(w.int_addr) + ":" + std::to_string(ntohs(w.int_port)) + " flags " +
                   std::to_string(w.flags) + " refs " + std::to_string(w.refs));
    });
    if (!walked)
        throw std::runtime_error(walked.error().message);
    if (n_snat != m.snat().size())
        d.fail("mappings: datapath " + std::to_string(n_snat) + ", model " + std::to_string(m.snat().size()));

    // Hints live in an LRU: the datapath may have evicted some (see HintWatch), but every one it
    // has must be the model's.
    model::EimTable seen;
    walked = map_for_each_key<xnat_eim_key>(maps.eim, "eim", [&](const xnat_eim_key &k) {
        auto v = map_lookup<xnat_eim_key, uint16_t>(maps.eim, k, "eim");
        if (!v || !*v)
            return;
        seen[k] = ntohs(**v);
        auto it = m.eim().find(k);
        if (it == m.eim().end() || it->second != ntohs(**v))
            d.fail("mapping hint " + addr(k.int_addr) + ":" + std::to_string(ntohs(k.int_port)) + " via " +
                   addr(k.ext_addr) + ": datapath port " + std::to_string(ntohs(**v)) + ", model " +
                   (it == m.eim().end() ? std::string("none") : std::to_string(it->second)));
    });
    if (!walked)
        throw std::runtime_error(walked.error().message);
    uint64_t writes = m.hint_writes() - hw.writes_before;
    bool may_evict = writes && hw.size_before + writes + hw.refill > hw.capacity;
    for (const auto &[k, port] : m.eim())
        if (!seen.count(k) && !may_evict)
            d.fail("mapping hint " + addr(k.int_addr) + ":" + std::to_string(ntohs(k.int_port)) + " via " +
                   addr(k.ext_addr) + " -> " + std::to_string(port) + " lost, " +
                   (writes ? "though the hint map (" + std::to_string(hw.size_before) + " of " +
                                 std::to_string(hw.capacity) + ", refill " + std::to_string(hw.refill) +
                                 ") was far from full"
                           : std::string("in a step that wrote no hint")));
    std::erase_if(m.eim(), [&](const auto &kv) { return !seen.count(kv.first); });

    // Per-host quota counts, entry for entry: no sweeper runs, so none is reclaimed.
    size_t n_hosts = 0;
    walked = map_for_each_key<uint32_t>(maps.hosts, "hosts", [&](const uint32_t &a) {
        ++n_hosts;
        auto v = map_lookup<uint32_t, xnat_host>(maps.hosts, a, "hosts");
        if (!v || !*v)
            return;
        model::HostUse got{xnat_host_flows((*v)->use), xnat_host_ports((*v)->use)};
        auto it = m.hosts().find(a);
        if (it == m.hosts().end() || !(it->second == got) || ((*v)->use & XNAT_HOST_DEAD))
            d.fail("host " + addr(a) + ": datapath " + std::to_string(got.flows) + " flows " +
                   std::to_string(got.ports) + " ports, model " +
                   (it == m.hosts().end() ? std::string("none")
                                          : std::to_string(it->second.flows) + " flows " +
                                                std::to_string(it->second.ports) + " ports"));
    });
    if (!walked)
        throw std::runtime_error(walked.error().message);
    if (n_hosts != m.hosts().size())
        d.fail("hosts: datapath " + std::to_string(n_hosts) + ", model " + std::to_string(m.hosts().size()));
}

int hook_verdict(Hook h, Action a)
{
    switch (a) {
    case Action::drop:
        return drop_verdict(h);
    case Action::redirect:
        return redirect_verdict(h);
    case Action::reflect:
        return reflect_verdict(h);
    default:
        return pass_verdict(h);
    }
}

CounterValues counters(BpfFixture &fx)
{
    auto c = read_counters(fx.maps());
    if (!c)
        throw std::runtime_error(c.error().message);
    return *c;
}

uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// FNV-1a, to put a step's output frame into its trace line.
uint64_t fnv(const Bytes &b)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint8_t c : b)
        h = (h ^ c) * 0x100000001b3ull;
    return h;
}

struct SeedStats {
    uint64_t steps = 0, packets = 0, skipped = 0, flows_max = 0;
    std::map<int, uint64_t> outcomes; // what the steps exercised, by counter
    std::map<std::string, uint64_t> coverage;
};

// One seed: a fresh BPF object and model, `steps` steps. False on the first mismatch.
// With trace, one line per step that says what it did and what came out, for comparing runs.
bool run_seed(uint64_t seed, uint64_t steps, bool verbose, SeedStats &stats, std::vector<std::string> *trace = nullptr)
{
    const TestNet &net = TestNet::get();
    Rng rng(seed);
    Hook hook = seed % 2 ? Hook::tc : Hook::xdp;
    static const std::vector<uint32_t> capacities = {8, 16, 64};
    uint32_t max_conn = rng.pick(capacities);
    Timeouts t;
    t.tcp_established = rng.chance(50) ? 60 : 7440;
    t.tcp_transitory = rng.chance(50) ? 20 : 240;
    t.tcp_close = rng.chance(50) ? 5 : 10;
    t.udp = rng.chance(50) ? 30 : 300;
    t.icmp = rng.chance(50) ? 10 : 60;
    t.tcp_syn_sent = rng.chance(50) ? 9 : 120;
    t.tcp_syn_recv = rng.chance(50) ? 5 : 60;
    t.udp_unreplied = rng.chance(50) ? 4 : 30;
    // Quotas and refusals: often off, often tight enough to bite in a table of 8 to 64.
    const uint32_t host_flows = rng.chance(50) ? 0 : 1 + static_cast<uint32_t>(rng.below(6));
    const uint32_t host_ports = rng.chance(50) ? 0 : 1 + static_cast<uint32_t>(rng.below(4));
    const uint8_t refusal = static_cast<uint8_t>(rng.below(4));
    const uint32_t refusal_rate = 1 + static_cast<uint32_t>(rng.below(3));
    const uint32_t lan_addr = rng.chance(50) ? htonl(0x0a0000fe) : 0; // 10.0.0.254

    BpfFixture fx(max_conn);
    fx.set_interfaces(net.wan0, net.lan0, mode_of(hook), mode_of(hook));
    fx.set_timeouts(t);
    fx.configure([&](xnat_config &c) {
        c.host_max_flows = host_flows;
        c.host_max_ports = host_ports;
        c.refusal_icmp = refusal;
        c.refusal_icmp_rate = refusal_rate;
        c.lan_addr = lan_addr;
    });
    fx.set_rand_state(splitmix64(seed) | 1); // never 0, which means bpf_get_prandom_u32
    // The sweeper ends flows on its own schedule; with the first walk (2 s after loading)
    // done and the next one weeks away, flows end only where the model ends them.
    fx.set_sweep_interval_ms(UINT32_MAX);
    for (int i = 0; i < 100 && fx.sweep_stats().sweeps == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (fx.sweep_stats().sweeps == 0)
        throw std::runtime_error("the sweeper never ran");

    model::Env env;
    env.xdp = hook == Hook::xdp;
    env.wan_ifindex = net.wan0;
    env.lan_ifindex = net.lan0;
    env.wan_mac = mac_of("wan0");
    env.lan_mac = mac_of("lan0");
    env.max_connections = max_conn;
    env.timeouts = to_kernel(t);
    env.local_port_lo = kLocalPortLo;
    env.local_port_hi = kLocalPortHi;
    env.host_max_flows = host_flows;
    env.host_max_ports = host_ports;
    env.refusal_icmp = refusal;
    env.refusal_icmp_rate = refusal_rate;
    env.lan_addr = lan_addr;
    env.route = [&net](uint32_t a) { return route_of(net, a); };
    NatModel m(env);

    RuleSet rules = random_rules(rng);
    fx.install(rules.fwds, rules.masqs);
    m.set_rules(rules.fwds, rules.masqs);
    std::printf("seed %" PRIu64 ": %s, %u connections, timeouts est %u trans %u close %u udp %u icmp %u syn_sent %u "
                "syn_recv %u udp_unreplied %u\n  host quota %u flows %u ports, ICMP refusals sides %u rate %u\n"
                "  rules: %s\n",
                seed, hook_name(hook), max_conn, t.tcp_established, t.tcp_transitory, t.tcp_close, t.udp, t.icmp,
                t.tcp_syn_sent, t.tcp_syn_recv, t.udp_unreplied, host_flows, host_ports, refusal, refusal_rate,
                rules.text.c_str());

    // The model's clock, pinned in the middle of a tick so the datapath reads the same tick
    // however long a step takes.
    uint32_t tick = static_cast<uint32_t>(coarse_now_ns() >> XNAT_TICK_SHIFT) + 1000;
    auto pin_clock = [&] { fx.set_clock_offset_ns(uint64_t{tick} * kTickNs + kTickNs / 2 - coarse_now_ns()); };
    m.set_now(tick);

    Differ d;
    d.seed = seed;
    HintWatch hw;
    hw.capacity = max_conn + XNAT_SNAT_HEADROOM;
    hw.refill = lru_refill(hw.capacity);
    CounterValues before = counters(fx);
    // Each timeout's tick count and its neighbours: 4, 5, 9, 10, 20, 30, 60, 120, 240, 300 s.
    static const std::vector<uint32_t> clock_steps = {1,  1,  2,   3,   4,   5,   6,   8,   9,   10,  11,  18,
                                                      19, 20, 27,  28,  29,  55,  56,  57,  111, 112, 113, 223,
                                                      224, 225, 279, 280, 281, 6931};
    for (d.step = 1; d.step <= steps; ++d.step) {
        unsigned what = static_cast<unsigned>(rng.below(1000));
        hw.size_before = m.eim().size();
        hw.writes_before = m.hint_writes();
        std::map<int, uint64_t> want_counts;
        if (what < 50) {
            uint32_t k = rng.pick(clock_steps);
            tick += k;
            m.set_now(tick);
            d.what = "clock +" + std::to_string(k) + " ticks";
        } else if (what < 55) {
            rules = random_rules(rng);
            fx.install(rules.fwds, rules.masqs);
            m.set_rules(rules.fwds, rules.masqs);
            d.what = "rules now: " + rules.text;
        } else if (what < 58) {
            pin_clock();
            size_t got = fx.flush();
            uint64_t want = m.flush(want_counts);
            d.what = "flush";
            if (got != want)
                d.fail("flush ended " + std::to_string(got) + " flows, model " + std::to_string(want));
        } else {
            Generated g = random_packet(rng, m, hook, rules);
            d.what = g.what;
            pin_clock();
            RunResult r;
            try {
                r = fx.run(hook, g.side, g.frame, g.side == Side::wan ? net.wan0 : net.lan0);
            } catch (const std::exception &) {
                ++stats.skipped; // a frame BPF_PROG_TEST_RUN refuses to build
                // XDP may have run and passed it up (counting a handoff) before the tc test
                // run refused it; a frame that short changes no state.
                before = counters(fx);
                if (trace)
                    trace->push_back(d.what + " -> skipped");
                continue;
            }
            ++stats.packets;
            std::vector<Connection> conns = fx.conns();
            // The flow's reply tuple names its external port; if the flow could not be made,
            // the mapping hint the new mapping left behind still does.
            auto oracle = [&](const xnat_ct_key &k, const xnat_eim_key &hk) -> std::optional<uint16_t> {
                for (const Connection &c : conns)
                    if (std::memcmp(&c.original_key, &k, sizeof(k)) == 0)
                        return ntohs(c.original.peer.dport);
                auto h = map_lookup<xnat_eim_key, uint16_t>(fx.maps().eim, hk, "eim");
                if (!h || !*h)
                    return std::nullopt;
                return ntohs(**h); // possibly an older hint: the model judges
            };
            std::string error;
            model::Outcome want = m.packet(g.side, g.frame, oracle, error);
            want_counts = want.counts;
            if (!error.empty())
                d.fail(error);
            if (r.verdict != hook_verdict(hook, want.action))
                d.fail("verdict " + std::to_string(r.verdict) + ", model " +
                       std::to_string(hook_verdict(hook, want.action)));
            compare_frames(d, r.out, want);
            if (verbose)
                std::printf("step %" PRIu64 ": %s -> verdict %d\n", d.step, g.what.c_str(), r.verdict);
            if (trace) {
                char h[64];
                std::snprintf(h, sizeof h, " -> verdict %d out %zu bytes %016" PRIx64, r.verdict, r.out.size(),
                              fnv(r.out));
                trace->push_back(d.what + h);
            }
        }
        if (trace && what < 58)
            trace->push_back(d.what); // clock, rules, flush
        for (const auto &[c, n] : want_counts)
            stats.outcomes[c] += n;
        CounterValues after = counters(fx);
        compare_counters(d, before, after, want_counts);
        before = after;
        compare_tables(d, fx, m, fx.conns(), hw);
        stats.flows_max = std::max<uint64_t>(stats.flows_max, m.ct().size() / 2);
        if (d.step == steps)
            for (const auto &[what_, n] : m.coverage)
                stats.coverage[what_] += n;
        ++stats.steps;
        if (d.failed) {
            std::printf("replay: xnat-difffuzz --seed %" PRIu64 " --steps %" PRIu64 "\n", seed, d.step);
            return false;
        }
    }
    return true;
}

} // namespace

int main(int argc, char **argv)
{
    CLI::App app{"Differential fuzzing of the xnat BPF datapath against its reference model."};
    uint64_t seed = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) % 1000000;
    uint64_t steps = 3000, seeds = 1;
    double seconds = 0;
    bool verbose = false, check_determinism = false;
    app.add_option("--seed", seed, "first seed (default: from the clock)");
    app.add_option("--steps", steps, "steps per seed")->check(CLI::Range(uint64_t{1}, uint64_t{100000000}));
    app.add_option("--seeds", seeds, "number of consecutive seeds to run")->check(CLI::Range(uint64_t{1}, uint64_t{1000000}));
    app.add_option("--seconds", seconds, "keep running further seeds until this much time has passed")
        ->check(CLI::Range(0.0, 86400.0));
    app.add_flag("-v,--verbose", verbose, "print every packet step");
    app.add_flag("--check-determinism", check_determinism,
                 "run every seed twice and fail unless both runs take the same steps with the same results");
    CLI11_PARSE(app, argc, argv);

    if (::geteuid() != 0) {
        std::fprintf(stderr, "xnat-difffuzz: needs root (BPF_PROG_TEST_RUN)\n");
        return 2;
    }
    if (::unshare(CLONE_NEWNET) != 0) {
        std::perror("xnat-difffuzz: unshare(CLONE_NEWNET)");
        return 2;
    }
    // BPF_PROG_TEST_RUN runs on the caller's CPU, and an LRU map's free lists are per CPU: a
    // migrating run would evict mapping hints differently from its replay.
    if (int cpu = ::sched_getcpu(); cpu >= 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        if (::sched_setaffinity(0, sizeof one, &one) != 0) {
            std::perror("xnat-difffuzz: sched_setaffinity");
            return 2;
        }
    }
    std::printf("xnat-difffuzz: seed %" PRIu64 ", %" PRIu64 " steps per seed\n", seed, steps);
    std::fflush(stdout);
    auto start = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    SeedStats total;
    uint64_t ran = 0;
    try {
        for (uint64_t s = seed;; ++s) {
            SeedStats st;
            bool ok;
            if (check_determinism) {
                std::vector<std::string> first, second;
                SeedStats again;
                ok = run_seed(s, steps, verbose, st, &first) && run_seed(s, steps, false, again, &second);
                if (ok) {
                    size_t i = 0;
                    while (i < first.size() && i < second.size() && first[i] == second[i])
                        ++i;
                    if (i < first.size() || i < second.size()) {
                        std::printf("NONDETERMINISTIC seed %" PRIu64 ": runs differ at step %zu\n  first:  %s\n"
                                    "  second: %s\n",
                                    s, i + 1, i < first.size() ? first[i].c_str() : "(ended)",
                                    i < second.size() ? second[i].c_str() : "(ended)");
                        ok = false;
                    } else {
                        std::printf("deterministic: seed %" PRIu64 ", %zu steps alike in two runs\n", s,
                                    first.size());
                    }
                }
            } else {
                ok = run_seed(s, steps, verbose, st);
            }
            total.steps += st.steps;
            total.packets += st.packets;
            total.skipped += st.skipped;
            total.flows_max = std::max(total.flows_max, st.flows_max);
            for (const auto &[c, n] : st.outcomes)
                total.outcomes[c] += n;
            for (const auto &[c, n] : st.coverage)
                total.coverage[c] += n;
            ++ran;
            std::fflush(stdout);
            if (!ok)
                return 1;
            if (ran >= seeds && elapsed() >= seconds)
                break;
        }
    } catch (const std::exception &e) {
        std::fprintf(stderr, "xnat-difffuzz: %s\n", e.what());
        return 2;
    }
    double secs = elapsed();
    std::printf("ok: %" PRIu64 " seeds (%" PRIu64 "..%" PRIu64 "), %" PRIu64 " steps (%" PRIu64
                " packets, %" PRIu64 " skipped), up to %" PRIu64 " flows, %.1f s, %.0f steps/s\n",
                ran, seed, seed + ran - 1, total.steps, total.packets, total.skipped, total.flows_max, secs,
                static_cast<double>(total.steps) / secs);
    std::printf("exercised:");
    for (const auto &[c, n] : total.outcomes)
        std::printf(" %s %" PRIu64, counter_name(c), n);
    std::printf("\n");
    for (const auto &[c, n] : total.coverage)
        std::printf("  %s: %" PRIu64 "\n", c.c_str(), n);
    return 0;
}
