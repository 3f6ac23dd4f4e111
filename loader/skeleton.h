// RAII ownership of the generated libbpf skeleton (build/xnat.skel.h).
#pragma once

#include <memory>

#include "xnat.skel.h"

namespace xnat {

struct SkeletonDeleter {
    void operator()(xnat_bpf *skel) const noexcept { xnat_bpf__destroy(skel); }
};
using Skeleton = std::unique_ptr<xnat_bpf, SkeletonDeleter>;

} // namespace xnat
