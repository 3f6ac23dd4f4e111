// Loaded copies of the xnat BPF object, kept between fixtures.
//
// Why: loading the object means verifying eight programs. That costs about 4 s on the host and
// 25 s on Debian 6.1 under QEMU's TCG, and Catch2 builds a fixture for every section it runs:
// loading afresh each time made the kernel matrix's BPF suite take more than an hour. A copy
// that a fixture hands back is reset to what a fresh load holds (every map emptied or zeroed,
// the sweeper stopped) before another fixture gets it, so a test cannot see another's state.
// XNAT_TEST_FRESH_OBJECTS=1 loads afresh every time, to rule the reuse out when a test fails.
#pragma once

#include <cstdint>

#include "kernel/skeleton.h"

namespace xnat::test {

// One loaded object, its tables sized for max_connections, owned until destruction, which hands
// it back to the pool.
class PooledObject {
  public:
    explicit PooledObject(uint32_t max_connections);
    ~PooledObject();
    PooledObject(const PooledObject &) = delete;
    PooledObject &operator=(const PooledObject &) = delete;

    const Skeleton &skeleton() const { return skel_; }
    xnat_bpf *operator->() const { return skel_.get(); }

  private:
    uint32_t max_connections_;
    Skeleton skel_;
};

// XNAT_TEST_FRESH_OBJECTS is set (and not 0): every fixture loads its own object.
bool fresh_objects_wanted();

// Brings a loaded object's maps back to their state right after load. Throws if a map is of a
// kind it does not know how to reset, so that a new map cannot leak state between tests.
void reset_object_state(const Skeleton &skel);

} // namespace xnat::test
