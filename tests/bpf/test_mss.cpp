// MSS clamping: the MSS option of a SYN or SYN-ACK crossing xnat is lowered to the configured
// number, or for "pmtu" to the interfaces' MTU minus 40, with the TCP checksum verified by the
// independent oracle (including an option at an odd offset, whose bytes straddle two checksum
// words). Nothing else is touched: other segments, SYNs already below the limit, SYNs without
// the option, and options the walk cannot make sense of.
#include <catch2/catch.hpp>

#include "bpf_harness.h"
#include "expect.h"
#include "kernel/rule_store.h"
#include "scenario.h"
#include "xnat/config.h"
#include "xnat/counters.h"

using namespace xnat;
using namespace xnat::test;

namespace {

Bytes mss_option(uint16_t mss)
{
    return {2, 4, static_cast<uint8_t>(mss >> 8), static_cast<uint8_t>(mss & 0xff)};
}

PacketSpec syn_to_forward(Bytes options)
{
    PacketSpec s = client_tcp();
    s.tcp_options = std::move(options);
    return s;
}

PacketSpec forwarded(PacketSpec s, Bytes options)
{
    s.daddr = ip("10.0.0.12");
    s.dport = 22;
    s.tcp_options = std::move(options);
    return s;
}

// The MSS option's value in a frame whose options hold it at `at` (from the TCP header).
uint16_t mss_at(const Bytes &frame, size_t at)
{
    size_t off = fields(frame).l4_off + at;
    return static_cast<uint16_t>(frame.at(off) << 8 | frame.at(off + 1));
}

BpfFixture &forward_with_clamp(BpfFixture &fx, uint16_t setting)
{
    fx.configure([setting](xnat_config &c) { c.mss_clamp = setting; });
    fx.install({fwd("tcp", "203.0.113.1:22012", "10.0.0.12:22")});
    return fx;
}

} // namespace

TEST_CASE("mss: a SYN's MSS above the clamp is lowered, and the SYN-ACK's too")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    BpfFixture fx;
    forward_with_clamp(fx, 1400);

    Bytes sack_ts = {1, 1, 4, 2}; // NOP NOP SACK-permitted: options after the MSS stay as they are
    Bytes in_opts = mss_option(1460), want_opts = mss_option(1400);
    in_opts.insert(in_opts.end(), sack_ts.begin(), sack_ts.end());
    want_opts.insert(want_opts.end(), sack_ts.begin(), sack_ts.end());
    RunResult r = fx.run(hook, Side::wan, build(syn_to_forward(in_opts)));
    CHECK(r.verdict == pass_verdict(hook));
    check_frame(r.out, build(forwarded(syn_to_forward(in_opts), want_opts)));
    CHECK(fx.counter(XNAT_CNT_MSS_CLAMPED) == 1);

    PacketSpec synack;
    synack.saddr = ip("10.0.0.12");
    synack.daddr = ip("198.51.100.2");
    synack.sport = 22;
    synack.dport = 40000;
    synack.tcp_flags = kSyn | kAck;
    synack.tcp_options = mss_option(8960);
    r = fx.run(hook, Side::lan, build(synack));
    REQUIRE(r.out.size() == build(synack).size());
    CHECK(mss_at(r.out, 22) == 1400);
    CHECK(fields(r.out).saddr == ip("203.0.113.1"));
    CHECK(l4_checksum_ok(r.out));
    CHECK(fx.counter(XNAT_CNT_MSS_CLAMPED) == 2);
}

TEST_CASE("mss: an MSS option at an odd offset is lowered with a right checksum")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    BpfFixture fx;
    forward_with_clamp(fx, 1300);
    // NOP, MSS, NOP NOP NOP: the value sits at bytes 23-24 of the header, across two words.
    Bytes in_opts = {1, 2, 4, 0x05, 0xb4, 1, 1, 1};
    Bytes want_opts = {1, 2, 4, 0x05, 0x14, 1, 1, 1};
    RunResult r = fx.run(hook, Side::wan, build(syn_to_forward(in_opts)));
    check_frame(r.out, build(forwarded(syn_to_forward(in_opts), want_opts)));
    CHECK(mss_at(r.out, 23) == 1300);
    CHECK(fx.counter(XNAT_CNT_MSS_CLAMPED) == 1);
}

TEST_CASE("mss: the walk steps over every other kind of option to an MSS at the options' end")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    BpfFixture fx;
    forward_with_clamp(fx, 1400);

    SECTION("timestamps, SACK-permitted and window scale before it")
    {
        Bytes opts = {8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 4, 2, 3, 3, 7, 1};
        Bytes want = opts;
        Bytes in_mss = mss_option(1460), want_mss = mss_option(1400);
        opts.insert(opts.end(), in_mss.begin(), in_mss.end());
        want.insert(want.end(), want_mss.begin(), want_mss.end());
        check_frame(fx.run(hook, Side::wan, build(syn_to_forward(opts))).out,
                    build(forwarded(syn_to_forward(opts), want)));
        CHECK(fx.counter(XNAT_CNT_MSS_CLAMPED) == 1);
    }
    SECTION("36 NOPs before it: the longest walk 40 option bytes allow")
    {
        Bytes opts(36, 1), want(36, 1);
        Bytes in_mss = mss_option(1460), want_mss = mss_option(1400);
        opts.insert(opts.end(), in_mss.begin(), in_mss.end());
        want.insert(want.end(), want_mss.begin(), want_mss.end());
        RunResult r = fx.run(hook, Side::wan, build(syn_to_forward(opts)));
        check_frame(r.out, build(forwarded(syn_to_forward(opts), want)));
        CHECK(mss_at(r.out, 58) == 1400);
        CHECK(fx.counter(XNAT_CNT_MSS_CLAMPED) == 1);
    }
    SECTION("35 NOPs before it, its value at an odd offset")
    {
        Bytes opts(35, 1), want(35, 1);
        Bytes in_mss = mss_option(1460), want_mss = mss_option(1400);
        opts.insert(opts.end(), in_mss.begin(), in_mss.end());
        want.insert(want.end(), want_mss.begin(), want_mss.end());
        opts.push_back(0);
        want.push_back(0);
        RunResult r = fx.run(hook, Side::wan, build(syn_to_forward(opts)));
        check_frame(r.out, build(forwarded(syn_to_forward(opts), want)));
        CHECK(mss_at(r.out, 57) == 1400);
        CHECK(fx.counter(XNAT_CNT_MSS_CLAMPED) == 1);
    }
}

TEST_CASE("mss: what the clamp leaves alone")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    BpfFixture fx;

    SECTION("an MSS already below the clamp")
    {
        forward_with_clamp(fx, 1400);
        Bytes opts = mss_option(1360);
        check_frame(fx.run(hook, Side::wan, build(syn_to_forward(opts))).out,
                    build(forwarded(syn_to_forward(opts), opts)));
        CHECK(fx.counter(XNAT_CNT_MSS_CLAMPED) == 0);
    }
    SECTION("a SYN without an MSS option")
    {
        forward_with_clamp(fx, 1400);
        Bytes opts = {1, 1, 4, 2};
        check_frame(fx.run(hook, Side::wan, build(syn_to_forward(opts))).out,
                    build(forwarded(syn_to_forward(opts), opts)));
        CHECK(fx.counter(XNAT_CNT_MSS_CLAMPED) == 0);
    }
    SECTION("an option of length 0 before the MSS ends the walk")
    {
        forward_with_clamp(fx, 1400);
        Bytes opts = {30, 0, 1, 1, 2, 4, 0x05, 0xb4};
        check_frame(fx.run(hook, Side::wan, build(syn_to_forward(opts))).out,
                    build(forwarded(syn_to_forward(opts), opts)));
        CHECK(fx.counter(XNAT_CNT_MSS_CLAMPED) == 0);
    }
    SECTION("an option whose length runs past the header (to 88, which is 24 modulo 64, where an MSS follows)")
    {
        forward_with_clamp(fx, 1400);
        Bytes opts = {30, 68, 1, 1, 2, 4, 0x05, 0xb4};
        check_frame(fx.run(hook, Side::wan, build(syn_to_forward(opts))).out,
                    build(forwarded(syn_to_forward(opts), opts)));
        CHECK(fx.counter(XNAT_CNT_MSS_CLAMPED) == 0);
    }
    SECTION("an MSS option after the end-of-options mark")
    {
        forward_with_clamp(fx, 1400);
        Bytes opts = {1, 0, 1, 1, 2, 4, 0x05, 0xb4};
        check_frame(fx.run(hook, Side::wan, build(syn_to_forward(opts))).out,
                    build(forwarded(syn_to_forward(opts), opts)));
        CHECK(fx.counter(XNAT_CNT_MSS_CLAMPED) == 0);
    }
    SECTION("an MSS option cut short by the header's end")
    {
        forward_with_clamp(fx, 1400);
        Bytes opts = {1, 1, 2, 4}; // kind and length, the value past the header
        check_frame(fx.run(hook, Side::wan, build(syn_to_forward(opts))).out,
                    build(forwarded(syn_to_forward(opts), opts)));
        CHECK(fx.counter(XNAT_CNT_MSS_CLAMPED) == 0);
    }
    SECTION("a segment without SYN")
    {
        forward_with_clamp(fx, 1400);
        REQUIRE(fx.run(hook, Side::wan, build(syn_to_forward(mss_option(1460)))).verdict == pass_verdict(hook));
        PacketSpec ack = syn_to_forward(mss_option(1460));
        ack.tcp_flags = kAck;
        check_frame(fx.run(hook, Side::wan, build(ack)).out, build(forwarded(ack, mss_option(1460))));
        CHECK(fx.counter(XNAT_CNT_MSS_CLAMPED) == 1); // the SYN before it
    }
    SECTION("clamping off")
    {
        forward_with_clamp(fx, 0);
        Bytes opts = mss_option(8960);
        check_frame(fx.run(hook, Side::wan, build(syn_to_forward(opts))).out,
                    build(forwarded(syn_to_forward(opts), opts)));
        CHECK(fx.counter(XNAT_CNT_MSS_CLAMPED) == 0);
    }
}

TEST_CASE("mss: pmtu clamps to the interfaces' MTU minus 40")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    NetGateway gw(hook, {}, {masq("10.0.0.0/24", kWanAddr)});
    gw.fx.configure([](xnat_config &c) { c.mss_clamp = XNAT_MSS_CLAMP_PMTU; });
    PacketSpec s = lan_to("10.0.0.5", 5000, "203.0.113.50", 443);
    s.tcp_options = mss_option(8960); // a jumbo-frame host
    RunResult r = gw.from_lan(build(s));
    REQUIRE(r.verdict == redirect_verdict(hook));
    CHECK(mss_at(r.out, 22) == 1460); // wan0 and lan0 have MTU 1500
    CHECK(l4_checksum_ok(r.out));
    CHECK(ipv4_checksum_ok(r.out));
    CHECK(gw.fx.counter(XNAT_CNT_MSS_CLAMPED) == 1);
}
