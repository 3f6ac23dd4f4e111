// Reading and clearing the connection table and the outcome counters.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "instance_maps.h"
#include "result.h"
#include "xnat/counters.h"
#include "xnat/ct.h"

namespace xnat {

// A flow as both of its halves describe it.
struct Connection {
    xnat_ct_key original_key{};
    xnat_ct_entry original{};
    xnat_ct_entry reply{}; // the reply key is original.peer
    bool reply_missing = false;
};

// One entry of the connection table as stored: a half of a flow.
struct CtHalf {
    xnat_ct_key key{};
    xnat_ct_entry entry{};
};

// Pairs the halves of a table dump: one Connection per original half, with its reply half
// when the dump has it, else reply_missing. Reply halves without an original are left out,
// as the datapath treats them as already expired.
std::vector<Connection> pair_halves(const std::vector<CtHalf> &halves);

// The table as one batched read sees it.
struct ConnectionTable {
    std::vector<Connection> connections;
    size_t entries = 0; // map entries read, halves without a peer included
};
Result<ConnectionTable> read_connection_table(const MapSet &maps);
Result<std::vector<Connection>> read_connections(const MapSet &maps);
// Ends every flow through the instance's flush program, which deletes both halves and drops
// their source-NAT mapping references exactly as the datapath does; returns how many. With
// only_addr (host order) set, ends only the flows that have that address in a tuple.
Result<size_t> flush_connections(int flush_prog_fd, uint32_t only_addr = 0);
// Number of map entries (two per flow), by reading the whole table in batches: O(entries).
// For the number of connections, live_connections over the counters is O(1).
Result<size_t> count_ct_entries(const MapSet &maps);

using CounterValues = std::array<uint64_t, XNAT_CNT_COUNT>;
// Sums the per-CPU slots.
Result<CounterValues> read_counters(const MapSet &maps);

// Connections in the table, from the counters alone: new_flow - flow_ended, which the datapath
// keeps exact (every flow is counted once in each, see docs/PERFORMANCE.md, "Control plane").
// The result is clamped to [0, max_connections] because the difference is exact only at rest:
// the two sums are read one CPU slot after another while packets keep counting, and a half-made
// flow that another path ends is counted ended before its creator counts it created, so a read
// can see a few more ended than created (on an empty table: below zero) or, the other way round,
// a few more created than the table can hold. A gauge must not wrap to 2^64 or exceed capacity.
constexpr uint64_t live_connections(const CounterValues &c, uint64_t max_connections)
{
    uint64_t created = c[XNAT_CNT_NEW_FLOW], ended = c[XNAT_CNT_FLOW_ENDED];
    if (ended >= created)
        return 0;
    uint64_t n = created - ended;
    return n < max_connections ? n : max_connections;
}

// CLOCK_MONOTONIC in nanoseconds: the clock the datapath stamps entries with.
uint64_t monotonic_now_ns();

} // namespace xnat
