// The config's "port_mapping" section: what xnat-portmapd may hand out to LAN hosts that ask
// for a forward (NAT-PMP, PCP). The loader checks it against the rest of the config, so that a
// port the daemon hands out can never be one a static forward or masquerade owns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/net.h"
#include "core/result.h"

namespace xnat {

struct PortMappingConfig {
    uint16_t port_lo = 0; // the external ports handed out, inclusive
    uint16_t port_hi = 0;
    uint32_t per_host = 16;
    // RFC 6887 §15: the minimum SHOULD be 120 s; a day is a fair maximum.
    uint32_t min_lifetime = 120;
    uint32_t max_lifetime = 86400;
    // The sources served. Empty: the subnets of the LAN interface's own addresses.
    std::vector<Prefix> clients{};
    bool operator==(const PortMappingConfig &) const = default;
};

// {"ports": "40000-40999", "per_host": 16, "min_lifetime": 120, "max_lifetime": 86400,
//  "clients": ["10.0.0.0/24"]}; errors name the JSON path under "port_mapping".
Result<PortMappingConfig> parse_port_mapping(const nlohmann::json &j);
nlohmann::json port_mapping_to_json(const PortMappingConfig &p);

// Whether two inclusive port ranges share a port.
constexpr bool ports_overlap(uint16_t a_lo, uint16_t a_hi, uint16_t b_lo, uint16_t b_hi)
{
    return a_lo <= b_hi && b_lo <= a_hi;
}

} // namespace xnat
