// Malformed and unsupported packets: each is counted under its reason and passed untouched,
// and none creates state, even when it is aimed at a forwarded port.
#include <catch2/catch.hpp>

#include <functional>
#include <vector>

#include "bpf_harness.h"
#include "expect.h"
#include "scenario.h"
#include "xnat/counters.h"

using namespace xnat;
using namespace xnat::test;

namespace {

constexpr size_t kL3 = 14, kL4 = 34;

PacketSpec udp_to_forward()
{
    PacketSpec s = client_tcp();
    s.proto = kUdp;
    s.dport = 6001;
    s.payload = {1, 2, 3, 4};
    return s;
}

struct Case {
    const char *description;
    std::function<Bytes()> frame;
    int counter;
    // BPF_PROG_TEST_RUN builds no skb from an IPv4 frame shorter than a whole IP header
    // (EINVAL below 34 bytes), so the tc program can meet such a frame only on a real device.
    bool xdp_only = false;
};

Bytes mutated(PacketSpec spec, const std::function<void(Bytes &)> &change)
{
    Bytes f = build(spec);
    change(f);
    return f;
}

const std::vector<Case> &cases()
{
    static const std::vector<Case> list = {
        {"one byte after the Ethernet header", [] { return mutated(client_tcp(), [](Bytes &f) { f.resize(kL3 + 1); }); },
         XNAT_CNT_PASS_MALFORMED, true},
        {"IPv4 header cut short",
         [] { return mutated(client_tcp(), [](Bytes &f) { f.resize(kL3 + 12); }); },
         XNAT_CNT_PASS_MALFORMED, true},
        {"IHL below 5", [] { return mutated(client_tcp(), [](Bytes &f) { f[kL3] = 0x44; }); },
         XNAT_CNT_PASS_MALFORMED},
        {"IP version 6 under the IPv4 ethertype",
         [] { return mutated(client_tcp(), [](Bytes &f) { f[kL3] = 0x65; }); }, XNAT_CNT_PASS_MALFORMED},
        {"total length past the frame",
         [] { return mutated(client_tcp(), [](Bytes &f) { set16(f, kL3 + 2, 400); }); },
         XNAT_CNT_PASS_MALFORMED},
        {"total length shorter than the header",
         [] { return mutated(client_tcp(), [](Bytes &f) { set16(f, kL3 + 2, 12); }); },
         XNAT_CNT_PASS_MALFORMED},
        {"IHL pointing past the frame",
         [] { return mutated(client_tcp(), [](Bytes &f) { f[kL3] = 0x4f; }); }, XNAT_CNT_PASS_MALFORMED},
        {"TCP header cut short",
         [] {
             return mutated(client_tcp(), [](Bytes &f) {
                 f.resize(kL4 + 10);
                 set16(f, kL3 + 2, 30);
             });
         },
         XNAT_CNT_PASS_MALFORMED},
        {"TCP data offset below 5",
         [] { return mutated(client_tcp(), [](Bytes &f) { f[kL4 + 12] = 4 << 4; }); },
         XNAT_CNT_PASS_MALFORMED},
        {"TCP data offset past the segment",
         [] { return mutated(client_tcp(), [](Bytes &f) { f[kL4 + 12] = 15 << 4; }); },
         XNAT_CNT_PASS_MALFORMED},
        {"UDP length below its header",
         [] { return mutated(udp_to_forward(), [](Bytes &f) { set16(f, kL4 + 4, 7); }); },
         XNAT_CNT_PASS_MALFORMED},
        {"UDP length past the datagram",
         [] { return mutated(udp_to_forward(), [](Bytes &f) { set16(f, kL4 + 4, 200); }); },
         XNAT_CNT_PASS_MALFORMED},
        {"first fragment (MF set) too short for the UDP header",
         [] {
             PacketSpec s = udp_to_forward();
             s.frag = 0x2000;
             return mutated(s, [](Bytes &f) {
                 f.resize(kL4 + 4);
                 set16(f, kL3 + 2, 24);
             });
         },
         XNAT_CNT_PASS_MALFORMED},
        {"middle fragment (MF and offset)",
         [] {
             PacketSpec s = udp_to_forward();
             s.frag = 0x2000 | 185;
             return build(s);
         },
         XNAT_CNT_PASS_FRAGMENT},
        {"last fragment (offset only)",
         [] {
             PacketSpec s = udp_to_forward();
             s.frag = 370;
             return build(s);
         },
         XNAT_CNT_PASS_FRAGMENT},
        {"ARP",
         [] {
             PacketSpec s = client_tcp();
             s.ethertype = 0x0806;
             return build(s);
         },
         XNAT_CNT_PASS_NOT_IPV4},
        {"IPv6 ethertype",
         [] {
             PacketSpec s = client_tcp();
             s.ethertype = 0x86dd;
             return build(s);
         },
         XNAT_CNT_PASS_NOT_IPV4},
        {"802.1Q tagged",
         [] {
             PacketSpec s = client_tcp();
             s.ethertype = 0x8100;
             return build(s);
         },
         XNAT_CNT_PASS_NOT_IPV4},
        {"ICMP echo to the public address (the gateway answers it)",
         [] {
             PacketSpec s = client_tcp();
             s.proto = kIcmp;
             return build(s);
         },
         XNAT_CNT_PASS_NO_MATCH},
        {"ICMP timestamp request",
         [] {
             PacketSpec s = client_tcp();
             s.proto = kIcmp;
             return mutated(s, [](Bytes &f) { f[kL4] = 13; });
         },
         XNAT_CNT_PASS_L4_PROTO},
        {"GRE",
         [] {
             PacketSpec s = client_tcp();
             s.proto = 47;
             return build(s);
         },
         XNAT_CNT_PASS_L4_PROTO},
        {"ICMP header cut short",
         [] {
             PacketSpec s = client_tcp();
             s.proto = kIcmp;
             return mutated(s, [](Bytes &f) {
                 f.resize(kL4 + 4);
                 set16(f, kL3 + 2, 24);
             });
         },
         XNAT_CNT_PASS_MALFORMED},
        {"TCP ACK without state",
         [] {
             PacketSpec s = client_tcp();
             s.tcp_flags = kAck;
             return build(s);
         },
         XNAT_CNT_PASS_TCP_NOT_SYN},
        {"TCP RST without state",
         [] {
             PacketSpec s = client_tcp();
             s.tcp_flags = kRst;
             return build(s);
         },
         XNAT_CNT_PASS_TCP_NOT_SYN},
        {"TCP SYN+ACK without state",
         [] {
             PacketSpec s = client_tcp();
             s.tcp_flags = kSyn | kAck;
             return build(s);
         },
         XNAT_CNT_PASS_TCP_NOT_SYN},
        {"TCP SYN+FIN",
         [] {
             PacketSpec s = client_tcp();
             s.tcp_flags = kSyn | kFin;
             return build(s);
         },
         XNAT_CNT_PASS_TCP_NOT_SYN},
    };
    return list;
}

} // namespace

TEST_CASE("malformed: counted, passed untouched, no state")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    // One fixture for every case: none may leave state behind, and each must move exactly its
    // own counter, so a case that did either would show in the next one's checks too. (A fresh
    // object per case cost a verifier run each, minutes on an emulated kernel.)
    BpfFixture fx;
    fx.install({fwd("tcp", "203.0.113.1:22012", "10.0.0.12:22"),
                fwd("udp", "203.0.113.1:6000-6009", "10.0.0.20:6000")});
    auto counters = [&] {
        std::vector<uint64_t> v;
        for (int i = 0; i < XNAT_CNT_COUNT; ++i)
            v.push_back(fx.counter(i));
        return v;
    };
    for (const Case &c : cases()) {
        if (c.xdp_only && hook == Hook::tc)
            continue;
        INFO(hook_name(hook) << ": " << c.description);
        Bytes frame = c.frame();
        std::vector<uint64_t> before = counters();
        // A test-run skb cannot be as short as some cases, so there tc's half of the kernel's
        // path cannot run: XDP passes the frame up untouched and leaves the count to tc.
        RunResult r = c.xdp_only ? fx.run_one(hook, Side::wan, frame) : fx.run(hook, Side::wan, frame);
        check_untouched(r, frame, hook);
        std::vector<uint64_t> after = counters();
        for (int i = 0; i < XNAT_CNT_COUNT; ++i) {
            uint64_t want = 0;
            if (i == XNAT_CNT_XDP_HANDOFF)
                want = hook == Hook::xdp ? 1 : 0;
            else if (i == c.counter)
                want = c.xdp_only ? 0 : 1;
            INFO("counter " << i);
            CHECK(after[size_t(i)] - before[size_t(i)] == want);
        }
        CHECK(fx.ct_entries() == 0);
    }
}
