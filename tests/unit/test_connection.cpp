#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <random>

#include "core/connection.h"
#include "ct_key.h"

using namespace xnat;
using namespace xnat::test;

namespace {

// A flow's two halves as the datapath stores them: each names the other as its peer.
struct Flow {
    CtHalf original, reply;
};

Flow flow(uint32_t client, uint16_t sport, uint64_t orig_packets, uint64_t reply_packets)
{
    Flow f;
    f.original.key = key(client, 0xcb007101u, sport, 22012, XNAT_PROTO_TCP); // -> 203.0.113.1
    f.reply.key = key(0x0a00000cu, client, 22, sport, XNAT_PROTO_TCP);       // 10.0.0.12 ->
    f.original.entry.peer = f.reply.key;
    f.original.entry.dir = XNAT_DIR_ORIGINAL;
    f.original.entry.packets = orig_packets;
    f.reply.entry.peer = f.original.key;
    f.reply.entry.dir = XNAT_DIR_REPLY;
    f.reply.entry.packets = reply_packets;
    return f;
}

bool same_key(const xnat_ct_key &a, const xnat_ct_key &b)
{
    return std::memcmp(&a, &b, sizeof(a)) == 0;
}

const Connection *find(const std::vector<Connection> &conns, const xnat_ct_key &original)
{
    auto it = std::find_if(conns.begin(), conns.end(),
                           [&](const Connection &c) { return same_key(c.original_key, original); });
    return it == conns.end() ? nullptr : &*it;
}

} // namespace

TEST_CASE("pair_halves joins each original half with its own reply, in whatever order the dump has them")
{
    std::vector<Flow> flows;
    for (uint16_t i = 0; i < 500; ++i)
        flows.push_back(flow(0xc6336400u + i % 7, static_cast<uint16_t>(1024 + i), 1000 + i, 2000 + i));
    std::vector<CtHalf> dump;
    for (const Flow &f : flows) {
        dump.push_back(f.original);
        dump.push_back(f.reply);
    }
    // A hash map's order: reply halves before or after their originals, far apart.
    std::shuffle(dump.begin(), dump.end(), std::mt19937(7));

    auto conns = pair_halves(dump);
    REQUIRE(conns.size() == flows.size());
    for (const Flow &f : flows) {
        const Connection *c = find(conns, f.original.key);
        REQUIRE(c != nullptr);
        CHECK_FALSE(c->reply_missing);
        CHECK(c->original.packets == f.original.entry.packets);
        // The reply is this flow's, not another's: its own count and a peer naming our original.
        CHECK(c->reply.packets == f.reply.entry.packets);
        CHECK(same_key(c->reply.peer, f.original.key));
    }
}

TEST_CASE("pair_halves reports an original whose reply half is not in the dump as reply_missing")
{
    Flow whole = flow(0xc6336402u, 40000, 5, 6);
    Flow broken = flow(0xc6336403u, 40001, 7, 8);
    auto conns = pair_halves({broken.original, whole.reply, whole.original});
    REQUIRE(conns.size() == 2);
    const Connection *b = find(conns, broken.original.key);
    REQUIRE(b != nullptr);
    CHECK(b->reply_missing);
    CHECK(b->original.packets == 7);
    const Connection *w = find(conns, whole.original.key);
    REQUIRE(w != nullptr);
    CHECK_FALSE(w->reply_missing);
    CHECK(w->reply.packets == 6);
}

TEST_CASE("pair_halves leaves out a reply half without its original, and never takes an original for a reply")
{
    Flow orphan = flow(0xc6336402u, 40000, 1, 2);
    CHECK(pair_halves({orphan.reply}).empty());

    // An original half stored under the key another original names as its peer is not that
    // flow's reply: only reply halves answer for a peer.
    Flow f = flow(0xc6336404u, 40002, 3, 4);
    CtHalf impostor = f.reply;
    impostor.entry.dir = XNAT_DIR_ORIGINAL;
    impostor.entry.peer = key(1, 2, 3, 4, XNAT_PROTO_UDP);
    auto conns = pair_halves({f.original, impostor});
    REQUIRE(conns.size() == 2);
    const Connection *c = find(conns, f.original.key);
    REQUIRE(c != nullptr);
    CHECK(c->reply_missing);
}

TEST_CASE("pair_halves tells keys apart by every byte, protocol included")
{
    // Same addresses and ports, TCP and UDP: two flows, each paired with its own reply.
    Flow tcp = flow(0xc6336402u, 40000, 1, 2);
    Flow udp = flow(0xc6336402u, 40000, 3, 4);
    udp.original.key.proto = udp.reply.key.proto = XNAT_PROTO_UDP;
    udp.original.entry.peer = udp.reply.key;
    udp.reply.entry.peer = udp.original.key;
    auto conns = pair_halves({tcp.reply, udp.original, tcp.original, udp.reply});
    REQUIRE(conns.size() == 2);
    CHECK(find(conns, tcp.original.key)->reply.packets == 2);
    CHECK(find(conns, udp.original.key)->reply.packets == 4);
}
