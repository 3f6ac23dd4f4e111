// One packet case as a row of a table: the packet in, the frame that must come out, the
// counter it must move and what it must do to the tables. The DNAT, conntrack and masquerade
// tests list their cases this way, so a case states all four and none can be forgotten.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "bpf_harness.h"
#include "expect.h"
#include "packet.h"
#include "xnat/counters.h"

namespace xnat::test {

// A fixture and the ingress interfaces its packets arrive on (0 for a fixture that knows no
// interfaces), so a case runs the same whether or not it needs the test network.
struct Target {
    BpfFixture &fx;
    Hook hook;
    unsigned wan_ifindex = 0, lan_ifindex = 0;

    RunResult send(Side side, const PacketSpec &spec)
    {
        return fx.run(hook, side, build(spec), side == Side::wan ? wan_ifindex : lan_ifindex);
    }
};

// Named by what the hook does, since each hook spells its verdicts differently.
enum class Verdict { pass, drop, redirect };

inline int verdict_code(Verdict v, Hook h)
{
    switch (v) {
    case Verdict::pass:
        return pass_verdict(h);
    case Verdict::drop:
        return drop_verdict(h);
    case Verdict::redirect:
        return redirect_verdict(h);
    }
    return -1;
}

struct TableCase {
    const char *description;
    Side side;
    PacketSpec in;
    // The frame that must leave, built from scratch by the oracle; none means the packet must
    // leave untouched (or, dropped, is not looked at).
    std::optional<PacketSpec> out;
    Verdict verdict;
    // The verdict's reason counter, which moves by one; `events` (new flow, expiry) move by one
    // too, and every other counter stays, so a case cannot hide a second effect.
    int counter;
    std::vector<int> events;
    // Conntrack entries (two per flow) and masquerade mappings the packet adds, or removes.
    int ct_delta = 0;
    int mapping_delta = 0;
    // What the case needs before its packet: other rules, earlier packets of the flow.
    std::function<void(Target &)> setup = {};
    // What the four do not say: a flow's recorded state, a map's reference count.
    std::function<void(Target &)> then = {};
    bool udp_none = false; // the expected datagram carries no checksum
    uint32_t max_connections = 1024;
};

namespace table_detail {

inline std::vector<uint64_t> counters(const BpfFixture &fx)
{
    std::vector<uint64_t> v;
    for (int i = 0; i < XNAT_CNT_COUNT; ++i)
        v.push_back(fx.counter(i));
    return v;
}

inline uint64_t wanted_moves(const TableCase &c, int index)
{
    uint64_t n = index == c.counter ? 1 : 0;
    for (int e : c.events)
        n += e == index ? 1 : 0;
    return n;
}

inline void check_out(const TableCase &c, Hook hook, const RunResult &r)
{
    if (c.verdict == Verdict::drop)
        return;
    if (!c.out) {
        check_untouched(r, build(c.in), hook);
        return;
    }
    Bytes want = build(*c.out);
    check_frame(r.out, want, c.udp_none);
    // check_frame proves the checksums valid; equal to the oracle's they must be too, so a
    // datapath that wrote 0xffff for 0 (or kept a UDP "none" it should have filled) fails.
    if (r.out.size() == want.size()) {
        CHECK(fields(r.out).ip_check == fields(want).ip_check);
        CHECK(fields(r.out).l4_check == fields(want).l4_check);
    }
}

} // namespace table_detail

// Runs one case on a target whose fixture is fresh but for its rules: setup, the packet, then
// every expectation. Counters other than the case's must not move; XDP's handoff to tc is not
// the case's business, since whether XDP or tc decides is the hook's.
inline void run_case(const TableCase &c, Target &t)
{
    INFO(hook_name(t.hook) << ": " << c.description);
    if (c.setup)
        c.setup(t);
    std::vector<uint64_t> before = table_detail::counters(t.fx);
    auto ct_before = static_cast<int64_t>(t.fx.ct_entries());
    auto maps_before = static_cast<int64_t>(t.fx.snat_mappings());

    RunResult r = t.send(c.side, c.in);
    CHECK(r.verdict == verdict_code(c.verdict, t.hook));
    table_detail::check_out(c, t.hook, r);

    std::vector<uint64_t> after = table_detail::counters(t.fx);
    for (int i = 0; i < XNAT_CNT_COUNT; ++i) {
        if (i == XNAT_CNT_XDP_HANDOFF)
            continue;
        INFO("counter " << i);
        CHECK(after[size_t(i)] - before[size_t(i)] == table_detail::wanted_moves(c, i));
    }
    CHECK(static_cast<int64_t>(t.fx.ct_entries()) - ct_before == c.ct_delta);
    CHECK(static_cast<int64_t>(t.fx.snat_mappings()) - maps_before == c.mapping_delta);
    if (c.then)
        c.then(t);
}

// Runs each case on a fixture of its own that knows no interfaces and holds `forwards`: every
// case starts from the same empty tables, whatever the one before it left.
inline void run_cases(const std::vector<TableCase> &cases, Hook hook, const std::vector<PortForward> &forwards)
{
    for (const TableCase &c : cases) {
        BpfFixture fx(c.max_connections);
        fx.install(forwards);
        Target t{fx, hook};
        run_case(c, t);
    }
}

} // namespace xnat::test
