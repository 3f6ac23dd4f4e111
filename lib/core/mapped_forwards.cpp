#include "core/mapped_forwards.h"

#include <algorithm>

#include "xnat/maps.h"

namespace xnat {

namespace {

// Whether a config forward claims what the mapped one (placed on `addr`) would match.
bool claims(const PortForward &cfg, const PortForward &mapped, uint32_t addr)
{
    if (cfg.side != Side::wan || cfg.proto != mapped.proto)
        return false;
    if (mapped.from.port_hi < cfg.from.port_lo || cfg.from.port_hi < mapped.from.port_lo)
        return false;
    // Both on the WAN's address, or the config's block holds it (unknown while there is none).
    if (cfg.from_wan || addr == 0)
        return true;
    Endpoint block = cfg.from;
    return block.prefix_len == 0 || ((addr ^ block.addr) >> (32 - block.prefix_len)) == 0;
}

} // namespace

KeptMapped keep_mapped_forwards(std::vector<StoredRule> config_rules, const std::vector<StoredRule> &running,
                                std::optional<uint32_t> wan_addr)
{
    KeptMapped out;
    uint32_t addr = wan_addr.value_or(0);
    uint16_t next_id = static_cast<uint16_t>(config_rules.size());
    out.rules = std::move(config_rules);
    size_t config_count = out.rules.size();
    for (const StoredRule &r : running) {
        if (!r.fwd.mapped)
            continue;
        bool taken =
            std::any_of(out.rules.begin(), out.rules.begin() + static_cast<std::ptrdiff_t>(config_count),
                        [&](const StoredRule &c) { return claims(c.fwd, r.fwd, addr); });
        if (taken || out.rules.size() >= XNAT_MAX_RULES) {
            ++out.dropped;
            continue;
        }
        StoredRule kept = r;
        kept.id = next_id++;
        if (kept.fwd.from_wan)
            kept.fwd.from.addr = addr;
        out.rules.push_back(kept);
        ++out.kept;
    }
    return out;
}

} // namespace xnat
