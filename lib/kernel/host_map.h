// What each internal host holds through source NAT, read from the instance's host map.
#pragma once

#include <cstdint>
#include <vector>

#include "core/host_usage.h"
#include "core/result.h"
#include "kernel/instance_maps.h"

namespace xnat {

// Hosts holding anything, most connections first (then most ports, then by address). Entries
// that hold nothing wait for the sweeper to reclaim them and are left out.
Result<std::vector<HostUsage>> read_host_usage(const MapSet &maps);

} // namespace xnat
