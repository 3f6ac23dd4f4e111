// Masquerade (source NAT) rules: their config form, validation, and the trie entries the
// datapath matches.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/net.h"
#include "core/result.h"
#include "xnat/maps.h"
#include "xnat/rules.h"

namespace xnat {

enum class Filtering : uint8_t {
    address_port_dependent, // RFC 4787 REQ-8's recommendation: only the remote a mapping was made for
    endpoint_independent,   // "full cone": any remote may use a live mapping
};

struct Masquerade {
    Prefix source;
    std::vector<Prefix> not_destination;
    std::optional<uint32_t> to_source; // unset: the WAN interface's address when loaded
    bool to_source_is_wan = false;     // to_source was filled in from the WAN address
    uint16_t port_lo = 1024;
    uint16_t port_hi = 65535;
    Filtering filtering = Filtering::address_port_dependent;
    bool operator==(const Masquerade &) const = default;
};

Result<Masquerade> parse_masquerade(const nlohmann::json &j, const std::string &path);
// Refuses two rules for the same source prefix: the most specific prefix decides, so two
// equal ones would leave the choice to chance.
Result<void> check_masquerade_set(const std::vector<Masquerade> &rules);

// Settles what depends on the machine: a missing to_source becomes the WAN address, and a port
// range entirely inside the gateway's own ephemeral ports is refused (those are never handed
// out, so nothing would be left). With park_without_address (xnat-load --follow-wan, which
// fills it in as soon as the WAN has one), a WAN without an address leaves those rules parked:
// to_source unset, so the datapath translates nothing for them yet.
Result<std::vector<Masquerade>> resolve_masquerade(std::vector<Masquerade> rules,
                                                   std::optional<uint32_t> wan_addr,
                                                   const std::string &wan_name, uint16_t local_lo,
                                                   uint16_t local_hi, bool park_without_address = false);

struct MasqEntry {
    xnat_masq_key key;
    xnat_masq_rule value;
};
// Rule ids follow the list's order. Every to_source must be resolved.
std::vector<MasqEntry> masq_trie_entries(const std::vector<Masquerade> &rules);

xnat_masq_desc to_masq_desc(const Masquerade &m, uint16_t id);
Masquerade from_masq_desc(const xnat_masq_desc &d);

nlohmann::json masquerade_to_json(const Masquerade &m);
std::string describe(const Masquerade &m);

} // namespace xnat
