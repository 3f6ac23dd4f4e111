// Reading and clearing the connection table and the outcome counters.
#pragma once

#include <cstdint>
#include <vector>

#include "core/connection.h"
#include "core/counter_values.h"
#include "core/result.h"
#include "kernel/instance_maps.h"

namespace xnat {

Result<ConnectionTable> read_connection_table(const MapSet &maps);
Result<std::vector<Connection>> read_connections(const MapSet &maps);
// Ends every flow through the instance's flush program, which deletes both halves and drops
// their source-NAT mapping references exactly as the datapath does; returns how many. With
// only_addr (host order) set, ends only the flows that have that address in a tuple.
Result<size_t> flush_connections(int flush_prog_fd, uint32_t only_addr = 0);
// Number of map entries (two per flow), by reading the whole table in batches: O(entries).
// For the number of connections, live_connections over the counters is O(1).
Result<size_t> count_ct_entries(const MapSet &maps);

// Sums the per-CPU slots.
Result<CounterValues> read_counters(const MapSet &maps);

// CLOCK_MONOTONIC in nanoseconds: the clock the datapath stamps entries with.
uint64_t monotonic_now_ns();

} // namespace xnat
