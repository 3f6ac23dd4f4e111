// The fast path after translation: route lookup, TTL, MAC rewrite and redirect, and the cases
// it hands to the kernel instead. Runs against veth interfaces with permanent neighbours in
// the test's own network namespace.
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstring>

#include "bpf_harness.h"
#include "expect.h"
#include "xnat/abi.h"
#include "xnat/counters.h"

using namespace xnat;
using namespace xnat::test;

namespace {

PacketSpec syn(const char *dst, uint16_t dport)
{
    PacketSpec s;
    s.saddr = ip("198.51.100.2");
    s.daddr = ip(dst);
    s.sport = 40000;
    s.dport = dport;
    return s;
}

} // namespace

TEST_CASE("forwarding: translated packets are routed, TTL-decremented and redirected")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    const TestNet &net = TestNet::get();
    BpfFixture fx;
    fx.set_interfaces(net.wan0, net.lan0, mode_of(hook), mode_of(hook));
    fx.install({fwd("tcp", "203.0.113.1:22012", "10.0.0.12:22")});

    PacketSpec in = syn("203.0.113.1", 22012);
    PacketSpec want = in;
    want.daddr = ip("10.0.0.12");
    want.dport = 22;
    want.ttl = 63;
    want.eth_dst = kServerMac;
    want.eth_src = mac_of("lan0");
    RunResult r = fx.run(hook, Side::wan, build(in), net.wan0);
    CHECK(r.verdict == redirect_verdict(hook));
    check_frame(r.out, build(want));
    CHECK(fx.counter(XNAT_CNT_REDIRECTED) == 1);

    // The reply goes back out of the WAN interface to the client's MAC, from the public address.
    PacketSpec reply;
    reply.saddr = ip("10.0.0.12");
    reply.daddr = ip("198.51.100.2");
    reply.sport = 22;
    reply.dport = 40000;
    reply.tcp_flags = kSyn | kAck;
    PacketSpec reply_want = reply;
    reply_want.saddr = ip("203.0.113.1");
    reply_want.sport = 22012;
    reply_want.ttl = 63;
    reply_want.eth_dst = kClientMac;
    reply_want.eth_src = mac_of("wan0");
    RunResult back = fx.run(hook, Side::lan, build(reply), net.lan0);
    CHECK(back.verdict == redirect_verdict(hook));
    check_frame(back.out, build(reply_want));
    CHECK(fx.counter(XNAT_CNT_REDIRECTED) == 2);
}

TEST_CASE("forwarding: without a resolved neighbour tc resolves it, and XDP hands over to tc")
{
    const TestNet &net = TestNet::get();
    PacketSpec in = syn("203.0.113.1", 22012);
    Bytes frame = build(in);

    SECTION("tc translates and redirects through the kernel's neighbour resolution")
    {
        BpfFixture fx;
        fx.set_interfaces(net.wan0, net.lan0, XNAT_MODE_TC, XNAT_MODE_TC);
        fx.install({fwd("tcp", "203.0.113.1:22012", "10.0.0.99:22")});
        PacketSpec want = in;
        want.daddr = ip("10.0.0.99");
        want.dport = 22;
        want.ttl = 63; // MACs are left to bpf_redirect_neigh
        RunResult r = fx.run(Hook::tc, Side::wan, frame, net.wan0);
        CHECK(r.verdict == kTcRedirect);
        check_frame(r.out, build(want));
        CHECK(fx.counter(XNAT_CNT_REDIRECTED_NEIGH) == 1);
    }
    SECTION("XDP passes it up untouched and tc finishes it")
    {
        BpfFixture fx;
        fx.set_interfaces(net.wan0, net.lan0, XNAT_MODE_XDP, XNAT_MODE_XDP);
        fx.install({fwd("tcp", "203.0.113.1:22012", "10.0.0.99:22")});
        RunResult r = fx.run_one(Hook::xdp, Side::wan, frame, net.wan0);
        CHECK(r.verdict == kXdpPass);
        CHECK(hex(r.out) == hex(frame));
        CHECK(fx.counter(XNAT_CNT_XDP_HANDOFF) == 1);
        CHECK(fx.counter(XNAT_CNT_PASS_NO_NEIGH) == 0);
        // The flow exists, but the packet is accounted by tc when it finishes it.
        REQUIRE(fx.conns().size() == 1);
        CHECK(fx.conns()[0].original.packets == 0);
        // tc ingress sees every packet the kernel receives: it translates this one and has the
        // kernel resolve the next hop, exactly as in tc mode.
        PacketSpec want = in;
        want.daddr = ip("10.0.0.99");
        want.dport = 22;
        want.ttl = 63;
        RunResult t = fx.run_one(Hook::tc, Side::wan, frame, net.wan0);
        CHECK(t.verdict == kTcRedirect);
        check_frame(t.out, build(want));
        CHECK(fx.counter(XNAT_CNT_REDIRECTED_NEIGH) == 1);
        CHECK(fx.counter(XNAT_CNT_NEW_FLOW) == 1);
        CHECK(fx.conns()[0].original.packets == 1);
    }
}

TEST_CASE("forwarding: XDP hands a packet for a tc-mode interface over to tc")
{
    const TestNet &net = TestNet::get();
    BpfFixture fx;
    fx.set_interfaces(net.wan0, net.lan0, XNAT_MODE_XDP, XNAT_MODE_TC);
    fx.install({fwd("tcp", "203.0.113.1:22012", "10.0.0.12:22")});
    Bytes frame = build(syn("203.0.113.1", 22012));
    RunResult x = fx.run_one(Hook::xdp, Side::wan, frame, net.wan0);
    CHECK(x.verdict == kXdpPass);
    CHECK(hex(x.out) == hex(frame));
    CHECK(fx.counter(XNAT_CNT_XDP_HANDOFF) == 1);
    // As the kernel runs it: tc finishes the packet with the skb's redirect.
    RunResult r = fx.run(Hook::xdp, Side::wan, frame, net.wan0);
    CHECK(r.handed_to_tc);
    CHECK(r.verdict == kXdpRedirect);
    CHECK(fields(r.out).daddr == ip("10.0.0.12"));
    CHECK(fx.counter(XNAT_CNT_XDP_HANDOFF) == 2);
    CHECK(fx.counter(XNAT_CNT_REDIRECTED) == 1);
}

// GSO segment sizes against the egress MTU (bpf_check_mtu) cannot be shown here: a test-run skb
// has no transport header or GSO type, so the kernel cannot size its segments. The end-to-end
// path-MTU test (tests/e2e/test_pmtu.sh, TCP with offload on) covers it.

TEST_CASE("forwarding: a target routed elsewhere or nowhere is left to the kernel")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    const TestNet &net = TestNet::get();
    BpfFixture fx;
    fx.set_interfaces(net.wan0, net.lan0, mode_of(hook), mode_of(hook));
    fx.install({fwd("tcp", "203.0.113.1:22012", "192.0.2.50:22")});
    PacketSpec in = syn("203.0.113.1", 22012);
    PacketSpec want = in;
    want.daddr = ip("192.0.2.50");
    want.dport = 22;
    RunResult r = fx.run(hook, Side::wan, build(in), net.wan0);
    CHECK(r.verdict == pass_verdict(hook));
    check_frame(r.out, build(want));
    CHECK(fx.counter(XNAT_CNT_PASS_FIB) == 1);
}
