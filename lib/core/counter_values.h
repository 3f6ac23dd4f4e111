// The datapath's counters as one read sums them, and what follows from them alone.
#pragma once

#include <array>
#include <cstdint>

#include "xnat/counters.h"

namespace xnat {

using CounterValues = std::array<uint64_t, XNAT_CNT_COUNT>;

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

} // namespace xnat
