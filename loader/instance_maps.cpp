#include "instance_maps.h"

#include <cstring>

#include "attach.h"
#include "map_io.h"
#include "xnat/abi.h"
#include "xnat/maps.h"

namespace xnat {

const PinnedMap kPinnedMaps[11] = {
    {XNAT_STR(XNAT_MAP_CT), &MapSet::ct},
    {XNAT_STR(XNAT_MAP_FWD), &MapSet::fwd},
    {XNAT_STR(XNAT_MAP_RULES), &MapSet::rules},
    {XNAT_STR(XNAT_MAP_CONFIG), &MapSet::config},
    {XNAT_STR(XNAT_MAP_COUNTERS), &MapSet::counters},
    {XNAT_STR(XNAT_MAP_TX_PORTS), &MapSet::tx_ports},
    {XNAT_STR(XNAT_MAP_MASQ), &MapSet::masq},
    {XNAT_STR(XNAT_MAP_MASQ_RULES), &MapSet::masq_rules},
    {XNAT_STR(XNAT_MAP_SNAT), &MapSet::snat},
    {XNAT_STR(XNAT_MAP_EIM), &MapSet::eim},
    {XNAT_STR(XNAT_MAP_RULE_HITS), &MapSet::rule_hits},
};

Result<InstanceMaps> InstanceMaps::open(const std::string &pin_dir)
{
    if (auto r = require_instance(pin_dir); !r)
        return r.error();
    InstanceMaps m;
    for (size_t i = 0; i < std::size(kPinnedMaps); ++i) {
        auto fd = open_pinned(pin_dir + "/" + kPinnedMaps[i].name);
        if (!fd)
            return with_context("instance at " + pin_dir + " is incomplete or stale", fd.error());
        m.fds_[i] = std::move(*fd);
    }
    auto cfg = read_config(m.view());
    if (!cfg)
        return cfg.error();
    if (cfg->abi_version != XNAT_ABI_VERSION)
        return system_error("instance at " + pin_dir + " was pinned by an xnat with map layout " +
                            std::to_string(cfg->abi_version) + ", this build reads layout " +
                            std::to_string(XNAT_ABI_VERSION) + "; unload it with the xnat-load that loaded it");
    if (auto prog = open_pinned(pin_dir + "/" + kFlushProgPin))
        m.flush_prog_ = std::move(*prog);
    if (auto sweeper = open_pinned(pin_dir + "/" + kSweepPin))
        m.sweeper_ = std::move(*sweeper);
    return m;
}

MapSet InstanceMaps::view() const
{
    MapSet set;
    for (size_t i = 0; i < std::size(kPinnedMaps); ++i)
        set.*kPinnedMaps[i].slot = fds_[i].get();
    return set;
}

Result<xnat_config> read_config(const MapSet &maps)
{
    uint32_t zero = 0;
    auto cfg = map_lookup<uint32_t, xnat_config>(maps.config, zero, XNAT_STR(XNAT_MAP_CONFIG));
    if (!cfg)
        return cfg.error();
    return cfg->value_or(xnat_config{});
}

Result<xnat_sweep_stats> read_sweep_stats(int sweeper_fd)
{
    uint8_t value[XNAT_SWEEP_VALUE_SIZE] = {};
    uint32_t zero = 0;
    if (bpf_map_lookup_elem(sweeper_fd, &zero, value) != 0)
        return kernel_error(std::string("read ") + kSweepPin, errno);
    xnat_sweep_stats stats{};
    std::memcpy(&stats, value + XNAT_SWEEP_STATS_OFF, sizeof(stats));
    return stats;
}

Result<void> write_config(const MapSet &maps, const xnat_config &cfg)
{
    uint32_t zero = 0;
    return map_update(maps.config, zero, cfg, XNAT_STR(XNAT_MAP_CONFIG));
}

} // namespace xnat
