// Forward rules in a running instance: the rules map (what was configured) and the forward
// table the datapath reads (built from it and swapped in whole).
#pragma once

#include <cstdint>
#include <vector>

#include "config.h"
#include "instance_maps.h"
#include "result.h"

namespace xnat {

struct StoredRule {
    uint16_t id = 0;
    PortForward fwd;
};

Result<std::vector<StoredRule>> read_rules(const MapSet &maps);

// Replaces the whole rule set: validates it, builds a new forward table, swaps it in so a
// packet sees either the old rules or the new ones, then rewrites the rules map.
Result<void> install_rules(const MapSet &maps, const std::vector<StoredRule> &rules);

// Rule set from a config: ids follow the config's order.
std::vector<StoredRule> rules_from_config(const Config &cfg);

// Adds one rule to the running set; returns its id.
Result<uint16_t> add_rule(const MapSet &maps, const PortForward &fwd);

// Removes the rule with this protocol, side and `from`; returns it.
Result<StoredRule> delete_rule(const MapSet &maps, Proto proto, Side side, const Endpoint &from);

} // namespace xnat
