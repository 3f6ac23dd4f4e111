#include "kernel/instance_maps.h"

#include <bpf/bpf.h>
#include <net/if.h>

#include <cerrno>
#include <cstring>
#include <tuple>

#include "kernel/attach.h"
#include "kernel/interfaces.h"
#include "kernel/kernel_error.h"
#include "kernel/map_io.h"
#include "kernel/pin_dir.h"
#include "xnat/abi.h"
#include "xnat/maps.h"

namespace xnat {

const PinnedMap kPinnedMaps[15] = {
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
    {XNAT_STR(XNAT_MAP_EVICT), &MapSet::evict},
    {XNAT_STR(XNAT_MAP_HOSTS), &MapSet::hosts},
    {XNAT_STR(XNAT_MAP_FRAG), &MapSet::frags},
    {XNAT_STR(XNAT_MAP_MAPPED), &MapSet::mapped, true},
};

namespace {

// An instance pinned by another layout is refused rather than misread.
Result<void> check_layout(const std::string &pin_dir, const xnat_config &cfg)
{
    if (cfg.abi_version == XNAT_ABI_VERSION)
        return {};
    return system_error("instance at " + pin_dir + " was pinned by an xnat with map layout " +
                        std::to_string(cfg.abi_version) + ", this build reads layout " +
                        std::to_string(XNAT_ABI_VERSION) + "; unload it with the xnat-load that loaded it");
}

} // namespace

Result<InstanceMaps> InstanceMaps::open(const std::string &pin_dir)
{
    if (auto r = require_instance(pin_dir); !r)
        return r.error();
    InstanceMaps m;
    for (size_t i = 0; i < std::size(kPinnedMaps); ++i) {
        auto fd = open_pinned(pin_dir + "/" + kPinnedMaps[i].name);
        if (!fd && kPinnedMaps[i].optional && fd.error().errno_code == ENOENT)
            continue;
        if (!fd)
            return with_context("instance at " + pin_dir + " is incomplete or stale", fd.error());
        m.fds_[i] = std::move(*fd);
    }
    auto cfg = read_config(m.view());
    if (!cfg)
        return cfg.error();
    if (auto r = check_layout(pin_dir, *cfg); !r)
        return r.error();
    // Pins outlive the interfaces they were attached to (deleted, or moved away): such an
    // instance translates nothing, and reading or changing it would only mislead.
    if (cfg->netns_ino == current_netns_ino()) {
        for (auto [label, ifindex, name] : {std::tuple{"WAN", cfg->wan_ifindex, cfg->wan_name},
                                            std::tuple{"LAN", cfg->lan_ifindex, cfg->lan_name}}) {
            char now[IF_NAMESIZE] = {};
            if (!::if_indextoname(ifindex, now))
                return system_error("instance at " + pin_dir + " is stale: its " + label + " interface " +
                                        std::string(name, strnlen(name, XNAT_IFNAME_LEN)) +
                                        " no longer exists, so nothing runs; remove it with "
                                        "xnat-load --unload --pin-dir " + pin_dir,
                                    ENODEV);
        }
    }
    if (auto prog = open_pinned(pin_dir + "/" + kFlushProgPin))
        m.flush_prog_ = std::move(*prog);
    if (auto sweeper = open_pinned(pin_dir + "/" + kSweepPin))
        m.sweeper_ = std::move(*sweeper);
    return m;
}

Result<xnat_config> read_pinned_config(const std::string &pin_dir)
{
    if (auto r = require_instance(pin_dir); !r)
        return r.error();
    const std::string path = pin_dir + "/" XNAT_STR(XNAT_MAP_CONFIG);
    auto fd = open_pinned(path);
    if (!fd)
        return fd.error();
    // A config map of another layout is not read into this one.
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd->get(), &info, &len) != 0)
        return kernel_error("inspect " + path, errno);
    if (info.value_size != sizeof(xnat_config))
        return system_error("instance at " + pin_dir + " was pinned by an xnat with another map layout; "
                            "unload it with the xnat-load that loaded it");
    MapSet set;
    set.config = fd->get();
    auto cfg = read_config(set);
    if (!cfg)
        return cfg.error();
    if (auto r = check_layout(pin_dir, *cfg); !r)
        return r.error();
    return *cfg;
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
