// The fixtures share loaded objects (object_pool.h). These cases show that an object handed on
// holds nothing of the fixture before it, and that its sweeper runs again.
#include <bpf/bpf.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "bpf_harness.h"
#include "scenario.h"
#include "xnat/counters.h"

using namespace xnat;
using namespace xnat::test;

namespace {

uint32_t map_id(int fd)
{
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    REQUIRE(bpf_obj_get_info_by_fd(fd, &info, &len) == 0);
    return info.id;
}

} // namespace

TEST_CASE("object pool: a reused object holds nothing of the fixture before it")
{
    if (fresh_objects_wanted()) {
        WARN("XNAT_TEST_FRESH_OBJECTS is set: nothing is reused, nothing to check");
        return;
    }
    uint32_t used_ct;
    {
        NetGateway gw(Hook::tc, {fwd("tcp", "203.0.113.1:22012", "10.0.0.12:22")},
                      {masq("10.0.0.0/24", kWanAddr)}, 777);
        gw.fx.set_rand_state(42);
        gw.fx.advance_clock_s(1000);
        REQUIRE(gw.from_wan(build(client_tcp())).verdict == kTcRedirect);
        REQUIRE(gw.from_lan(build(lan_host_to_remote(kUdp))).verdict == kTcRedirect);
        REQUIRE(gw.fx.ct_entries() == 4);
        REQUIRE(gw.fx.snat_mappings() == 1);
        used_ct = map_id(gw.fx.maps().ct);
    }

    NetGateway gw(Hook::tc, {}, {}, 777);
    REQUIRE(map_id(gw.fx.maps().ct) == used_ct);
    CHECK(gw.fx.ct_entries() == 0);
    CHECK(gw.fx.snat_mappings() == 0);
    for (int i = 0; i < XNAT_CNT_COUNT; ++i) {
        INFO("counter " << i);
        CHECK(gw.fx.counter(i) == 0);
    }
    // The forward is gone with its rule tables: the SYN goes to the kernel untouched.
    RunResult r = gw.from_wan(build(client_tcp()));
    CHECK(r.verdict == kTcOk);
    CHECK(gw.fx.ct_entries() == 0);

    // The sweeper was stopped with the old fixture and armed again for this one: it leaves a
    // live flow alone and ends it once its 300 s pass.
    gw.fx.install({}, {masq("10.0.0.0/24", kWanAddr)});
    gw.fx.set_sweep_interval_ms(100);
    REQUIRE(gw.from_lan(build(lan_host_to_remote(kUdp))).verdict == kTcRedirect);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(gw.fx.ct_entries() == 2);
    gw.fx.advance_clock_s(303);
    CHECK(gw.fx.await_ct_entries(0) == 0);
    CHECK(gw.fx.snat_mappings() == 0);
}
