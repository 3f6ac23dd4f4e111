// The port-mapping policy: which external port a host gets, for how long, and when it is
// refused. Time is a plain number of seconds here.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <vector>

#include "portmap/mapping_table.h"

using namespace xnat::portmap;

namespace {

constexpr uint32_t kHostA = 0x0a00000c, kHostB = 0x0a00000d; // 10.0.0.12, 10.0.0.13

Policy policy(uint16_t lo = 30000, uint16_t hi = 30099, uint32_t per_host = 4)
{
    Policy p;
    p.port_lo = lo;
    p.port_hi = hi;
    p.per_host = per_host;
    return p;
}

const PortTaken kNothingTaken = [](Protocol, uint16_t) { return false; };

MappingTable make_table(const Policy &p, uint32_t seed)
{
    auto t = MappingTable::make(p, seed);
    REQUIRE(t);
    return std::move(*t);
}

} // namespace

TEST_CASE("mapping table: the suggested port, then the internal one, then any free one")
{
    MappingTable t = make_table(policy(), 1);
    Decision d = t.map({Protocol::tcp, kHostA, 8080, 30005, 3600, false}, 1000, kNothingTaken);
    REQUIRE(d.refusal == Refusal::none);
    CHECK(d.mapping == Mapping{Protocol::tcp, kHostA, 8080, 30005, 4600});
    CHECK(d.lifetime == 3600);
    CHECK_FALSE(d.renewed);

    // The internal port when it is in the range and no suggestion fits.
    d = t.map({Protocol::tcp, kHostA, 30010, 0, 3600, false}, 1000, kNothingTaken);
    CHECK(d.mapping.external_port == 30010);
    // Taken by another host's mapping: a different port, in the range.
    d = t.map({Protocol::tcp, kHostB, 9000, 30005, 3600, false}, 1000, kNothingTaken);
    REQUIRE(d.refusal == Refusal::none);
    CHECK(d.mapping.external_port != 30005);
    CHECK(d.mapping.external_port >= 30000);
    CHECK(d.mapping.external_port <= 30099);
    // The same port for the other protocol is a different mapping.
    d = t.map({Protocol::udp, kHostB, 9000, 30005, 3600, false}, 1000, kNothingTaken);
    CHECK(d.mapping.external_port == 30005);
    CHECK(t.mappings().size() == 4);
}

TEST_CASE("mapping table: what else holds a port is never handed out")
{
    MappingTable t = make_table(policy(30000, 30009), 7);
    // Static forwards, the gateway's ports, masquerade: every even port is taken elsewhere.
    PortTaken even = [](Protocol, uint16_t port) { return port % 2 == 0; };
    std::set<uint16_t> got;
    for (uint16_t i = 0; i < 5; ++i) {
        Decision d = t.map({Protocol::udp, 0x0a000001u + i, 5000, 30000, 60, false}, 0, even);
        REQUIRE(d.refusal == Refusal::none);
        CHECK(d.mapping.external_port % 2 == 1);
        got.insert(d.mapping.external_port);
    }
    CHECK(got.size() == 5);
    // The range is full now.
    CHECK(t.map({Protocol::udp, 0x0a000010, 5000, 0, 60, false}, 0, even).refusal == Refusal::no_ports);
}

TEST_CASE("mapping table: a known mapping is renewed with its port, lifetimes are clamped")
{
    MappingTable t = make_table(policy(), 3);
    Decision first = t.map({Protocol::tcp, kHostA, 22, 0, 10, false}, 100, kNothingTaken);
    CHECK(first.lifetime == 120); // RFC 6887's minimum
    CHECK(first.mapping.expires == 220);
    CHECK(first.mapping.via == Via::natpmp);
    Decision again = t.map({Protocol::tcp, kHostA, 22, 30050, 999999, false, Via::pcp}, 200, kNothingTaken);
    CHECK(again.renewed);
    CHECK(again.mapping.via == Via::pcp); // the protocol that asked last
    CHECK(t.mappings().at(0).via == Via::pcp);
    CHECK(again.lifetime == 86400);
    CHECK(again.mapping.external_port == first.mapping.external_port);
    CHECK(again.mapping.expires == 200u + 86400u);
    CHECK(t.mappings().size() == 1);
}

TEST_CASE("mapping table: the per-host quota and PREFER_FAILURE")
{
    MappingTable t = make_table(policy(30000, 30099, 2), 5);
    CHECK(t.map({Protocol::tcp, kHostA, 1, 0, 60, false}, 0, kNothingTaken).refusal == Refusal::none);
    CHECK(t.map({Protocol::udp, kHostA, 1, 0, 60, false}, 0, kNothingTaken).refusal == Refusal::none);
    CHECK(t.map({Protocol::tcp, kHostA, 2, 0, 60, false}, 0, kNothingTaken).refusal == Refusal::host_quota);
    // A renewal is not a new mapping: the quota does not stop it.
    CHECK(t.map({Protocol::tcp, kHostA, 1, 0, 60, false}, 0, kNothingTaken).renewed);
    CHECK(t.map({Protocol::tcp, kHostB, 2, 0, 60, false}, 0, kNothingTaken).refusal == Refusal::none);

    uint16_t held = t.mappings().front().external_port;
    CHECK(t.map({Protocol::tcp, kHostB, 3, held, 60, true}, 0, kNothingTaken).refusal ==
          Refusal::suggested_unavailable);
    CHECK(t.map({Protocol::tcp, kHostB, 3, 31000, 60, true}, 0, kNothingTaken).refusal ==
          Refusal::suggested_unavailable); // outside the range
    Decision d = t.map({Protocol::tcp, kHostB, 3, 30077, 60, true}, 0, kNothingTaken);
    CHECK(d.mapping.external_port == 30077);
}

TEST_CASE("mapping table: removal, expiry and adoption after a restart")
{
    MappingTable t = make_table(policy(), 9);
    t.map({Protocol::tcp, kHostA, 1, 30001, 200, false}, 0, kNothingTaken);
    t.map({Protocol::udp, kHostA, 1, 30001, 300, false}, 0, kNothingTaken);
    t.map({Protocol::udp, kHostA, 2, 30002, 300, false}, 0, kNothingTaken);
    t.map({Protocol::udp, kHostB, 2, 30003, 400, false}, 0, kNothingTaken);
    CHECK(t.next_expiry() == 200u);

    CHECK_FALSE(t.remove(Protocol::tcp, kHostB, 1));
    auto gone = t.remove(Protocol::tcp, kHostA, 1);
    REQUIRE(gone);
    CHECK(gone->external_port == 30001);
    CHECK(t.release(Protocol::udp, kHostA, 0, std::nullopt).removed.size() == 2);
    CHECK(t.mappings().size() == 1);
    CHECK(t.expire(399).empty());
    CHECK(t.expire(400).size() == 1);
    CHECK_FALSE(t.next_expiry());

    // After a restart: a live mapping in the range comes back; expired, too long, out of range
    // or clashing ones do not.
    CHECK(t.adopt({Protocol::tcp, kHostA, 22, 30022, 1000}, 500, kNothingTaken));
    CHECK_FALSE(t.adopt({Protocol::tcp, kHostB, 23, 30022, 1000}, 500, kNothingTaken)); // port held
    CHECK_FALSE(t.adopt({Protocol::tcp, kHostA, 22, 30023, 1000}, 500, kNothingTaken)); // same mapping twice
    CHECK_FALSE(t.adopt({Protocol::tcp, kHostA, 24, 30024, 400}, 500, kNothingTaken));  // expired
    CHECK_FALSE(t.adopt({Protocol::tcp, kHostA, 25, 30025, 500 + 86401}, 500, kNothingTaken));
    CHECK_FALSE(t.adopt({Protocol::tcp, kHostA, 26, 40000, 1000}, 500, kNothingTaken)); // out of range
    CHECK(t.mappings().size() == 1);
}

TEST_CASE("mapping table: the port choice is spread over the range, repeatably for one seed")
{
    auto ports = [](uint32_t seed) {
        MappingTable t = make_table(policy(30000, 39999, 100), seed);
        std::vector<uint16_t> out;
        for (uint16_t i = 1; i <= 20; ++i)
            out.push_back(
                t.map({Protocol::udp, kHostA, i, 0, 60, false}, 0, kNothingTaken).mapping.external_port);
        return out;
    };
    CHECK(ports(11) == ports(11));
    CHECK(ports(11) != ports(12));
    std::vector<uint16_t> p = ports(11);
    CHECK(std::set<uint16_t>(p.begin(), p.end()).size() == 20);
    // Not handed out in order from one end: 20 ports spread over 10,000.
    auto [lo, hi] = std::minmax_element(p.begin(), p.end());
    CHECK(*hi - *lo > 1000);
}

TEST_CASE("mapping table: a policy it cannot work with is refused, naming the field")
{
    auto error_of = [](Policy p) {
        auto t = MappingTable::make(p, 1);
        REQUIRE_FALSE(t);
        return t.error().message;
    };
    CHECK(error_of(policy(0, 10)).rfind("ports: ", 0) == 0);
    CHECK(error_of(policy(40000, 30000)).rfind("ports: ", 0) == 0);
    CHECK(error_of(policy(30000, 30010, 0)).rfind("per_host: ", 0) == 0);
    Policy p = policy();
    p.min_lifetime = 600;
    p.max_lifetime = 300;
    CHECK(error_of(p).rfind("lifetimes: ", 0) == 0);
    CHECK(MappingTable::make(policy(30000, 30000, 1), 1));
}

TEST_CASE("mapping table: a PCP mapping is renewed only with its nonce")
{
    MappingTable t = make_table(policy(), 2);
    Nonce mine{1, 2, 3}, theirs{9, 9, 9};
    Decision d = t.map({Protocol::udp, kHostA, 5000, 0, 600, false, Via::pcp, mine}, 0, kNothingTaken);
    REQUIRE(d.refusal == Refusal::none);
    CHECK(d.mapping.nonce == mine);
    // Another client on the same host: refused, told how long the mapping still lives.
    d = t.map({Protocol::udp, kHostA, 5000, 0, 600, false, Via::pcp, theirs}, 100, kNothingTaken);
    CHECK(d.refusal == Refusal::nonce_mismatch);
    CHECK(d.lifetime == 500);
    CHECK(t.mappings().at(0).expires == 600);
    CHECK(t.map({Protocol::udp, kHostA, 5000, 0, 600, false, Via::pcp, mine}, 100, kNothingTaken).renewed);
    // NAT-PMP has no nonce: the host itself may renew. A NAT-PMP mapping takes the first PCP nonce.
    CHECK(t.map({Protocol::udp, kHostA, 5000, 0, 600}, 100, kNothingTaken).renewed);
    t.map({Protocol::tcp, kHostA, 22, 0, 600}, 0, kNothingTaken);
    CHECK(t.map({Protocol::tcp, kHostA, 22, 0, 600, false, Via::pcp, theirs}, 0, kNothingTaken).renewed);
    CHECK(t.find(Protocol::tcp, kHostA, 22)->nonce == theirs);
    CHECK(t.map({Protocol::tcp, kHostA, 22, 0, 600, false, Via::pcp, mine}, 0, kNothingTaken).refusal ==
          Refusal::nonce_mismatch);
}

TEST_CASE("mapping table: adoption asks what else holds the port")
{
    MappingTable t = make_table(policy(), 4);
    PortTaken static_forward = [](Protocol p, uint16_t port) { return p == Protocol::tcp && port == 30022; };
    CHECK_FALSE(t.adopt({Protocol::tcp, kHostA, 22, 30022, 1000}, 500, static_forward));
    CHECK(t.adopt({Protocol::udp, kHostA, 22, 30022, 1000}, 500, static_forward));
    CHECK_FALSE(t.adopt({Protocol::udp, kHostA, 0, 30023, 1000}, 500, kNothingTaken));
    CHECK_FALSE(t.adopt({Protocol::udp, kHostA, 23, 0, 1000}, 500, kNothingTaken));
}
