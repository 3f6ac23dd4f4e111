// Forwards xnat-portmapd made belong to the hosts that asked, not to the config: a reload in
// place keeps them, on the WAN address the reload found, unless the new config's own forwards
// now claim their port (the daemon then drops the mapping, and the host's renewal gets another).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/stored_rule.h"

namespace xnat {

struct KeptMapped {
    std::vector<StoredRule> rules; // the config's, then the kept mapped ones, ids following on
    size_t kept = 0;
    size_t dropped = 0;
};

// `wan_addr`: the WAN's address now (nullopt: none, and the kept forwards are parked).
KeptMapped keep_mapped_forwards(std::vector<StoredRule> config_rules, const std::vector<StoredRule> &running,
                                std::optional<uint32_t> wan_addr);

} // namespace xnat
