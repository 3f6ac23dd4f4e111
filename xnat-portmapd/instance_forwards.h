// The daemon's mappings as forwards in the running instance: "wan:EXT -> host:INT", marked as
// mapped (XNAT_FWD_F_MAPPED) so that they are told apart from the operator's and found again
// after a restart. Every change holds the instance's lock, as xnat-map's do.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/port_mapping.h"
#include "core/result.h"
#include "kernel/instance_maps.h"
#include "portmap/request_handler.h"

namespace xnat {

class InstanceForwards : public portmap::Forwards
{
  public:
    static Result<InstanceForwards> open(const std::string &pin_dir);

    Result<void> add(const portmap::Mapping &m) override;
    void renew(const portmap::Mapping &) override {} // the forward stays; only the state file changes
    void remove(const portmap::Mapping &m) override;
    // The gateway's ephemeral ports and bound sockets, a forward the operator made (even on a
    // range), masquerade's port ranges, and its mappings in use on the WAN address.
    bool taken(portmap::Protocol proto, uint16_t external_port) override;

    // The mapped forwards the instance holds (expiry unknown: 0), e.g. those a killed daemon left.
    Result<std::vector<portmap::Mapping>> mapped() const;
    // Whether this mapping's forward is in the instance.
    Result<bool> installed(const portmap::Mapping &m) const;
    // The address the instance's WAN-following rules use; nullopt while the WAN has none.
    Result<std::optional<uint32_t>> wan_address() const;
    Result<unsigned> lan_ifindex() const;
    // Refuses a policy whose ports the running instance already uses for something else.
    Result<void> check_policy(const PortMappingConfig &pm) const;
    // Still the instance pinned at the pin dir (an unload, or an unload and load, replaces it).
    bool still_pinned() const;

  private:
    InstanceForwards(std::string pin_dir, InstanceMaps maps, uint32_t config_map_id)
        : pin_dir_(std::move(pin_dir)), maps_(std::move(maps)), config_map_id_(config_map_id)
    {
    }

    std::string pin_dir_;
    InstanceMaps maps_;
    uint32_t config_map_id_ = 0;
};

} // namespace xnat
