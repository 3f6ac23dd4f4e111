// What one internal host holds through source NAT: the figures the per-host quotas
// (limits.host_connections, limits.host_ports) are enforced on.
#pragma once

#include <cstdint>

namespace xnat {

struct HostUsage {
    uint32_t addr = 0; // host order
    uint32_t connections = 0;
    uint32_t ports = 0;
    bool operator==(const HostUsage &) const = default;
};

} // namespace xnat
