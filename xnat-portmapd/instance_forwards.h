// The daemon's mappings as forwards in the running instance: "wan:EXT -> host:INT", marked as
// mapped (XNAT_FWD_F_MAPPED) so that they are told apart from the operator's and found again
// after a restart. The caller holds the instance's lock (lock()) across a refresh() and the
// reads and changes that follow, as xnat-map does for its changes: a reload or an xnat-map
// change never interleaves with them.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/masquerade.h"
#include "core/port_mapping.h"
#include "core/result.h"
#include "core/stored_rule.h"
#include "kernel/instance_maps.h"
#include "kernel/pin_dir.h"
#include "portmap/request_handler.h"

namespace xnat {

using LogSink = std::function<void(const std::string &)>;

class InstanceForwards : public portmap::Forwards
{
  public:
    static Result<InstanceForwards> open(const std::string &pin_dir, LogSink log);

    Result<PinDir> lock() const;
    // Reads the rules, the masquerade rules and the WAN address once: what the calls below
    // look at, until the next refresh (add and remove keep it current).
    Result<void> refresh();

    // Installs the mapping's forward; one already there is fine.
    Result<void> add(const portmap::Mapping &m) override;
    void renew(const portmap::Mapping &) override {} // the forward stays; only the state file changes
    // A removal the kernel refuses is logged and kept for retry_removals().
    void remove(const portmap::Mapping &m) override;
    void retry_removals();
    // The gateway's ephemeral ports and bound sockets, any other forward on the port (the
    // operator's, even a range; a mapped one the table does not know), masquerade's port
    // ranges, and its mappings in use on the WAN address but host:internal_port's own.
    bool taken(portmap::Protocol proto, uint16_t external_port, uint32_t host,
               uint16_t internal_port) override;

    // The mapped forwards the instance holds (expiry unknown: 0), e.g. those a killed daemon left.
    std::vector<portmap::Mapping> mapped() const;
    bool installed(const portmap::Mapping &m) const;
    // 0 while the WAN has no address.
    uint32_t wan_address() const
    {
        return wan_;
    }
    Result<unsigned> lan_ifindex() const;
    // Refuses a policy whose ports the running instance gives masquerade, or that lies inside the
    // gateway's ephemeral ports. (A forward the operator added inside the range since is only
    // left out of it: taken() says so.)
    Result<void> check_policy(const PortMappingConfig &pm) const;
    // Still the instance pinned at the pin dir (an unload, or an unload and load, replaces it).
    bool still_pinned() const;

  private:
    InstanceForwards(std::string pin_dir, InstanceMaps maps, uint32_t config_map_id, LogSink log)
        : pin_dir_(std::move(pin_dir)), maps_(std::move(maps)), config_map_id_(config_map_id),
          log_(std::move(log))
    {
    }

    std::string pin_dir_;
    InstanceMaps maps_;
    uint32_t config_map_id_ = 0;
    LogSink log_;
    std::vector<StoredRule> rules_;
    std::vector<Masquerade> masq_;
    uint32_t wan_ = 0;
    std::vector<portmap::Mapping> unremoved_; // their mapping is over, their forward is not
};

} // namespace xnat
