// Rules in a running instance. The datapath reads rule tables through rule generations: a new
// forward table or masquerade trie is built whole, put into the idle generation's slot, and
// made current by one write of the config. Beside them, the rules map and the masquerade rules
// map keep the rules as configured, for listing and for rebuilding.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/nat_config.h"
#include "core/result.h"
#include "core/stored_rule.h"
#include "kernel/instance_maps.h"
#include "kernel/unique_fd.h"

namespace xnat {

Result<std::vector<StoredRule>> read_rules(const MapSet &maps);
Result<std::vector<Masquerade>> read_masquerade(const MapSet &maps);
// New tables for the next generation; an invalid fd keeps the current table.
struct RuleTables {
    UniqueFd fwd;
    UniqueFd masq;
};
// Validates the rules (overlaps, table size) and builds their forward table.
Result<UniqueFd> build_forward_table(const std::vector<StoredRule> &rules);
Result<UniqueFd> build_masq_table(const std::vector<Masquerade> &rules);

// Makes `tables` current: fills the idle generation (with the current table where none is
// given), then writes `cfg` with that generation in force, in one map update.
Result<void> publish(const MapSet &maps, const RuleTables &tables, xnat_config cfg);

// Rewrites the rules and masquerade maps to hold exactly these. Rule records also rewrite the
// mapped ports (write_mapped_ports): every path that makes a forward set current records it here.
Result<void> write_rule_records(const MapSet &maps, const std::vector<StoredRule> &rules);
// Rewrites the mapped-port map (XNAT_MAP_MAPPED) to hold exactly one entry per mapped
// single-port WAN-side forward of `rules`, internal endpoint -> external port, and nothing
// else. Two such forwards to one internal endpoint share a key: the lowest id keeps it. An
// instance pinned before the map existed has none (fd -1): nothing to do.
Result<void> write_mapped_ports(const MapSet &maps, const std::vector<StoredRule> &rules);
Result<void> write_masq_records(const MapSet &maps, const std::vector<Masquerade> &rules);

// Flows created per rule: forward rule i at [i], masquerade rule j at [XNAT_MAX_RULES + j].
Result<std::vector<uint64_t>> read_rule_hits(const MapSet &maps);
// Starts hit slots from zero (all of them when `slots` is empty).
Result<void> reset_rule_hits(const MapSet &maps, const std::vector<uint32_t> &slots = {});

// The address a running instance's WAN-following rules use: that of its masquerade rules
// without a to_source or of its wan: forwards, so that a new one joins them; if none has one,
// the WAN interface's address now. nullopt: none at all.
Result<std::optional<uint32_t>> wan_address_in_use(const MapSet &maps);
// A forward as a running instance takes it: a wan: forward on wan_address_in_use, or parked
// (installed by xnat-load --follow-wan when the WAN has an address).
Result<PortForward> place_forward(const MapSet &maps, PortForward fwd);

// Adds one forward (placed) to the running set; returns its id.
Result<uint16_t> add_rule(const MapSet &maps, const PortForward &fwd);
// Removes the forward with this protocol, side and `from` (a wan: one by its ports); returns it.
Result<StoredRule> delete_rule(const MapSet &maps, Proto proto, Side side, const ForwardFrom &from);

} // namespace xnat
