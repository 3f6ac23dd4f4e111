// RAII ownership of the generated libbpf skeleton (build/generated/xnat_bpf.skel.h).
#pragma once

#include <bpf/libbpf.h>

#include <memory>
#include <string>

#include "core/result.h"
#include "kernel/instance_maps.h"
#include "xnat_bpf.skel.h"

namespace xnat {

struct SkeletonDeleter {
    void operator()(xnat_bpf *skel) const noexcept { xnat_bpf__destroy(skel); }
};
using Skeleton = std::unique_ptr<xnat_bpf, SkeletonDeleter>;

// Opens the BPF object built into the loader, or, given a path, that object file instead (a
// rebuilt xnat_bpf.bpf.o). The file must define every program and map the loader knows.
Result<Skeleton> open_skeleton(const std::string &object_path);

// Sizes an opened, not yet loaded object's connection tables for max_connections flows and
// max_mappings source-NAT mappings (Config::mapping_capacity). Two entries per flow; a mapping
// is always held by a flow, so no more mappings than flows, and no more hosts with something
// charged than flows.
Result<void> size_connection_tables(const Skeleton &skel, uint32_t max_connections, uint32_t max_mappings);

// Starts the loaded object's expiry sweeper (bpf/sweeper.h), once.
Result<void> arm_sweeper(const Skeleton &skel);

// The loaded object's maps, for the same operations that run on a pinned instance.
inline MapSet skeleton_maps(const Skeleton &skel)
{
    MapSet set;
    for (const PinnedMap &m : kPinnedMaps)
        set.*m.slot = bpf_object__find_map_fd_by_name(skel->obj, m.name);
    return set;
}

} // namespace xnat
