// A port forward as a running instance holds it: the forward with the id the datapath counts
// its flows under.
#pragma once

#include <cstdint>
#include <vector>

#include "core/nat_config.h"

namespace xnat {

struct StoredRule {
    uint16_t id = 0;
    PortForward fwd;
};

// Rule set from a config: ids follow the config's order.
inline std::vector<StoredRule> rules_from_config(const Config &cfg)
{
    std::vector<StoredRule> rules;
    for (size_t i = 0; i < cfg.port_forwards.size(); ++i)
        rules.push_back({static_cast<uint16_t>(i), cfg.port_forwards[i]});
    return rules;
}

} // namespace xnat
