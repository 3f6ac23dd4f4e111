// A request in, an answer and the forwards' changes out: NAT-PMP and PCP through one handler,
// with the forwards played by a fake that records what it was asked to do.
#include <catch2/catch.hpp>

#include <algorithm>
#include <initializer_list>
#include <set>
#include <utility>
#include <vector>

#include "portmap/pcp_wire.h"
#include "portmap/request_handler.h"

using namespace xnat;
using namespace xnat::portmap;

namespace {

constexpr uint32_t kHost = 0x0a00000c;     // 10.0.0.12
constexpr uint32_t kOther = 0x0a00000d;    // 10.0.0.13
constexpr uint32_t kExternal = 0xcb007101; // 203.0.113.1
// The nonce pcp_map writes.
constexpr Nonce kNonce = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab};

struct FakeForwards : Forwards {
    std::vector<Mapping> installed;
    std::set<std::pair<Protocol, uint16_t>> held_elsewhere;
    bool refuse = false;

    Result<void> add(const Mapping &m) override
    {
        if (refuse)
            return system_error("forward table full");
        installed.push_back(m);
        return {};
    }
    // The instance knows a forward by protocol and external port.
    std::vector<Mapping>::iterator find(const Mapping &m)
    {
        return std::find_if(installed.begin(), installed.end(), [&](const Mapping &i) {
            return i.proto == m.proto && i.external_port == m.external_port;
        });
    }
    void renew(const Mapping &m) override
    {
        REQUIRE(find(m) != installed.end());
        *find(m) = m;
    }
    void remove(const Mapping &m) override
    {
        REQUIRE(find(m) != installed.end());
        installed.erase(find(m));
    }
    bool taken(Protocol proto, uint16_t port, uint32_t, uint16_t) override
    {
        return held_elsewhere.count({proto, port}) > 0;
    }
};

struct Fixture {
    Policy policy{30000, 30099, 2, 120, 86400};
    MappingTable table = *MappingTable::make(policy, 1);
    FakeForwards forwards;
    RequestHandler handler{table, forwards};
    Fixture()
    {
        handler.set_external_address(kExternal);
    }

    Answer send(const Bytes &in, uint32_t source = kHost, uint64_t now = 1000)
    {
        return handler.handle(in, source, now, 77);
    }
};

// NAT-PMP: TCP (op 2) or UDP (op 1), internal port, suggested port, lifetime.
Bytes natpmp_map(uint8_t op, uint16_t internal, uint16_t suggested, uint32_t lifetime)
{
    return {0x00,
            op,
            0x00,
            0x00,
            static_cast<uint8_t>(internal >> 8),
            static_cast<uint8_t>(internal),
            static_cast<uint8_t>(suggested >> 8),
            static_cast<uint8_t>(suggested),
            static_cast<uint8_t>(lifetime >> 24),
            static_cast<uint8_t>(lifetime >> 16),
            static_cast<uint8_t>(lifetime >> 8),
            static_cast<uint8_t>(lifetime)};
}

// PCP MAP from `client`: protocol, internal port, suggested port, lifetime, then options.
Bytes pcp_map(uint32_t client, uint8_t protocol, uint16_t internal, uint16_t suggested, uint32_t lifetime,
              const Bytes &options = {})
{
    Bytes b(60, 0);
    b[0] = 2;
    b[1] = 1;
    portmap::put32(b, 4, lifetime);
    pcp::Address c = pcp::ipv4_mapped(client);
    std::copy(c.begin(), c.end(), b.begin() + 8);
    for (uint8_t i = 0; i < 12; ++i)
        b[24 + i] = static_cast<uint8_t>(0xa0 + i);
    b[36] = protocol;
    portmap::put16(b, 40, internal);
    portmap::put16(b, 42, suggested);
    b.insert(b.end(), options.begin(), options.end());
    return b;
}

} // namespace

TEST_CASE("portmap handler: NAT-PMP external address, mapping, renewal and delete")
{
    Fixture f;
    Answer a = f.send({0x00, 0x00});
    CHECK(a.outcome == Outcome::external_address);
    CHECK(a.reply == Bytes{0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4d, 0xcb, 0x00, 0x71, 0x01});

    a = f.send(natpmp_map(2, 8080, 30005, 7200));
    CHECK(a.outcome == Outcome::granted);
    // TCP answer, success, epoch 77, internal 8080, external 30005, 7200 s.
    CHECK(a.reply == Bytes{0x00, 0x82, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4d, 0x1f, 0x90, 0x75, 0x35, 0x00, 0x00,
                           0x1c, 0x20});
    REQUIRE(f.forwards.installed.size() == 1);
    CHECK(f.forwards.installed[0] == Mapping{Protocol::tcp, kHost, 8080, 30005, 1000 + 7200});

    a = f.send(natpmp_map(2, 8080, 0, 3600), kHost, 2000);
    CHECK(a.outcome == Outcome::renewed);
    CHECK(portmap::get16(a.reply, 10) == 30005);
    CHECK(f.forwards.installed.size() == 1); // a renewal installs nothing new
    CHECK(f.table.mappings().at(0).expires == 2000 + 3600);
    CHECK(f.forwards.installed.at(0).expires == 2000 + 3600);

    a = f.send(natpmp_map(2, 8080, 0, 0));
    CHECK(a.outcome == Outcome::deleted);
    CHECK(a.reply == Bytes{0x00, 0x82, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4d, 0x1f, 0x90, 0x00, 0x00, 0x00, 0x00,
                           0x00, 0x00});
    CHECK(f.forwards.installed.empty());
    CHECK(f.table.mappings().empty());
}

TEST_CASE("portmap handler: NAT-PMP refusals carry their result codes")
{
    Fixture f;
    f.send(natpmp_map(1, 5000, 0, 60));
    f.send(natpmp_map(1, 5001, 0, 60));
    Answer a = f.send(natpmp_map(1, 5002, 0, 60));
    CHECK(a.outcome == Outcome::refused_quota);
    CHECK(portmap::get16(a.reply, 2) == 4); // out of resources
    CHECK(portmap::get16(a.reply, 10) == 0);
    CHECK(portmap::get32(a.reply, 12) == 0);

    // Every port of one protocol for one host goes with internal port 0 and lifetime 0.
    a = f.send(natpmp_map(1, 0, 0, 0));
    CHECK(a.outcome == Outcome::deleted);
    CHECK(f.forwards.installed.empty());

    f.forwards.refuse = true;
    a = f.send(natpmp_map(1, 5000, 0, 60));
    CHECK(a.outcome == Outcome::refused_install);
    CHECK(a.why == "forward table full");
    CHECK(f.table.mappings().empty()); // the table forgets what the kernel would not take

    f.handler.set_external_address(0);
    a = f.send({0x00, 0x00});
    CHECK(portmap::get16(a.reply, 2) == 3); // network failure
    a = f.send(natpmp_map(2, 22, 0, 60));
    CHECK(a.outcome == Outcome::refused_no_external);
    CHECK(portmap::get16(a.reply, 2) == 3);

    a = f.send({0x00, 0x09});
    CHECK(a.outcome == Outcome::malformed);
    CHECK(a.reply == Bytes{0x00, 0x89, 0x00, 0x05});
    CHECK(f.send({0x00}).outcome == Outcome::dropped);
    CHECK(f.send({0x00}).reply.empty());
}

TEST_CASE("portmap handler: PCP MAP, its answer byte for byte, and delete")
{
    Fixture f;
    Answer a = f.send(pcp_map(kHost, 17, 5000, 30042, 600));
    CHECK(a.outcome == Outcome::granted);
    Bytes want = pcp_map(kHost, 17, 5000, 30042, 600);
    // The response header: R bit, success, lifetime 600, epoch 77, reserved zeros.
    Bytes header = {0x02, 0x81, 0x00, 0x00, 0x00, 0x00, 0x02, 0x58, 0x00, 0x00, 0x00, 0x4d};
    std::copy(header.begin(), header.end(), want.begin());
    std::fill(want.begin() + 12, want.begin() + 24, uint8_t{0});
    pcp::Address ext = pcp::ipv4_mapped(kExternal);
    std::copy(ext.begin(), ext.end(), want.begin() + 44);
    CHECK(a.reply == want);
    CHECK(f.forwards.installed == std::vector<Mapping>{{Protocol::udp, kHost, 5000, 30042, 1600, Via::pcp, kNonce}});

    // Protocol 0, port 0, lifetime 0: every mapping of the host goes.
    f.send(pcp_map(kHost, 6, 22, 0, 600));
    CHECK(f.forwards.installed.size() == 2);
    a = f.send(pcp_map(kHost, 0, 0, 0, 0));
    CHECK(a.outcome == Outcome::deleted);
    CHECK(a.reply[3] == 0);
    CHECK(portmap::get32(a.reply, 4) == 0);
    CHECK(f.forwards.installed.empty());
}

TEST_CASE("portmap handler: PCP refusals")
{
    Fixture f;
    auto result_of = [&](const Bytes &in, uint32_t source = kHost) {
        Answer a = f.send(in, source);
        REQUIRE(a.reply.size() >= 24);
        return std::pair{static_cast<int>(a.reply[3]), portmap::get32(a.reply, 4)};
    };
    // A mapping for another host (THIRD_PARTY): NOT_AUTHORIZED, long lifetime.
    pcp::Address other = pcp::ipv4_mapped(kOther);
    Bytes third = {0x01, 0x00, 0x00, 0x10};
    third.insert(third.end(), other.begin(), other.end());
    CHECK(result_of(pcp_map(kHost, 6, 22, 0, 600, third)) == std::pair{2, 1800u});
    // A client address that is not the source: ADDRESS_MISMATCH.
    CHECK(result_of(pcp_map(kOther, 6, 22, 0, 600)) == std::pair{12, 1800u});
    // Not TCP or UDP: UNSUPP_PROTOCOL.
    CHECK(result_of(pcp_map(kHost, 132, 22, 0, 600)) == std::pair{9, 1800u});
    // PREFER_FAILURE on a port held by a static forward: CANNOT_PROVIDE_EXTERNAL, short lifetime.
    f.forwards.held_elsewhere.insert({Protocol::tcp, 30010});
    CHECK(result_of(pcp_map(kHost, 6, 22, 30010, 600, {0x02, 0x00, 0x00, 0x00})) == std::pair{11, 30u});
    // Without it, another port.
    Answer a = f.send(pcp_map(kHost, 6, 22, 30010, 600));
    CHECK(a.outcome == Outcome::granted);
    CHECK(portmap::get16(a.reply, 42) != 30010);
    // The quota: USER_EX_QUOTA.
    f.send(pcp_map(kHost, 6, 23, 0, 600));
    CHECK(result_of(pcp_map(kHost, 6, 24, 0, 600)) == std::pair{10, 30u});
    CHECK(f.table.count(kHost) == 2);
    // ANNOUNCE is answered with success and lifetime 0.
    Bytes announce(24, 0);
    announce[0] = 2;
    pcp::Address me = pcp::ipv4_mapped(kHost);
    std::copy(me.begin(), me.end(), announce.begin() + 8);
    CHECK(result_of(announce) == std::pair{0, 0u});
}

TEST_CASE("portmap handler: PCP nonces, PREFER_FAILURE with an address, protocol 0")
{
    Fixture f;
    Bytes mine = pcp_map(kHost, 17, 5000, 0, 600);
    REQUIRE(f.send(mine).outcome == Outcome::granted);
    // Another client on the same host (another nonce) may neither renew nor delete it.
    Bytes theirs = mine;
    theirs[24] ^= 0xff;
    Answer a = f.send(theirs, kHost, 1100);
    CHECK(a.outcome == Outcome::refused_nonce);
    CHECK(a.reply[3] == 2);                           // NOT_AUTHORIZED
    CHECK(portmap::get32(a.reply, 4) == 1600 - 1100); // what is left of the mapping
    Bytes their_delete = theirs;
    portmap::put32(their_delete, 4, 0);
    CHECK(f.send(their_delete).outcome == Outcome::refused_nonce);
    CHECK(f.forwards.installed.size() == 1);
    // The error answer is the request with the answer's header (§7.2): the MAP data as sent.
    CHECK(Bytes(a.reply.begin() + 24, a.reply.end()) == Bytes(theirs.begin() + 24, theirs.end()));

    // PREFER_FAILURE naming an address that is not the gateway's: CANNOT_PROVIDE_EXTERNAL.
    Bytes elsewhere = pcp_map(kHost, 6, 22, 30050, 600, {0x02, 0x00, 0x00, 0x00});
    pcp::Address other = pcp::ipv4_mapped(0xc6336401); // 198.51.100.1
    std::copy(other.begin(), other.end(), elsewhere.begin() + 44);
    a = f.send(elsewhere);
    CHECK(a.outcome == Outcome::refused_unavailable);
    CHECK(a.reply[3] == 11);
    // The gateway's own address is what it can provide. (Another nonce than the UDP mapping's.)
    elsewhere[25] ^= 0x55;
    pcp::Address ours = pcp::ipv4_mapped(kExternal);
    std::copy(ours.begin(), ours.end(), elsewhere.begin() + 44);
    a = f.send(elsewhere);
    CHECK(a.outcome == Outcome::granted);
    CHECK(portmap::get16(a.reply, 42) == 30050);

    // Protocol 0 with lifetime 0 deletes every mapping the nonce owns, whatever the internal port
    // says (§11.1: ignored on reception). Here: the TCP one; the UDP one has another nonce, so
    // the answer is NOT_AUTHORIZED for what is left.
    Bytes all = pcp_map(kHost, 0, 4242, 0, 0);
    std::copy(elsewhere.begin() + 24, elsewhere.begin() + 36, all.begin() + 24);
    a = f.send(all);
    CHECK(a.outcome == Outcome::refused_nonce);
    REQUIRE(f.forwards.installed.size() == 1);
    CHECK(f.forwards.installed[0].proto == Protocol::udp);
    // NAT-PMP has no nonce: the host deletes its own mapping whoever made it.
    CHECK(f.send(natpmp_map(1, 5000, 0, 0)).outcome == Outcome::deleted);
    CHECK(f.forwards.installed.empty());
}

TEST_CASE("portmap handler: a version other than 0 and 2 learns that the server speaks PCP 2")
{
    Fixture f;
    for (uint8_t version : std::initializer_list<uint8_t>{1, 3, 0xff}) {
        Bytes in(24, 0);
        in[0] = version;
        in[1] = 1;
        Answer a = f.send(in);
        CHECK(a.outcome == Outcome::malformed);
        REQUIRE(a.reply.size() == 24);
        CHECK(a.reply[0] == 2);
        CHECK(a.reply[1] == 0x81);
        CHECK(a.reply[3] == 1); // UNSUPP_VERSION
    }
}
