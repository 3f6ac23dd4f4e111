// What each internal host holds through source NAT, read from the instance's host map: the
// figures the per-host quotas (limits.host_connections, limits.host_ports) are enforced on.
#pragma once

#include <cstdint>
#include <vector>

#include "instance_maps.h"
#include "result.h"

namespace xnat {

struct HostUsage {
    uint32_t addr = 0; // host order
    uint32_t connections = 0;
    uint32_t ports = 0;
    bool operator==(const HostUsage &) const = default;
};

// Hosts holding anything, most connections first (then most ports, then by address). Entries
// that hold nothing wait for the sweeper to reclaim them and are left out.
Result<std::vector<HostUsage>> read_host_usage(const MapSet &maps);

} // namespace xnat
