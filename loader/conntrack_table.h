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

Result<std::vector<Connection>> read_connections(const MapSet &maps);
// Ends every flow through the instance's flush program, which deletes both halves and drops
// their source-NAT mapping references exactly as the datapath does; returns how many. With
// only_addr (host order) set, ends only the flows that have that address in a tuple.
Result<size_t> flush_connections(int flush_prog_fd, uint32_t only_addr = 0);
// Number of map entries (two per flow).
Result<size_t> count_ct_entries(const MapSet &maps);

using CounterValues = std::array<uint64_t, XNAT_CNT_COUNT>;
// Sums the per-CPU slots.
Result<CounterValues> read_counters(const MapSet &maps);

// CLOCK_MONOTONIC in nanoseconds: the clock the datapath stamps entries with.
uint64_t monotonic_now_ns();

} // namespace xnat
