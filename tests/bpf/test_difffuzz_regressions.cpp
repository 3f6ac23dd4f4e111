// Regressions found by the differential fuzzer (tests/fuzz/difffuzz.cpp, xnat-difffuzz).
#include <catch2/catch.hpp>

#include "bpf_harness.h"
#include "expect.h"
#include "xnat/counters.h"

using namespace xnat;
using namespace xnat::test;

// Found with seed 10 (step 87): the identifier of an echo reply was read from the Ethernet
// padding past the IP total length, so the reply matched its flow, was counted and translated,
// and the ICMP checksum was patched for bytes it does not cover.
TEST_CASE("difffuzz: an echo reply whose IP total length cuts its ICMP header leaves its flow alone")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    NetGateway gw(hook, {}, {masq("10.0.0.0/24", kWanAddr)});
    PacketSpec request;
    request.proto = kIcmp;
    request.saddr = ip("10.0.0.5");
    request.daddr = ip("203.0.113.50");
    request.icmp_type = kEcho;
    request.icmp_id = 0x2222;
    RunResult out = gw.from_lan(build(request));
    REQUIRE(out.verdict == redirect_verdict(hook));

    PacketSpec reply;
    reply.proto = kIcmp;
    reply.saddr = ip("203.0.113.50");
    reply.daddr = ip(kWanAddr);
    reply.icmp_type = kEchoReply;
    reply.icmp_id = fields(out.out).icmp_id;
    Bytes in = build(reply);
    in[16] = 0; // IP total length 24: 4 bytes of ICMP, the identifier lies beyond
    in[17] = 24;
    RunResult r = gw.from_wan(in);
    check_untouched(r, in, hook);
    CHECK(gw.fx.counter(XNAT_CNT_PASS_MALFORMED) == 1);
    auto conns = gw.fx.conns();
    REQUIRE(conns.size() == 1);
    CHECK(conns[0].reply.packets == 0);
    CHECK((conns[0].original.flags & XNAT_CT_F_SEEN_REPLY) == 0);
}
