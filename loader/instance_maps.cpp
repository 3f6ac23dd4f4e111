#include "instance_maps.h"

#include "attach.h"
#include "map_io.h"
#include "xnat/abi.h"
#include "xnat/maps.h"

namespace xnat {

Result<InstanceMaps> InstanceMaps::open(const std::string &pin_dir)
{
    if (auto r = require_instance(pin_dir); !r)
        return r.error();
    InstanceMaps m;
    struct Slot {
        const char *name;
        UniqueFd *fd;
    } slots[] = {{XNAT_STR(XNAT_MAP_CT), &m.ct_},         {XNAT_STR(XNAT_MAP_FWD), &m.fwd_},
                 {XNAT_STR(XNAT_MAP_RULES), &m.rules_},   {XNAT_STR(XNAT_MAP_CONFIG), &m.config_},
                 {XNAT_STR(XNAT_MAP_COUNTERS), &m.counters_}, {XNAT_STR(XNAT_MAP_TX_PORTS), &m.tx_ports_}};
    for (auto &s : slots) {
        auto fd = open_pinned(pin_dir + "/" + s.name);
        if (!fd)
            return with_context("instance at " + pin_dir + " is incomplete or stale", fd.error());
        *s.fd = std::move(*fd);
    }
    auto cfg = read_config(m.view());
    if (!cfg)
        return cfg.error();
    if (cfg->abi_version != XNAT_ABI_VERSION)
        return system_error("instance at " + pin_dir + " was pinned by an xnat with map layout " +
                            std::to_string(cfg->abi_version) + ", this build reads layout " +
                            std::to_string(XNAT_ABI_VERSION) + "; unload it with the xnat-load that loaded it");
    return m;
}

MapSet InstanceMaps::view() const
{
    return MapSet{ct_.get(), fwd_.get(), rules_.get(), config_.get(), counters_.get(), tx_ports_.get()};
}

Result<xnat_config> read_config(const MapSet &maps)
{
    uint32_t zero = 0;
    auto cfg = map_lookup<uint32_t, xnat_config>(maps.config, zero, XNAT_STR(XNAT_MAP_CONFIG));
    if (!cfg)
        return cfg.error();
    return cfg->value_or(xnat_config{});
}

Result<void> write_config(const MapSet &maps, const xnat_config &cfg)
{
    uint32_t zero = 0;
    return map_update(maps.config, zero, cfg, XNAT_STR(XNAT_MAP_CONFIG));
}

} // namespace xnat
