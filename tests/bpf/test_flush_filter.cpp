// The flush program's address filter, which xnat-load --follow-wan uses when the WAN address
// changes: it ends exactly the flows with that address in a tuple, both halves, and frees
// their source-NAT mappings; every other flow and mapping stays and keeps working.
#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include "bpf_harness.h"
#include "expect.h"

using namespace xnat;
using namespace xnat::test;

namespace {

constexpr const char *kOtherAddr = "198.51.100.9"; // the second rule's to_source

} // namespace

TEST_CASE("flush filter: only the flows of one address end, with their mappings")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    // 10.0.0.5, the LAN host with a known neighbour entry, gets the other address.
    NetGateway gw(hook, {}, {masq("10.0.0.0/24", kWanAddr), masq("10.0.0.5/32", kOtherAddr)});

    RunResult a = gw.from_lan(build(lan_to("10.0.0.6", 20000, "203.0.113.50", 3478, kUdp)));
    RunResult b = gw.from_lan(build(lan_to("10.0.0.7", 20000, "203.0.113.50", 3478, kUdp)));
    RunResult c = gw.from_lan(build(lan_to("10.0.0.5", 20000, "203.0.113.50", 3478, kUdp)));
    REQUIRE(fields(a.out).saddr == ip(kWanAddr));
    REQUIRE(fields(b.out).saddr == ip(kWanAddr));
    REQUIRE(fields(c.out).saddr == ip(kOtherAddr));
    REQUIRE(gw.fx.ct_entries() == 6);
    REQUIRE(gw.fx.snat_mappings() == 3);

    CHECK(gw.fx.flush(ip("203.0.113.99")) == 0); // in no tuple: nothing ends
    CHECK(gw.fx.ct_entries() == 6);

    CHECK(gw.fx.flush(ip(kWanAddr)) == 2);
    CHECK(gw.fx.ct_entries() == 2);
    CHECK(gw.fx.snat_mappings() == 1);
    auto left = gw.fx.conns();
    REQUIRE(left.size() == 1);
    CHECK(left[0].original_key.saddr == htonl(ip("10.0.0.5")));
    CHECK_FALSE(left[0].reply_missing);

    // The flow kept still carries its replies.
    RunResult back = gw.from_wan(build(lan_to("203.0.113.50", 3478, kOtherAddr, fields(c.out).sport, kUdp)));
    CHECK(back.verdict == redirect_verdict(hook));
    CHECK(fields(back.out).daddr == ip("10.0.0.5"));

    CHECK(gw.fx.flush() == 1); // no filter: every flow
    CHECK(gw.fx.ct_entries() == 0);
    CHECK(gw.fx.snat_mappings() == 0);
}
