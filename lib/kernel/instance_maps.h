// The maps of one xnat instance, whether just loaded (skeleton) or opened from their pins.
#pragma once

#include <iterator>
#include <string>

#include "core/result.h"
#include "kernel/pin_dir.h"
#include "kernel/unique_fd.h"
#include "xnat/config.h"
#include "xnat/maps.h"
#include "xnat/sweep.h"

namespace xnat {

// Non-owning view: what the map operations take.
struct MapSet {
    int ct = -1;
    int fwd = -1;
    int rules = -1;
    int config = -1;
    int counters = -1;
    int tx_ports = -1;
    int masq = -1;
    int masq_rules = -1;
    int snat = -1;
    int eim = -1;
    int rule_hits = -1;
    int evict = -1;
    int hosts = -1;
    int frags = -1;
    int mapped = -1; // -1 also in an instance pinned before it existed (PinnedMap::optional)
};

// Every pinned map, by the name it is pinned under, and where its fd goes in a MapSet.
struct PinnedMap {
    const char *name;
    int MapSet::*slot;
    // Added after instances were already running, without a layout change: one pinned by an
    // older build lacks it and still opens, with the slot at -1, so that xnat-map keeps
    // working on it and xnat-load can reload it in place (libbpf then creates and pins the map).
    // Whatever uses such a map must do without it when its fd is -1.
    bool optional = false;
};
extern const PinnedMap kPinnedMaps[15];

// The pinned flush program, run by xnat-map flush.
inline constexpr const char *kFlushProgPin = "prog_flush";
// The expiry sweeper of the programs loaded last; replaced by each load (see bpf/sweeper.h).
inline constexpr const char *kSweepPin = XNAT_STR(XNAT_MAP_SWEEP);

// Owning: the pinned maps of a running instance.
class InstanceMaps {
  public:
    // Opens every pinned map and checks that the instance was written by a compatible build.
    static Result<InstanceMaps> open(const std::string &pin_dir);
    MapSet view() const;

    // The flush program pinned beside the maps.
    int flush_prog() const { return flush_prog_.get(); }
    // The sweeper map (-1 if none is pinned).
    int sweeper() const { return sweeper_.get(); }

  private:
    UniqueFd fds_[std::size(kPinnedMaps)];
    UniqueFd flush_prog_;
    UniqueFd sweeper_;
};

Result<xnat_config> read_config(const MapSet &maps);
// The config of the instance pinned at pin_dir, read from its config pin alone (unload needs no
// more, so a half-removed instance can still be unloaded).
Result<xnat_config> read_pinned_config(const std::string &pin_dir);
// The sweeper's statistics, read from its map's value.
Result<xnat_sweep_stats> read_sweep_stats(int sweeper_fd);
Result<void> write_config(const MapSet &maps, const xnat_config &cfg);

} // namespace xnat
