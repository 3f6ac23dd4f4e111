// The maps of one xnat instance, whether just loaded (skeleton) or opened from their pins.
#pragma once

#include <string>

#include "pin_dir.h"
#include "result.h"
#include "unique_fd.h"
#include "xnat/config.h"

namespace xnat {

// Non-owning view: what the map operations take.
struct MapSet {
    int ct = -1;
    int fwd = -1;
    int rules = -1;
    int config = -1;
    int counters = -1;
    int tx_ports = -1;
};

// Owning: the pinned maps of a running instance.
class InstanceMaps {
  public:
    // Opens every pinned map and checks that the instance was written by a compatible build.
    static Result<InstanceMaps> open(const std::string &pin_dir);
    MapSet view() const;

  private:
    UniqueFd ct_, fwd_, rules_, config_, counters_, tx_ports_;
};

Result<xnat_config> read_config(const MapSet &maps);
Result<void> write_config(const MapSet &maps, const xnat_config &cfg);

} // namespace xnat
